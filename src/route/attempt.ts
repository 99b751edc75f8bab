/**
 * One client request and its attempts on replicas, whatever front it came in on: node:http
 * (http.ts, any request) or the raw fast front (src/front/, plain GET and HEAD). This class
 * holds what both share — the attempt on a replica's pool, failover to the next distinct
 * replica clockwise while that is safe, the SPEC's 404 -> 400 rule, the small-answer
 * batching, client aborts — and leaves the client side (how an answer is written, how a
 * request body flows) to the subclass.
 */
import { BalancerError } from '../errors.js'
import type { HashRing } from '../ring/ring.js'
import type { Upstream } from '../upstream/upstream.js'
import { PIPELINE_ABORTED, PIPELINE_STALLED, atTurnEnd, batching, type Connection, type ConnectionUser, type TurnEndTask } from '../upstream/pool.js'
import { isIdempotent, upstreamRequestHeaders, type ProxiedRequest } from './forward.js'
import { CONNECT_ERRORS, CONNECTION_ERRORS, UPSTREAM_TIMEOUT, nextUntried, upstreamError } from './retry.js'
import { pathOf } from './keys.js'
import type { FinishedRequest, LoggedRequest, RequestObserver } from '../observe/request-observer.js'
import { DOWNSTREAM_CONNECTION_TERMINATION, NO_FLAG, UPSTREAM_PROTOCOL_ERROR, flagOfUpstreamError } from '../observe/flags.js'

export interface ExchangeOptions {
  ring: HashRing<Upstream>
  upstreamTimeoutMs: number
  /** Told when a replica refused or reset a connection (passive health detection). */
  onUpstreamFailure?: (upstream: Upstream, err: NodeJS.ErrnoException) => void
  /** Counts and logs each request when its answer is complete or aborted (metrics, access log). */
  observer?: RequestObserver | undefined
}

/** The replica left while the request waited for a connection: nothing was sent. */
const POOL_CLOSED = 'ERR_POOL_CLOSED'
/** Bodies up to this size are sent with the head in one write (see onData). */
const SMALL_BODY = 16 * 1024

/** `METHOD /path HTTP/1.1` and the forwarded headers, each line ending in CRLF, no blank line yet. */
function requestHead(req: ProxiedRequest, chunked: boolean): string {
  const headers = upstreamRequestHeaders(req)
  let head = `${req.method} ${req.url} HTTP/1.1\r\n`
  for (let i = 0; i < headers.length; i += 2) head += `${headers[i]}: ${headers[i + 1]}\r\n`
  // Transfer-Encoding is hop-by-hop: the body is re-framed for our own connection.
  if (chunked) head += 'Transfer-Encoding: chunked\r\n'
  return head
}

export abstract class Exchange implements ConnectionUser, TurnEndTask, FinishedRequest {
  private readonly headBase: string
  private readonly idempotent: boolean
  protected readonly isHead: boolean
  /** A GET or HEAD without a body: may share an upstream connection with others (pool.ts). */
  private readonly pipelinable: boolean
  /** The replica of the current attempt, while that attempt is open. */
  private upstream: Upstream | undefined
  protected conn: Connection | undefined
  private tried: Upstream[] | undefined
  /** The client's body has started flowing to a replica: it can never be sent again. */
  protected bodyStarted = false
  private responded = false
  /** Answering with the SPEC's 404 error: the replica's body is read and dropped. */
  private discardBody = false
  protected clientGone = false
  /** A small answer waiting for the end of the event-loop turn (under load, see onData). */
  private heldBody: string | undefined

  // What the observer reads when the request is finished (FinishedRequest).
  private readonly observer: RequestObserver | undefined
  /** The answer is complete or aborted, and was reported to the observer. */
  private finished = false
  /** The replica of the last attempt (kept after the attempt ends). */
  private last: Upstream | undefined
  status = 0
  readonly startedAt: number
  private sentAt = 0
  upstreamMs = -1
  bytesIn = 0
  bytesOut = 0
  flag = NO_FLAG

