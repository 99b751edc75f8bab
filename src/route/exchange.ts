/**
 * One HTTP request and its tries on replicas, whatever front it came in on: node:http
 * (src/front/http.ts, any request) or the raw fast front (src/front/fast.ts, plain GET and
 * HEAD). It is the attempt loop's Trip for HTTP (attempt.ts: failover and the retry policy)
 * and the pool's ConnectionUser (src/upstream/): it sends the request head (and lets the
 * body flow once connected), applies the SPEC's 404 -> 400 rule, holds small answers to the
 * end of the turn under load, and handles client aborts. How the answer is written and how a
 * body is read is the front's business: an HttpClient adapter object passed in.
 */
import { BalancerError } from '../errors.js'
import type { Upstream } from '../upstream/upstream.js'
import type { ConnectionUser, UpstreamConnection } from '../upstream/request.js'
import type { TurnEndTask } from '../upstream/batcher.js'
import { PipelineStalledError, type UpstreamError } from '../upstream/errors.js'
import { hostOf, isIdempotent, upstreamHead, type ProxiedRequest } from './forward.js'
import type { AttemptLoop, Trip } from './attempt.js'
import { pathOf } from './keys.js'
import type { FinishedRequest, LoggedRequest, RequestObserver } from '../observe/request-observer.js'
import { DOWNSTREAM_CONNECTION_TERMINATION, DOWNSTREAM_PROTOCOL_ERROR, NO_FLAG, NO_HEALTHY_UPSTREAM, UPSTREAM_PROTOCOL_ERROR, flagOfUpstreamError } from '../observe/flags.js'

/** The client side of an exchange, one per front (src/front/http.ts, src/front/fast-client.ts). */
export interface HttpClient {
  /**
   * Send the response head (may throw on a header the front refuses to send). `headText` is the
   * replica's head as read (status line and header lines, no blank line; see response-parser.ts).
   */
  answerHead(statusCode: number, statusMessage: string, headText: string): void
  /** Body bytes; false asks to hold the replica until the exchange's `clientDrained()`. */
  answerData(chunk: Buffer): boolean
  /** The last body bytes (maybe none; a small body arrives as a latin1 string). */
  answerEnd(last: Buffer | string): void
  /** Answer with one of the SPEC's errors (nothing was sent yet). */
  answerError(err: BalancerError): void
  /** Cut the response short: the client must see it did not complete. */
  answerAbort(): void
  /** The client can no longer be written to. */
  readonly closedForWrites: boolean
  /** The replica's connection is up: the request body (if any) may start flowing to `conn`. */
  startBody(exchange: HttpExchange): void
  /** The try ended: stop relaying the request body (read and drop the rest). */
  stopBody(): void
}

/** Bodies up to this size are sent with the head in one write (see onData). */
const SMALL_BODY = 16 * 1024

/** `METHOD /path HTTP/1.1` and the forwarded headers, each line ending in CRLF, no blank line yet. */
function requestHead(req: ProxiedRequest, chunked: boolean): string {
  const head = upstreamHead(req)
  // Transfer-Encoding is hop-by-hop: the body is re-framed for our own connection.
  return chunked ? `${head}Transfer-Encoding: chunked\r\n` : head
}

export class HttpExchange implements ConnectionUser, TurnEndTask, Trip, FinishedRequest {
  private readonly headBase: string
  /** The whole head, blank line included, when the request has a Host (else send() adds one per replica). */
  private readonly head: string | undefined
  readonly replayable: boolean
  readonly isHead: boolean
  /** A GET or HEAD without a body: may share an upstream connection with others (pool.ts). */
  private readonly pipelinable: boolean
  /** The replica of the current attempt, while that attempt is open. */
  private upstream: Upstream | undefined
  /** The connection of the current try, once the pool gave one. */
  conn: UpstreamConnection | undefined
  tried: Upstream[] | undefined
  /** The client's body has started flowing to a replica: it can never be sent again. */
  bodySent = false
  private responded = false
  /** Answering with the SPEC's 404 error: the replica's body is read and dropped. */
  private discardBody = false
  private clientGone = false
  /** A small answer waiting for the end of the event-loop turn (under load, see onData). */
  private heldBody: string | undefined

  // What the observer reads once the request is finished (FinishedRequest).
  private readonly observer: RequestObserver | undefined
  /** The answer is complete or aborted, and was reported to the observer. */
  private finished = false
  /** The replica of the last try (kept after the try ends), and how it last failed. */
  private last: Upstream | undefined
  private lastError: string | undefined
  status = 0
  readonly startedAt: number
  private sentAt = 0
  upstreamMs = -1
  /** Request body bytes the client sent (counted by the node:http client adapter). */
  bytesIn = 0
  bytesOut = 0
  flag = NO_FLAG

  /**
   * @param withBody the request carries a body (the client adapter streams it once connected)
   * @param chunked that body is re-framed as chunked for the replica
   */
  constructor(
    readonly req: ProxiedRequest,
    readonly id: number,
    private readonly loop: AttemptLoop,
    private readonly client: HttpClient,
    readonly withBody: boolean,
    chunked: boolean,
  ) {
    this.headBase = requestHead(req, chunked)
    // Built once: a resend (failover, stall rescue) writes the same bytes.
    this.head = hostOf(req) === undefined ? undefined : `${this.headBase}\r\n`
    this.replayable = isIdempotent(req.method)
    this.isHead = req.method === 'HEAD'
    this.pipelinable = !withBody && (this.isHead || req.method === 'GET')
    this.observer = loop.observer
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
   * abort) came from the replica of the last try; else the balancer wrote it itself.
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

