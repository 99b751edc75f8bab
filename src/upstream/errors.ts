/**
 * Why an attempt on a replica failed, as the transport knows it: a small hierarchy of error
 * classes with a stable `code` (the string the SPEC's 502 message shows, so it never changes)
 * and the two facts the retry policy (src/route/retry.ts) decides from:
 * - `requestSent`: could the replica have received any byte of the request? When false it
 *   certainly did not, and the request may go elsewhere whatever its method.
 * - `replicaFault`: does the failure say something about the replica (it refused, reset or
 *   timed out), so that membership should suspect it? A request abandoned by the pool, or
 *   one moved off a slow shared connection, says nothing about the replica's health.
 * As undici's lib/core/errors.js: classes for `instanceof`, codes for logs and answers.
 */

/** The codes of the two pipelining errors (tests and logs compare codes, not classes). */
export const PIPELINE_ABORTED = 'ERR_PIPELINE_ABORTED'
export const PIPELINE_STALLED = 'ERR_PIPELINE_STALLED'

export abstract class UpstreamError extends Error {
  abstract readonly code: string
  abstract readonly requestSent: boolean
  abstract readonly replicaFault: boolean
  /** The failed connection had carried an earlier request (a stale keep-alive socket, maybe). */
  reused = false
}

/**
 * The connection to the replica could not be opened (refused, no route, name not found), or
 * it did not accept within the connect timeout (TCP mode): nothing was sent.
 */
export class ConnectError extends UpstreamError {
  override readonly name = 'ConnectError'
  readonly requestSent = false
  readonly replicaFault = true
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message)
  }
}

/** An open connection broke (reset, closed early, broken pipe): the request may have arrived. */
export class ConnectionLostError extends UpstreamError {
  override readonly name = 'ConnectionLostError'
  readonly requestSent = true
  readonly replicaFault = true
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message)
  }
}

/** The replica stayed silent past the upstream timeout: it may still be working on it. */
export class UpstreamTimeoutError extends UpstreamError {
  override readonly name = 'UpstreamTimeoutError'
  readonly code = 'ETIMEDOUT_UPSTREAM'
  readonly requestSent = true
  readonly replicaFault = false
  constructor(message = 'upstream timeout') {
    super(message)
  }
}

/** The replica answered with bytes that are not HTTP/1.1 (response-parser.ts). */
export class UpstreamProtocolError extends UpstreamError {
  override readonly name = 'UpstreamProtocolError'
  readonly code = 'HPE_UPSTREAM'
  readonly requestSent = true
  readonly replicaFault = false
}

/** The replica left while the request waited for one of its connections: nothing was sent. */
export class PoolClosedError extends UpstreamError {
  override readonly name = 'PoolClosedError'
  readonly code = 'ERR_POOL_CLOSED'
  readonly requestSent = false
  readonly replicaFault = false
  constructor() {
    super('the replica is leaving')
  }
}

/**
 * A pipelined request whose connection ended before its answer for a reason not its own (the
 * answer before it failed, or the replica closed after it): written, never answered.
 */
export class PipelineAbortedError extends UpstreamError {
  override readonly name = 'PipelineAbortedError'
  readonly code = PIPELINE_ABORTED
  readonly requestSent = true
  readonly replicaFault = false
}

/**
 * A pipelined request that waited too long behind answers on its shared connection (the stall
 * rescue, pool.ts): the replica is fine, so the same replica gets it again on its own connection.
 */
export class PipelineStalledError extends UpstreamError {
  override readonly name = 'PipelineStalledError'
  readonly code = PIPELINE_STALLED
  readonly requestSent = true
  readonly replicaFault = false
}

/** Socket error codes that mean the connection was never made: nothing left this machine. */
const CONNECT_CODES: ReadonlySet<string> = new Set(['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'EADDRNOTAVAIL', 'ENOTFOUND', 'EAI_AGAIN'])
/** Socket error codes that mean an open connection broke. */
const LOST_CODES: ReadonlySet<string> = new Set(['ECONNRESET', 'EPIPE', 'ECONNABORTED'])

/**
 * The typed error for a socket's error (or `err` itself when it is typed already). A socket
 * error that is neither a connect failure nor a broken connection is still a lost connection,
 * but not one that makes the replica suspect.
 */
export function fromSocketError(err: Error): UpstreamError {
  if (err instanceof UpstreamError) return err
  const code = (err as NodeJS.ErrnoException).code ?? ''
  if (CONNECT_CODES.has(code)) return new ConnectError(code, err.message)
  if (LOST_CODES.has(code)) return new ConnectionLostError(code, err.message)
  return new OtherSocketError(code, err.message)
}

/** Any other socket failure (rare: EMFILE, ERR_STREAM_DESTROYED, ...): not the replica's fault. */
export class OtherSocketError extends UpstreamError {
  override readonly name = 'OtherSocketError'
  readonly requestSent = true
  readonly replicaFault = false
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message)
  }
}

/** The peer closed the connection before a complete answer ("socket hang up", as node:http says). */
export function hangUp(): ConnectionLostError {
  return new ConnectionLostError('ECONNRESET', 'socket hang up')
}
