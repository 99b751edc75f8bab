/**
 * One client connection at the edge. It reads every byte the client sends, for the
 * connection's whole life, and decides what happens to it:
 * - plain GET/HEAD requests (fast-request.ts), one at a time, are answered on the raw socket
 *   (the fast front) until the first request that is not one;
 * - from then on (or from the start with --fast-front=false) each request head is checked
 *   with the strict rules (edge-head.ts), its body delimited (Content-Length, or
 *   edge-chunked.ts) and only then passed to node:http through a NodeSide, at most
 *   --max-pipelined requests ahead of their answers;
 * - a head the rules refuse is answered here (400, 405, 408, 413, 414, 417, 431, 501, 505),
 *   after the answers before it, followed by a lingering close (RFC 9112 9.6).
 * It also runs the connection's timeouts (header, body idle, keep-alive idle), checked by
 * the front's sweep. It reads the socket only while it needs bytes (nothing buffered to work
 * on, or a head or body still arriving): while requests wait in its buffer behind answers in
 * flight, or answers are not being taken (the socket's write buffer is full), the socket is
 * not read at all (read-gate.ts), so a client that pipelines and never reads costs at most
 * one read's worth of unparsed bytes, kept compact. Reads land in a buffer shared by every
 * connection (shared-reads.ts, where Node allows it): what the connection keeps is copied out.
 */
import type { Socket } from 'node:net'
import type { ServerResponse } from 'node:http'
import { BalancerError, type ErrorCode } from '../errors.js'
import { parseFastRequest } from './fast-request.js'
import { bodyBytes, errorAnswer, sendError } from './respond.js'
import type { FastClient } from './fast-client.js'
import type { HttpExchange } from '../route/exchange.js'
import type { FastRequest } from './fast-request.js'
import { LINGER_MS, type EdgeConfig } from './edge-limits.js'
import { readHead, type RejectedHead } from './edge-head.js'
import { ChunkedScanner, type ChunkedError } from './edge-chunked.js'
import { NodeSide, type NodeSideOwner } from './edge-node-side.js'
import { abandonExchange } from './http.js'
import { restoreHandle, startReading, stopReading } from './read-gate.js'
import { owned, type SharedReader } from './shared-reads.js'
import type { RequestObserver } from '../observe/request-observer.js'
import { DOWNSTREAM_PROTOCOL_ERROR } from '../observe/flags.js'

/** What a connection needs of the front (fast.ts) that accepted it. */
export interface FastConnectionHost {
  /** Shutting down: answers say `Connection: close`. */
  readonly closing: boolean
  /** Header names a request must not repeat to stay on the fast front. */
  readonly unique: ReadonlySet<string>
  /** Plain GET/HEAD requests are answered here (--fast-front). */
  readonly fast: boolean
  readonly limits: EdgeConfig
  /** Unparsed bytes held before reading pauses. */
  readonly readAheadBytes: number
  /** node:http's keepAliveTimeout (ms) is the keep-alive timeout. */
  readonly server: { readonly keepAliveTimeout: number }
  /** Requests the edge answered itself (counted). */
  refusals: number
  /** Told of every answer the edge writes itself (metrics, access log); none with both off. */
  readonly observer: RequestObserver | undefined
  keepAliveSeconds(): number
  /** Does the fast front answer a request for `url`? */
  takes(url: string): boolean
  /** Route and send a parsed request. */
  start(req: FastRequest, conn: FrontConnection): void
  /** node:http takes over the connection, as `side`. */
  handOff(side: NodeSide): void
  /** The connection closed or was handed over. */
  forget(conn: FrontConnection): void
}

// What the connection is doing.
/** Answering plain GET/HEAD requests itself. */
const FAST = 0
/** Passing checked requests to node:http (for good). */
const NODE = 1
/** An upgrade request went to node:http: the upgrade handler takes the socket. */
const UPGRADING = 2
/** Closing: our answer is written and our FIN sent; what the client still sends is dropped. */
const LINGER = 3
/** Closed, or handed to the upgrade handler. */
const GONE = 4