  /**
   * @param withBody the request carries a body (the subclass streams it once connected)
   * @param chunked that body is re-framed as chunked for the replica
   */
  constructor(
    protected readonly req: ProxiedRequest,
    private readonly id: number,
    private readonly options: ExchangeOptions,
    protected readonly withBody: boolean,
    chunked: boolean,
  ) {
    this.headBase = requestHead(req, chunked)
    this.idempotent = isIdempotent(req.method)
    this.isHead = req.method === 'HEAD'
    this.pipelinable = !withBody && (this.isHead || req.method === 'GET')
    this.observer = options.observer
    this.startedAt = this.observer === undefined ? 0 : performance.now()
  }

  get replicaName(): string | undefined {
    return this.last?.name
  }

  get incoming(): LoggedRequest {
    return this.req
  }

  /**
   * The client's answer is complete or aborted: report it once. `relayed`: the answer (or the
   * abort) came from the replica of the last attempt; else the balancer wrote it itself.
   */
  private finish(status: number, flag: string, relayed: boolean): void {
    if (this.finished) return
    this.finished = true
    const observer = this.observer
    if (observer === undefined) return
    this.status = status
    this.flag = flag
    if (relayed) observer.relayed(this, this.last?.stats)
    else observer.local(this)
  }

  // The client side, per front.

  /** Send the response head (may throw on a header the front refuses to send). */
  protected abstract answerHead(statusCode: number, statusMessage: string, rawHeaders: string[]): void
  /** Body bytes; false asks to hold the replica until `clientDrained()` is called. */
  protected abstract answerData(chunk: Buffer): boolean
  /** The last body bytes (maybe none; a small body arrives as a latin1 string). */
  protected abstract answerEnd(last: Buffer | string): void
  /** Answer with one of the SPEC's errors (nothing was sent yet). */
  protected abstract answerError(err: BalancerError): void
  /** Cut the response short: the client must see it did not complete. */
  protected abstract answerAbort(): void
  /** The client can no longer be written to. */
  protected abstract get clientClosedForWrites(): boolean
  /** The replica's connection is up: a request body may start flowing to it. */
  protected startBody(): void {}
  /** The attempt ended: stop relaying the request body (read and drop the rest). */
  protected stopBody(): void {}

  /** @param pipelinable may share a connection (false when resent after a stall) */
  send(upstream: Upstream, pipelinable = this.pipelinable): void {
    this.upstream = upstream
    // The first attempt starts as the request arrives: one clock read less per request.
    if (this.observer !== undefined) this.sentAt = this.last === undefined ? this.startedAt : performance.now()
    this.last = upstream
    this.conn = undefined
    upstream.begin()
    // HTTP/1.0 clients may omit Host; HTTP/1.1 requires one on our side.
    const head = this.req.headers.host === undefined ? `${this.headBase}Host: ${upstream.host}:${upstream.port}\r\n\r\n` : `${this.headBase}\r\n`
    upstream.pool.request(this, head, this.isHead, this.options.upstreamTimeoutMs, !this.withBody, pipelinable)
  }

  /** The attempt is over (answered or failed): the replica's in-flight count drops once. */
  private endAttempt(): Upstream | undefined {
    const upstream = this.upstream
    if (upstream !== undefined) {
      this.upstream = undefined
      this.conn = undefined
      upstream.end()
    }
    return upstream
  }

  // ConnectionUser

  onStart(conn: Connection): void {
    this.conn = conn
  }

  onConnected(conn: Connection): void {
    this.conn = conn
    if (!this.withBody || this.bodyStarted) return
    // The body flows only once the connection is up: a refused connection then costs
    // nothing and the request can still go to the next replica.
    this.bodyStarted = true
    this.startBody()
  }

  onHead(statusCode: number, statusMessage: string, rawHeaders: string[]): void {
    this.responded = true
    if (this.observer !== undefined) this.upstreamMs = performance.now() - this.sentAt
    if (this.clientGone) return
    if (statusCode === 404) {
      this.discardBody = true
      this.answerError(new BalancerError('ENDPOINT_NOT_FOUND', `'${pathOf(this.req.url ?? '/')}' endpoint does not exist in server replicas`))
      // The replica's answer, in the SPEC's words: counted as the replica's.
      this.finish(400, NO_FLAG, true)
      return
    }
    this.status = statusCode
    try {
      this.answerHead(statusCode, statusMessage, rawHeaders)
    } catch (err) {
      // A header the front will not send (invalid characters from the replica).
      this.discardBody = true
      this.stopBody()
      this.upstream?.stats?.failed('HPE_UPSTREAM')
      this.answerError(new BalancerError('UPSTREAM_UNREACHABLE', `Server replica '${this.upstream?.name}' sent an invalid response (${(err as Error).message})`))
      this.finish(502, UPSTREAM_PROTOCOL_ERROR, false)
    }
  }

