/**
 * The retry policy: whether a failed attempt may go to the next replica, decided from the
 * transport's typed error (src/upstream/errors.ts) and two facts about the request. One policy
 * for every kind of request (HTTP on both fronts, upgrades, TCP connections), as caddy's
 * proxy loop asks one question of every failed round trip.
 */
import { BalancerError } from '../errors.js'
import { ConnectionLostError, PipelineAbortedError, UpstreamTimeoutError, type UpstreamError } from '../upstream/errors.js'

/** What the policy needs to know about the request besides the error. */
export interface RetryFacts {
  /** Sending it twice is harmless: an idempotent method (RFC 9110 9.2.2), or a bodyless upgrade. */
  readonly replayable: boolean
  /** Bytes of the client's body have left for a replica: they can never be sent again. */
  readonly bodySent: boolean
}

/**
 * A failed attempt may go elsewhere only if no byte of the client's body has left and either
 * the replica never got the request or sending it twice is harmless and the connection broke
 * under it (or was a reused keep-alive connection, which may simply have gone stale). A
 * timeout is never retried: the replica may be working on it.
 */
export function mayRetry(err: UpstreamError, request: RetryFacts): boolean {
  if (request.bodySent || err instanceof UpstreamTimeoutError) return false
  if (!err.requestSent) return true
  // Pipelined behind an answer that failed: never answered, and only GET/HEAD are pipelined.
  if (err instanceof PipelineAbortedError) return request.replayable
  return request.replayable && (err instanceof ConnectionLostError || err.reused)
}

/** The SPEC answer for a request no replica could take: 504 after a timeout, else 502. */
export function giveUpAnswer(replica: string, err: UpstreamError, timeoutMs: number): BalancerError {
  if (err instanceof UpstreamTimeoutError) {
    return new BalancerError('UPSTREAM_TIMEOUT', `Server replica '${replica}' did not answer within ${timeoutMs} ms`)
  }
  return new BalancerError('UPSTREAM_UNREACHABLE', `Server replica '${replica}' could not be reached (${err.code || err.message})`)
}