/** The status of each refusal, as an error of the catalogue. */
const CODES: Record<number, ErrorCode> = {
  400: 'BAD_REQUEST',
  405: 'METHOD_NOT_ALLOWED',
  408: 'REQUEST_TIMEOUT',
  413: 'REQUEST_TOO_LARGE',
  414: 'URI_TOO_LONG',
  417: 'EXPECTATION_FAILED',
  431: 'HEADERS_TOO_LARGE',
  501: 'NOT_IMPLEMENTED',
  505: 'VERSION_NOT_SUPPORTED',
}

export function edgeError(status: number, reason: string): BalancerError {
  return new BalancerError(CODES[status] ?? 'BAD_REQUEST', reason)
}

export class FrontConnection implements FastClient, NodeSideOwner, SharedReader {
  private mode = FAST
  /** Bytes read and not yet passed on. */
  private pending: Buffer | undefined
  private exchange: HttpExchange | undefined
  /** node:http's view of this connection, once it has one. */
  private nodeSide: NodeSide | undefined
  /** Requests passed to node:http and not yet answered. */
  private nodeInFlight = 0
  /** node:http's answer to the request passed last (the one whose body may be flowing). */
  private lastRes: ServerResponse | undefined
  /** Heads passed to node:http, and requests it has started answering (it may be a tick behind). */
  private headsPassed = 0
  private requestsSeen = 0
  /** A body failure for a request node:http has not dispatched yet. */
  private pendingFailure: BalancerError | undefined
  /** The body being passed on: bytes left (Content-Length), or its chunked framing. */
  private body: number | ChunkedScanner | undefined
  /** A refusal waiting for the answers before it. */
  private refusal: RejectedHead | undefined
  /** A request said this is the last one: what follows it is not read. */
  private closeAfter = false
  /** The client half-closed. */
  private ended = false
  /** node:http was told of the client's FIN. */
  private nodeEnded = false
  private running = false
  /** Whether the current fast request allows keep-alive (`Connection: close` says no). */
  private exchangeWantsKeepAlive = true
  /** When the head now being waited for started (its first byte, or the end of the answers before it); 0: none. */
  private headSince = 0
  /** When the client last sent a byte. */
  private lastByteAt: number
  /** When the last answer finished (or the connection opened); for the keep-alive timeout. */
  idleSince: number
  private lingerSince = 0
  /** The last take() stopped at a head (or request line) not complete yet: more bytes are needed. */
  private headIncomplete = false
  /** node:http's side is full: its _read (nodeReadable) has not been called since a push returned false. */
  private nodeFull = false
  /** The upgrade handler has the socket: reads go to the socket's own stream ('data' events). */
  private upgraded = false

  /**
   * @param sharedReads `socket` reads into the shared buffer and calls `onRead` (shared-reads.ts);
   *   false: a socket with 'data' events
   */
  constructor(
    readonly socket: Socket,
    private readonly front: FastConnectionHost,
    sharedReads = false,
  ) {
    this.idleSince = this.lastByteAt = Date.now()
    if (!front.fast) this.mode = NODE
    if (!sharedReads) socket.on('data', this.onData)
    socket.on('end', this.onEnd)
    socket.on('error', this.onError)
    socket.on('close', this.onClose)
    socket.on('drain', this.onDrain)
  }

  private get busy(): boolean {
    return this.exchange !== undefined || this.nodeInFlight > 0
  }

  /** No answer in flight and nothing pending: safe to close for the keep-alive timeout or shutdown. */
  get idle(): boolean {
    return !this.busy && this.pending === undefined && this.body === undefined
  }

  // FastClient

  keepAlive(): boolean {
    return !this.ended && !this.front.closing && this.exchangeWantsKeepAlive
  }

  keepAliveSeconds(): number {
    return this.front.keepAliveSeconds()
  }

  /** Answer the current request with one of the SPEC's errors; that completes it. */
  answerError(err: BalancerError, isHead: boolean): void {
    const keepAlive = this.keepAlive()
    this.socket.write(errorAnswer(err, isHead, keepAlive, this.keepAliveSeconds()), 'latin1')
    this.finished(keepAlive)
  }

