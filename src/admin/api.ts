/**
 * The admin API (SPEC 4.1-4.3, 9): GET /rep, POST /add, DELETE /rm, and on the admin
 * listener GET /healthz. Routes live in one table (AdminRoutes) that each listener serves a
 * part of: the main port /rep, /add and /rm (or only /rep with --admin-on-main=false), the
 * admin listener all of them, including pages added later (metrics, dashboard).
 *
 * Parses and validates the payload shape here; the balancer validates against its state
 * (names in use, room on the ring) inside its membership queue, so a request applies whole or
 * not at all. A route marked `mutation` is checked by access.ts before its body is read, and
 * leaves an audit line (audit.ts) whatever comes of it.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import { BalancerError } from '../errors.js'
import { sendError, sendSuccess } from '../front/respond.js'
import type { Balancer } from '../membership/balancer.js'
import type { Membership } from '../membership/types.js'
import { assertWeights } from '../membership/validate.js'
import { ClientGone, readJson } from './body.js'
import { clip, preview } from '../preview.js'
import { checkMutation, type AccessPolicy } from './access.js'
import { auditWhenDone, type AuditSink, type ListenerName } from './audit.js'

export interface AdminRoute {
  /** Methods answered; any other gets 405 with Allow. */
  readonly methods: readonly string[]
  /** Changes membership: access checks first, then an audit line for every request. */
  readonly mutation?: boolean
  /** Answer the request (resolve once answered); a BalancerError thrown becomes its JSON answer. */
  handle(req: IncomingMessage, res: ServerResponse): Promise<void> | void
}

/** Path -> route. Insertion order is the order listed in the admin listener's 404. */
export type AdminRoutes = Map<string, AdminRoute>

export interface MembershipRequest {
  n: number
  hostnames: string[]
  /** /add only: weights[k] for the k-th new replica (named ones first), default 1. */
  weights: number[]
}

/**
 * Validate `{"n": <positive integer>, "hostnames": [<string>...]?}`, plus for /add
 * (`allowWeights`) an optional `"weights": [<integer 1..256>...]` of at most n entries.
 * Any integer n passes (1e300 too): the balancer bounds it (membership/capacity.ts).
 */
export function parseMembershipRequest(body: unknown, allowWeights = false): MembershipRequest {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) {
    throw new BalancerError('INVALID_JSON', 'Invalid JSON payload: expected an object like {"n": 1, "hostnames": ["S1"]}')
  }
  const { n, hostnames, weights } = body as { n?: unknown; hostnames?: unknown; weights?: unknown }
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 1) {
    throw new BalancerError('INVALID_N', `n must be a positive integer, got ${preview(n)}`)
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

export interface BodyLimits {
  /** --max-body */
  readonly maxBodyBytes: number
  /** --admin-body-timeout */
  readonly bodyTimeoutMs: number
}

/**
 * What the admin routes ask of membership: the Balancer itself in one process; in a cluster
 * (src/cluster/) the primary's balancer answering once every worker routes alike, or a
 * worker's channel to it.
 */
export interface MembershipControl extends Pick<Balancer, 'membership' | 'add' | 'remove'> {
  readonly ring: { readonly size: number }
}

/** /rep, /add and /rm over `balancer`. */
export function membershipRoutes(balancer: MembershipControl, limits: BodyLimits): AdminRoutes {
  const body = (req: IncomingMessage): Promise<unknown> => readJson(req, limits.maxBodyBytes, limits.bodyTimeoutMs)
  return new Map<string, AdminRoute>([
    ['/rep', { methods: ['GET', 'HEAD'], handle: (_req, res) => sendSuccess(res, balancer.membership()) }],
    [
      '/add',
      {
        methods: ['POST'],
        mutation: true,
        handle: async (req, res) => {
          const { n, hostnames, weights } = parseMembershipRequest(await body(req), true)
          sendSuccess(res, await balancer.add(n, hostnames, weights))
        },
      },
    ],
    [
      '/rm',
      {
        methods: ['DELETE'],
        mutation: true,
        handle: async (req, res) => {
          const { n, hostnames } = parseMembershipRequest(await body(req))
          sendSuccess(res, await balancer.remove(n, hostnames))
        },
      },
    ],
  ])
}

/**
 * GET /healthz (admin listener): 200 while the balancer can route (a replica is in the ring),
 * 503 with the reason when it cannot or is shutting down, for an orchestrator or an outer
 * load balancer to act on.
 */
export function healthRoute(balancer: MembershipControl, closing: () => boolean): AdminRoute {
  return {
    methods: ['GET', 'HEAD'],
    handle: (_req, res) => {
      if (closing()) throw new BalancerError('SHUTTING_DOWN')
      const { N } = balancer.membership()
      const inRing = balancer.ring.size
      if (inRing === 0) throw new BalancerError('NO_REPLICAS')
      sendSuccess(res, { healthy: true, N, inRing })
    },
  }
}

export interface Admin {
  /** Handles the request and returns true if `path` is one of this listener's routes; false leaves it to the caller. */
  (req: IncomingMessage, res: ServerResponse, path: string): boolean
  /** Is `path` one of this listener's routes? (The fast front hands these to node:http.) */
  handles(path: string): boolean
}

export interface AdminOptions {
  readonly listener: ListenerName
  readonly policy: AccessPolicy
  readonly audit: AuditSink
  readonly membership: () => Membership
}

/** A handler serving `routes` on one listener. */
export function createAdmin(routes: ReadonlyMap<string, AdminRoute>, options: AdminOptions): Admin {
  const handle = (req: IncomingMessage, res: ServerResponse, path: string): boolean => {
    const route = routes.get(path)
    if (route === undefined) return false
    let refusal: string | undefined
    const refuse = (err: BalancerError, headers?: Record<string, string>): void => {
      refusal = err.code
      sendError(res, err, headers)
    }
    if (route.mutation) auditWhenDone(req, res, { listener: options.listener, path, refusal: () => refusal, membership: options.membership }, options.audit)

    if (!route.methods.includes(req.method ?? '')) {
      req.resume()
      refuse(new BalancerError('METHOD_NOT_ALLOWED', `Method ${req.method} not allowed on ${path}; use ${route.methods.join(' or ')}`), {
        allow: route.methods.join(', '),
      })
      return true
    }
    if (route.mutation) {
      const refused = checkMutation(req, options.policy)
      if (refused !== undefined) {
        // The body is left unread: close the connection rather than read what a stranger sends.
        refuse(refused.error, { ...refused.headers, connection: 'close' })
        return true
      }
    }
    const failed = (err: unknown): void => {
      if (err instanceof ClientGone) return
      if (err instanceof BalancerError) {
        // 413 and 408 leave the body unread: close rather than read the rest.
        refuse(err, err.status === 413 || err.status === 408 ? { connection: 'close' } : undefined)
      } else {
        console.error('admin request failed:', err)
        refuse(new BalancerError('INTERNAL', `Internal error: ${clip(String((err as Error)?.message ?? err), 200)}`))
      }
    }
    try {
      Promise.resolve(route.handle(req, res)).catch(failed)
    } catch (err) {
      failed(err)
    }
    return true
  }
  return Object.assign(handle, { handles: (path: string) => routes.has(path) })
}

/** The admin listener's answer for a path it does not serve: 404, naming the ones it does. */
export function notFound(res: ServerResponse, path: string, routes: ReadonlyMap<string, AdminRoute>): void {
  sendError(res, new BalancerError('ADMIN_NOT_FOUND', `No admin endpoint '${clip(path)}' (this listener serves ${[...routes.keys()].join(', ')})`))
}
