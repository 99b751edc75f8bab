/**
 * What a failed attempt on a replica means, shared by the HTTP forward path and the upgrade
 * (WebSocket) path: which errors say the replica never got the request, which make it
 * suspect, where the request may go next, and the SPEC answer when it can go nowhere.
 */
import { BalancerError } from '../errors.js'
import type { HashRing } from '../ring/ring.js'
import type { Upstream } from '../upstream/upstream.js'

/** Errors that mean the replica never got the request: safe to send elsewhere, any method. */
export const CONNECT_ERRORS: ReadonlySet<string> = new Set(['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'EADDRNOTAVAIL', 'ENOTFOUND', 'EAI_AGAIN'])
/** Errors that mean the connection broke: the replica is suspect (passive health detection). */
export const CONNECTION_ERRORS: ReadonlySet<string> = new Set([...CONNECT_ERRORS, 'ECONNRESET', 'EPIPE', 'ECONNABORTED'])
/** The code our upstream clients give a replica that stayed silent past the upstream timeout. */
export const UPSTREAM_TIMEOUT = 'ETIMEDOUT_UPSTREAM'

/**
 * The next distinct replica clockwise from the request's slot that has not been tried yet;
 * records `failed` as tried. Undefined when every replica has been tried.
 */
export function nextUntried(ring: HashRing<Upstream>, id: number, tried: Upstream[], failed: Upstream): Upstream | undefined {
  tried.push(failed)
  return ring.next(id, (u) => !tried.includes(u))
}

/** The SPEC answer for a request no replica could take: 504 after a timeout, else 502. */
export function upstreamError(upstream: Upstream, err: NodeJS.ErrnoException, timeoutMs: number): BalancerError {
  const code = err.code ?? ''
  if (code === UPSTREAM_TIMEOUT) {
    return new BalancerError('UPSTREAM_TIMEOUT', `Server replica '${upstream.name}' did not answer within ${timeoutMs} ms`)
  }
  return new BalancerError('UPSTREAM_UNREACHABLE', `Server replica '${upstream.name}' could not be reached (${code || err.message})`)
}