  /** The answer to the request just taken is on its way. */
  inFlight(exchange: HttpExchange): void {
    this.exchange = exchange
  }

  finished(keepAlive: boolean): void {
    this.exchange = undefined
    if (!keepAlive) {
      // The head said `Connection: close` (or we are closing): bytes that follow are dropped.
      this.linger()
      return
    }
    this.answered()
  }

  // NodeSideOwner

  nodeReadable(): void {
    this.nodeFull = false
    if (this.mode === NODE) this.next()
    else if (this.mode === UPGRADING && this.socket.isPaused()) startReading(this.socket)
  }

  nodeDestroyed(): void {
    if (this.mode === NODE || this.mode === UPGRADING) this.destroy()
  }

  /** node:http ended its side (an answer that said close, or the client's FIN passed on). */
  nodeFinished(): void {
    if (this.mode === NODE) this.linger(false)
    // An 'upgrade' listener that kept the NodeSide (not app.ts's, see FastFront.upgradeListener): a plain pipe.
    else if (this.mode === UPGRADING) this.socket.end()
  }

  /** node:http started answering a request passed to it. */
  nodeRequest(res: ServerResponse): void {
    this.lastRes = res
    this.requestsSeen++
    const failure = this.pendingFailure
    if (failure !== undefined && this.requestsSeen === this.headsPassed) {
      this.pendingFailure = undefined
      // After the app's request listener has started the exchange, which is then abandoned.
      process.nextTick(() => this.answerFailure(res, failure))
    }
    let done = false
    const answered = (): void => {
      if (done) return
      done = true
      this.nodeInFlight--
      if (this.nodeInFlight === 0) this.answered()
      else this.next()
    }
    res.once('finish', answered)
    res.once('close', answered)
  }

  /** llhttp refused what the edge passed it (the edge's rules are stricter, so this is rare). */
  nodeClientError(err: NodeJS.ErrnoException): void {
    if (this.mode !== NODE) return
    if (this.nodeInFlight > 1 || this.lastRes?.headersSent === true) this.destroy()
    else this.refuseNow({ ok: false, status: 400, reason: `malformed request (${err.code ?? err.message})` })
  }

  /** The upgrade handler takes the socket, with the bytes read after the upgrade request's head. */
  takeForUpgrade(): Buffer | undefined {
    const { socket } = this
    this.mode = GONE
    this.upgraded = true
    this.front.forget(this)
    socket.off('data', this.onData)
    socket.off('end', this.onEnd)
    socket.off('error', this.onError)
    socket.off('close', this.onClose)
    socket.off('drain', this.onDrain)
    // Paused as Node leaves a socket, so the upgrade handler's own pause / resume work.
    socket.pause()
    restoreHandle(socket)
    const rest = this.pending
    this.pending = undefined
    return rest
  }

  // Reading

  // SharedReader

  get largeReads(): boolean {
    return this.body !== undefined || this.mode === UPGRADING || this.upgraded
  }

  /** A read into the shared buffer: `view` is valid only until this returns. */
  onRead(view: Buffer): boolean {
    // The upgrade handler reads the socket as a stream, as if Node had read it.
    if (this.upgraded) return this.socket.push(Buffer.from(view))
    this.onData(view)
    if (this.pending !== undefined) this.pending = owned(this.pending)
    // Reading stops through the read gate, not through this answer.
    return true
  }

  private readonly onData = (chunk: Buffer): void => {
    if (this.mode === LINGER || this.mode === GONE) return
    if (this.mode === UPGRADING) {
      if (!this.nodeSide!.push(owned(chunk))) stopReading(this.socket)
      return
    }
    this.lastByteAt = Date.now()
    if (this.pending === undefined) {
      this.pending = chunk
      if (this.body === undefined && this.headSince === 0) this.headSince = this.lastByteAt
    } else this.pending = Buffer.concat([this.pending, chunk])
    this.next()
  }