  /** @param pipelinable may share a connection (false when resent after a stall) */
  send(upstream: Upstream, pipelinable = this.pipelinable): void {
    this.upstream = upstream
    // The first try starts as the request arrives: one clock read less per request.
    if (this.observer !== undefined) this.sentAt = this.last === undefined ? this.startedAt : performance.now()
    this.last = upstream
    this.conn = undefined
    upstream.begin()
    // HTTP/1.0 clients may omit Host; HTTP/1.1 requires one on our side.
    const head = this.head ?? `${this.headBase}Host: ${upstream.host}:${upstream.port}\r\n\r\n`
    upstream.pool.request({ user: this, head, isHead: this.isHead, timeoutMs: this.loop.upstreamTimeoutMs, bodyless: !this.withBody, pipelinable })
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

  onStart(conn: UpstreamConnection): void {
    this.conn = conn
  }

  onConnected(conn: UpstreamConnection): void {
    this.conn = conn
    if (!this.withBody || this.bodySent) return
    // The body flows only once the connection is up: a refused connection then costs
    // nothing and the request can still go to the next replica.
    this.bodySent = true
    this.client.startBody(this)
  }

  onHead(statusCode: number, statusMessage: string, headText: string): void {
    this.responded = true
    if (this.observer !== undefined) this.upstreamMs = performance.now() - this.sentAt
    if (this.clientGone) return
    if (statusCode === 404) {
      this.discardBody = true
      this.client.answerError(new BalancerError('ENDPOINT_NOT_FOUND', `'${pathOf(this.req.url ?? '/')}' endpoint does not exist in server replicas`))
      // The replica's answer, in the SPEC's words: counted as the replica's.
      this.finish(400, NO_FLAG, true)
      return
    }
    this.status = statusCode
    try {
      this.client.answerHead(statusCode, statusMessage, headText)
    } catch (err) {
      // A header the front will not send (invalid characters from the replica).
      this.discardBody = true
      this.client.stopBody()
      this.upstream?.stats?.failed('HPE_UPSTREAM')
      this.client.answerError(new BalancerError('UPSTREAM_UNREACHABLE', `Server replica '${this.upstream?.name}' sent an invalid response (${(err as Error).message})`))
      this.finish(502, UPSTREAM_PROTOCOL_ERROR, false)
    }
  }

  onData(chunk: Buffer, last: boolean): void {
    let answered: Upstream | undefined
    if (last) {
      answered = this.endAttempt()
      this.client.stopBody()
    }
    if (this.discardBody || this.clientGone) return
    this.bytesOut += chunk.length
    if (last) {
      if (chunk.length === 0 || chunk.length > SMALL_BODY) {
        this.client.answerEnd(chunk)
        this.finish(this.status, NO_FLAG, true)
      } else {
        // A small body as a latin1 string (bytes unchanged): the front then sends the head and
        // body as one string in one write.
        const body = chunk.toString('latin1')
        // Under load, answers go out together at the end of the turn, like requests (batcher.ts).
        const batcher = answered?.pool.batcher
        if (batcher !== undefined && batcher.batching()) {
          this.heldBody = body
          batcher.atTurnEnd(this)
        } else {
          this.client.answerEnd(body)
          this.finish(this.status, NO_FLAG, true)
        }
      }
    } else if (!this.client.answerData(chunk)) {
      // The client reads slower than the replica writes: hold the replica until it drains.
      this.conn?.pause()
    }
  }

  onFailure(err: UpstreamError, _conn: UpstreamConnection | undefined): void {
    const upstream = this.endAttempt()
    if (upstream === undefined || this.clientGone) return
    if (err instanceof PipelineStalledError) {
      // Waited too long behind a slow answer on a shared connection (pool.ts): the replica is
      // fine, so the same one gets it again, on a connection of its own.
      upstream.stats?.failed(err.code)
      this.send(upstream, false)
      return
    }
    if (this.responded) {
      // Headers already went out: all we can honestly do is cut the client's response short.
      // (Unless it was the 404 answer, which is complete already.)
      this.loop.report(upstream, err)
      if (!this.discardBody) {
        this.client.answerAbort()
        this.finish(this.status, flagOfUpstreamError(err.code), true)
      }
      this.client.stopBody()
      return
    }
    this.lastError = err.code
    this.loop.failed(this, upstream, err)
  }

  /** Trip: no replica will take the request. */
  giveUp(err: BalancerError): void {
    this.client.stopBody()
    this.client.answerError(err)
    this.finish(err.status, err.code === 'NO_REPLICAS' ? NO_HEALTHY_UPSTREAM : flagOfUpstreamError(this.lastError), false)
  }

  /** TurnEndTask: send the answer held by onData. */
  runAtTurnEnd(): void {
    const body = this.heldBody
    this.heldBody = undefined
    if (body !== undefined && !this.clientGone && !this.client.closedForWrites) {
      this.client.answerEnd(body)
      this.finish(this.status, NO_FLAG, true)
    }
  }

  /**
   * The edge answers this request itself with `status` (its body broke a rule or a limit, or
   * went silent): counted as the balancer's own answer, and the attempt dropped as if the
   * client had gone.
   */
  answeredByEdge(status: number): void {
    this.finish(status, DOWNSTREAM_PROTOCOL_ERROR, false)
    this.clientClosed()
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
    this.client.stopBody()
  }

  /** The client took what was written: let the replica send more. */
  clientDrained(): void {
    this.conn?.resume()
  }
}