  onData(chunk: Buffer, last: boolean): void {
    if (last) {
      this.endAttempt()
      this.stopBody()
    }
    if (this.discardBody || this.clientGone) return
    this.bytesOut += chunk.length
    if (last) {
      if (chunk.length === 0 || chunk.length > SMALL_BODY) {
        this.answerEnd(chunk)
        this.finish(this.status, NO_FLAG, true)
      } else {
        // A small body as a latin1 string (bytes unchanged): the front then sends the head and
        // body as one string in one write.
        const body = chunk.toString('latin1')
        // Under load, answers go out together at the end of the turn, like requests (pool.ts).
        if (batching()) {
          this.heldBody = body
          atTurnEnd(this)
        } else {
          this.answerEnd(body)
          this.finish(this.status, NO_FLAG, true)
        }
      }
    } else if (!this.answerData(chunk)) {
      // The client reads slower than the replica writes: hold the replica until it drains.
      this.conn?.pause()
    }
  }

  onFailure(err: NodeJS.ErrnoException, conn: Connection | undefined): void {
    const upstream = this.endAttempt()
    if (upstream === undefined || this.clientGone) return
    const code = err.code ?? ''
    upstream.stats?.failed(code)
    if (code === PIPELINE_STALLED) {
      // Waited too long behind a slow answer on a shared connection (pool.ts): the replica is
      // fine, so the same one gets it again, on a connection of its own.
      this.send(upstream, false)
      return
    }
    if (CONNECTION_ERRORS.has(code)) this.options.onUpstreamFailure?.(upstream, err)
    if (this.responded) {
      // Headers already went out: all we can honestly do is cut the client's response short.
      // (Unless it was the 404 answer, which is complete already.)
      if (!this.discardBody) {
        this.answerAbort()
        this.finish(this.status, flagOfUpstreamError(code), true)
      }
      this.stopBody()
      return
    }
    if (this.retryable(code, conn)) {
      const next = nextUntried(this.options.ring, this.id, (this.tried ??= []), upstream)
      if (next !== undefined) {
        if (upstream.stats !== undefined) upstream.stats.retries++
        this.send(next)
        return
      }
    }
    this.stopBody()
    const answer = upstreamError(upstream, err, this.options.upstreamTimeoutMs)
    this.answerError(answer)
    this.finish(answer.status, flagOfUpstreamError(code), false)
  }

  /** TurnEndTask: send the answer held by onData. */
  runAtTurnEnd(): void {
    const body = this.heldBody
    this.heldBody = undefined
    if (body !== undefined && !this.clientGone && !this.clientClosedForWrites) {
      this.answerEnd(body)
      this.finish(this.status, NO_FLAG, true)
    }
  }

  /** The client went away before its answer was complete: abort the upstream request. */
  clientClosed(): void {
    this.clientGone = true
    // nginx's 499 when nothing was answered yet; else the status the head carried.
    this.finish(this.responded && this.status !== 0 ? this.status : 499, DOWNSTREAM_CONNECTION_TERMINATION, true)
    const { upstream, conn } = this
    if (upstream === undefined) return
    if (conn !== undefined) conn.discard(this)
    else upstream.pool.cancel(this)
    this.endAttempt()
    this.stopBody()
  }

  /** The client took what was written: let the replica send more. */
  clientDrained(): void {
    this.conn?.resume()
  }

  /**
   * A failed attempt may go to another replica only if no byte of the client's body has left
   * and either the replica never got the request (connect failed) or sending it twice is
   * harmless (idempotent method). A timeout is not retried: the replica may be working on it.
   */
  private retryable(code: string, conn: Connection | undefined): boolean {
    if (this.bodyStarted || code === UPSTREAM_TIMEOUT) return false
    if (CONNECT_ERRORS.has(code) || code === POOL_CLOSED) return true
    // Pipelined behind an answer that failed: never answered, and only GET/HEAD are pipelined.
    if (code === PIPELINE_ABORTED) return this.idempotent
    return this.idempotent && (CONNECTION_ERRORS.has(code) || conn?.reused === true)
  }
}