  private readonly onDrain = (): void => {
    if (this.mode === FAST || this.mode === NODE) this.next()
  }

  /** One answer completed and none is in flight now. */
  private answered(): void {
    this.idleSince = Date.now()
    if (this.headSince !== 0) this.headSince = this.idleSince
    // A pipelined request waiting in `pending` is taken on the next turn, not inside the answer
    // just completed: other connections' requests queued meanwhile go first (a client that
    // pipelines cannot keep a replica connection to itself).
    if (this.pending !== undefined && !this.ended) setImmediate(this.nextLater)
    else this.next()
  }

  private readonly nextLater = (): void => {
    if (this.mode === FAST || this.mode === NODE) this.next()
  }

  /** Take pending requests while the rules allow: one at a time fast, --max-pipelined ahead to node:http. */
  private next(): void {
    // An answer completed synchronously inside the loop below: the loop carries on.
    if (this.running) return
    this.running = true
    try {
      this.take()
    } finally {
      this.running = false
    }
    if (this.mode !== FAST && this.mode !== NODE) return
    const pending = this.pending
    // A remainder that is a small part of a large read would keep all of that read alive.
    if (pending !== undefined && pending.buffer.byteLength >= 2 * pending.length + 4096) this.pending = compact(pending)
    if (this.wantsBytes()) {
      if (this.socket.isPaused()) startReading(this.socket)
    } else if (!this.socket.isPaused()) stopReading(this.socket)
  }

  /**
   * Would reading the socket now help? Yes while a body is being passed on (and node:http takes
   * it), when nothing is buffered, or when a head is still arriving (up to the head limit). No
   * while buffered requests wait for answers in flight or for the client to take them, or a
   * refusal or `Connection: close` means nothing more will be read as requests.
   */
  private wantsBytes(): boolean {
    if (this.nodeFull) return false
    if (this.body !== undefined) return this.pending === undefined
    if (this.refusal !== undefined || this.closeAfter) return false
    const pending = this.pending
    if (pending === undefined) return true
    return this.headIncomplete && pending.length <= this.front.readAheadBytes
  }

  /** Pass bytes to node:http; when its side wants no more for now, reading stops until it asks (nodeReadable). */
  private pushToNode(side: NodeSide, bytes: Buffer): void {
    if (side.push(owned(bytes))) return
    this.nodeFull = true
    stopReading(this.socket)
  }

  private take(): void {
    const limits = this.front.limits
    this.headIncomplete = false
    for (;;) {
      if (this.mode !== FAST && this.mode !== NODE) return
      if (this.body !== undefined) {
        if (!this.passBody()) return
        continue
      }
      if (this.refusal !== undefined) {
        if (!this.busy) this.refuseNow(this.refusal)
        return
      }
      if (this.closeAfter) {
        this.pending = undefined
        this.endIfDone()
        return
      }
      if (this.exchange !== undefined || this.nodeInFlight >= limits.maxPipelined) return
      // Answers the client is not taking: read nothing more until they drain.
      if (this.socket.writableNeedDrain || (this.nodeSide !== undefined && this.nodeSide.writableLength > 0)) return
      const buf = this.pending
      if (buf === undefined) {
        this.endIfDone()
        return
      }
      if (this.mode === FAST) {
        const parsed = parseFastRequest(buf, 0, this.socket, this.front.unique)
        if (parsed !== undefined && parsed.end <= limits.maxHeaderSize && parsed.request.headerCount <= limits.maxHeaders && this.front.takes(parsed.request.url)) {
          this.pending = parsed.end < buf.length ? buf.subarray(parsed.end) : undefined
          this.headSince = this.pending === undefined ? 0 : Date.now()
          this.exchangeWantsKeepAlive = !parsed.request.close
          this.front.start(parsed.request, this)
          continue
        }
      }
      const verdict = readHead(buf, limits)
      if (verdict === undefined) {
        // Incomplete: wait for more (the header timeout runs), unless the client is done sending.
        this.headIncomplete = true
        if (this.ended) {
          this.pending = undefined
          this.endIfDone()
        }
        return
      }
      if (!verdict.ok) {
        this.pending = undefined
        this.refusal = verdict
        continue
      }
      const side = this.toNode()
      this.nodeInFlight++
      this.headsPassed++
      this.pending = verdict.end < buf.length ? buf.subarray(verdict.end) : undefined
      this.headSince = this.pending === undefined ? 0 : Date.now()
      if (verdict.bodyLength !== 0) this.body = verdict.bodyLength === -1 ? new ChunkedScanner() : verdict.bodyLength
      if (verdict.close) this.closeAfter = true
      if (verdict.upgrade) {
        // node:http emits 'upgrade' (synchronously, or once it reads): the upgrade handler takes the socket from here.
        this.mode = UPGRADING
        this.body = undefined
        this.socket.pause()
      }
      // A copy: node:http may hold the head a while (it pauses its side while answers queue), and a
      // view would keep the whole read it came in alive.
      this.pushToNode(side, verdict.rewritten ?? compact(buf.subarray(0, verdict.end)))
    }
  }

