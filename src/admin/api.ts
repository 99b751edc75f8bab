/**
 * The admin API (SPEC 4.1-4.3): GET /rep, POST /add, DELETE /rm. Parses and validates the
 * payload shape here; the balancer validates against its state (names in use, room on the
 * ring) inside its membership queue, so a request applies whole or not at all.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import { BalancerError } from '../errors.js'
import { sendError, sendSuccess } from '../front/respond.js'
import { assertWeights, type Balancer } from '../membership/balancer.js'
import { readJson } from './body.js'

interface Route {
  readonly methods: readonly string[]
  handle(req: IncomingMessage, res: ServerResponse): Promise<void>
}

export interface MembershipRequest {
  n: number
  hostnames: string[]
  /** /add only: weights[k] for the k-th new replica (named ones first), default 1. */
  weights: number[]
}

/**
 * Validate `{"n": <positive integer>, "hostnames": [<string>...]?}`, plus for /add
 * (`allowWeights`) an optional `"weights": [<integer 1..256>...]` of at most n entries.
 */
export function parseMembershipRequest(body: unknown, allowWeights = false): MembershipRequest {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) {
    throw new BalancerError('INVALID_JSON', 'Invalid JSON payload: expected an object like {"n": 1, "hostnames": ["S1"]}')
  }
  const { n, hostnames, weights } = body as { n?: unknown; hostnames?: unknown; weights?: unknown }
  if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 1) {
    throw new BalancerError('INVALID_N', `n must be a positive integer, got ${JSON.stringify(n) ?? 'nothing'}`)
  }
  if (hostnames !== undefined && hostnames !== null && (!Array.isArray(hostnames) || !hostnames.every((h) => typeof h === 'string'))) {
    throw new BalancerError('INVALID_HOSTNAMES')
  }
  if (weights !== undefined && weights !== null) {
    if (!allowWeights) throw new BalancerError('INVALID_WEIGHT', 'weights only apply to /add')
    assertWeights(n, weights)
  }
  return { n, hostnames: (hostnames as string[] | undefined | null) ?? [], weights: (weights as number[] | undefined | null) ?? [] }
}

export interface Admin {
  /** Handles the request and returns true if `path` is an admin route; false leaves it to the proxy. */
  (req: IncomingMessage, res: ServerResponse, path: string): boolean
  /** Is `path` an admin route? (The fast front hands these to node:http.) */
  handles(path: string): boolean
}

export function createAdmin(balancer: Balancer, maxBodyBytes: number): Admin {
  const routes = new Map<string, Route>([
    ['/rep', { methods: ['GET', 'HEAD'], handle: async (_req, res) => sendSuccess(res, balancer.membership()) }],
    [
      '/add',
      {
        methods: ['POST'],
        handle: async (req, res) => {
          const { n, hostnames, weights } = parseMembershipRequest(await readJson(req, maxBodyBytes), true)
          sendSuccess(res, await balancer.add(n, hostnames, weights))
        },
      },
    ],
    [
      '/rm',
      {
        methods: ['DELETE'],
        handle: async (req, res) => {
          const { n, hostnames } = parseMembershipRequest(await readJson(req, maxBodyBytes))
          sendSuccess(res, await balancer.remove(n, hostnames))
        },
      },
    ],
  ])

  const handle = (req: IncomingMessage, res: ServerResponse, path: string): boolean => {
    const route = routes.get(path)
    if (route === undefined) return false
    if (!route.methods.includes(req.method ?? '')) {
      req.resume()
      sendError(res, new BalancerError('METHOD_NOT_ALLOWED', `Method ${req.method} not allowed on ${path}; use ${route.methods.join(' or ')}`), {
        allow: route.methods.join(', '),
      })
      return true
    }
    route.handle(req, res).catch((err: unknown) => {
      if (err instanceof BalancerError) {
        sendError(res, err, err.status === 413 ? { connection: 'close' } : undefined)
      } else {
        console.error('admin request failed:', err)
        sendError(res, new BalancerError('INTERNAL', `Internal error: ${(err as Error)?.message ?? String(err)}`))
      }
    })
    return true
  }
  return Object.assign(handle, { handles: (path: string) => routes.has(path) })
}