  /** Pass body bytes on. True when the body is complete (go on with the next head). */
  private passBody(): boolean {
    const buf = this.pending
    if (buf === undefined) {
      this.endIfDone()
      return false
    }
    const side = this.nodeSide!
    const body = this.body!
    if (typeof body === 'number') {
      const take = Math.min(body, buf.length)
      this.pending = take < buf.length ? buf.subarray(take) : undefined
      this.body = body - take === 0 ? undefined : body - take
      this.pushToNode(side, take === buf.length ? buf : buf.subarray(0, take))
      if (this.body !== undefined) return false
    } else {
      let end: number
      try {
        end = body.scan(buf, 0)
      } catch (err) {
        this.failBody(400, `bad chunked body: ${(err as ChunkedError).message}`)
        return false
      }
      const max = this.front.limits.maxRequestBody
      if (max !== undefined && body.dataBytes > max) {
        this.failBody(413, `request body over ${max} bytes`)
        return false
      }
      const whole = end === -1 || end === buf.length
      this.pending = whole ? undefined : buf.subarray(end)
      if (end !== -1) this.body = undefined
      this.pushToNode(side, whole ? buf : buf.subarray(0, end))
      if (end === -1) return false
    }
    this.headSince = this.pending === undefined ? 0 : Date.now()
    return true
  }

  /** From now on node:http answers this connection's requests (after any fast answer in flight). */
  private toNode(): NodeSide {
    if (this.nodeSide !== undefined) return this.nodeSide
    this.mode = NODE
    const side = new NodeSide(this.socket, this)
    this.nodeSide = side
    this.front.handOff(side)
    return side
  }

  /** The client sent FIN and every request before it is answered (or cannot complete): close. */
  private endIfDone(): void {
    if (!this.ended) return
    if (this.mode === FAST || (this.mode === NODE && this.nodeSide === undefined)) {
      // Nothing of node:http's on this connection: close once the fast answer (if any) is out.
      if (this.exchange === undefined) this.linger()
      return
    }
    if (this.mode !== NODE || this.nodeEnded) return
    // node:http hears of the FIN once it has answered everything, or at once mid-body (that request cannot complete).
    if (this.nodeInFlight === 0 || this.body !== undefined) {
      this.nodeEnded = true
      this.nodeSide!.push(null)
    }
  }

  /** A refused request: our answer (after those before it, which are complete) and a lingering close. */
  private refuseNow(refusal: RejectedHead): void {
    this.refusal = undefined
    const err = edgeError(refusal.status, refusal.reason)
    let extra = ''
    for (const [name, value] of Object.entries(refusal.headers ?? {})) extra += `${name}: ${value}\r\n`
    const answer = errorAnswer(err, false, false, 0, extra)
    this.socket.write(answer, 'latin1')
    this.front.refusals++
    // No request was parsed: the access log shows the client's address and '-' for the rest.
    this.front.observer?.answeredByBalancer(refusal.status, { socket: this.socket }, DOWNSTREAM_PROTOCOL_ERROR, bodyBytes(answer))
    this.linger()
  }

  /**
   * A body that broke a rule or a limit, or went silent, after its head went to node:http: the
   * replica's attempt is abandoned, and the client gets our answer if none has started (else
   * its answer is cut short). node:http then closes, and we linger.
   */
  private failBody(status: number, reason: string): void {
    this.body = undefined
    this.pending = undefined
    this.closeAfter = true
    const err = edgeError(status, reason)
    if (this.requestsSeen < this.headsPassed) this.pendingFailure = err
    else this.answerFailure(this.lastRes, err)
  }

  private answerFailure(res: ServerResponse | undefined, err: BalancerError): void {
    if (res === undefined || res.headersSent || res.writableEnded) {
      this.destroy()
      return
    }
    if (!abandonExchange(res, err.status)) this.front.observer?.answeredByBalancer(err.status, res.req, DOWNSTREAM_PROTOCOL_ERROR)
    res.shouldKeepAlive = false
    this.front.refusals++
    sendError(res, err)
  }

  /** Stop reading requests; send our FIN after what is written; drop what arrives for LINGER_MS, then close. */
  private linger(closeNodeSide = true): void {
    if (this.mode === LINGER || this.mode === GONE) return
    this.mode = LINGER
    this.pending = undefined
    this.body = undefined
    this.lingerSince = Date.now()
    const side = this.nodeSide
    if (closeNodeSide && side !== undefined && !side.destroyed) side.destroy()
    if (!this.socket.writableEnded) this.socket.end()
    startReading(this.socket)
  }

  /** The front's sweep (every second): timeouts. */
  tick(now: number): void {
    const edge = this.front.limits
    if (this.mode === LINGER) {
      if (now - this.lingerSince >= LINGER_MS || (this.ended && this.socket.writableFinished)) this.destroy()
      return
    }
    if (this.mode !== FAST && this.mode !== NODE) return
    if (this.body !== undefined) {
      // A body that stopped coming (not because we stopped reading it).
      if (!this.socket.isPaused() && now - this.lastByteAt >= edge.clientTimeoutMs) this.failBody(408, `no request body bytes for ${edge.clientTimeoutMs} ms`)
      return
    }
    if (this.busy) return
    if (this.headSince !== 0) {
      if (now - this.headSince >= edge.headerTimeoutMs) this.refuseNow({ ok: false, status: 408, reason: `request head not complete within ${edge.headerTimeoutMs} ms` })
      return
    }
    // The keep-alive timeout is node:http's setting (app.ts sets it from --keep-alive-timeout).
    const keepAlive = this.front.server.keepAliveTimeout
    if (this.pending === undefined && keepAlive > 0 && now - this.idleSince >= keepAlive) this.destroy()
  }

  private readonly onEnd = (): void => {
    this.ended = true
    if (this.mode === LINGER) {
      this.destroy()
      return
    }
    // RFC 9112 9.6 / 9.3: requests received before the FIN are still answered, then we close.
    if (this.mode === FAST || this.mode === NODE) this.next()
    else if (this.mode === UPGRADING) this.nodeSide!.push(null)
  }

  private readonly onError = (): void => {
    // ECONNRESET and the like: 'close' follows and cleans up.
  }

  private readonly onClose = (): void => {
    const wasNode = this.mode === NODE || this.mode === UPGRADING
    this.mode = GONE
    this.pending = undefined
    this.front.forget(this)
    const exchange = this.exchange
    this.exchange = undefined
    exchange?.clientClosed()
    if (wasNode && this.nodeSide !== undefined && !this.nodeSide.destroyed) this.nodeSide.destroy()
  }

  /** Shutdown or a timeout: close now (callers check `idle` when it matters). */
  destroy(): void {
    this.socket.destroy()
  }
}

/** `buf`'s bytes in a buffer of their own (not a view of a larger one). */
function compact(buf: Buffer): Buffer {
  const copy = Buffer.allocUnsafeSlow(buf.length)
  buf.copy(copy)
  return copy
}
