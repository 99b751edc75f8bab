/**
 * One keep-alive connection to a replica, on a plain `node:net` socket: it writes request
 * heads (held to the end of the turn under load, batcher.ts), reads answers through the small
 * parser (response-parser.ts) and hands them to the request's user; with pipelining it carries
 * several GET/HEAD requests at once and answers them in order (the rules are at the top of
 * pool.ts). The pool that owns it decides reuse, limits and back-off.
 */
import { connect, type Socket } from 'node:net'
import { ResponseParser, type ResponseHandler } from './response-parser.js'
import { PipelineAbortedError, PipelineStalledError, UpstreamTimeoutError, fromSocketError, hangUp, type UpstreamError } from './errors.js'
import type { TurnEndTask, WriteBatcher } from './batcher.js'
import type { StallWatch, StallWatched } from './stall-watch.js'
import { DROPPED, PipelineQueue } from './pipeline-queue.js'
import type { ConnectionUser, UpstreamConnection, UpstreamRequest } from './request.js'

/** What a connection needs of the pool that owns it (pool.ts). */
export interface ConnectionOwner {
  readonly batcher: WriteBatcher
  readonly stalls: StallWatch
  /** Requests are timed and numbered for the stall rescue. */
  readonly rescues: boolean
  /** The latest request, in the pool's write order, that has been answered. */
  readonly answeredSeq: number
  nextSeq(): number
  answered(ms: number, seq: number): void
  stallLimit(): number
  backOff(): void
  release(conn: Connection): void
  forget(conn: Connection): void
}


/** Body bytes up to this size join a held request head (Connection.write). */
const SMALL_HELD = 16 * 1024

/** Every upstream socket reads into this one buffer; each read is handled (and copied) at once. */
const READ_BUFFER = Buffer.allocUnsafe(64 * 1024)

export class Connection implements UpstreamConnection, ResponseHandler, TurnEndTask, StallWatched {
  readonly socket: Socket
  private readonly parser: ResponseParser
  private user: ConnectionUser | undefined
  /** Pipelined requests behind `user`, already written, answered in this order. */
  private readonly queued = new PipelineQueue()
  /** The event-loop turn in which this connection last took a request that may be pipelined. */
  turn = -1
  /** When the request now being answered was written (Date.now()), for the typical answer time. */
  private sentAt = 0
  /** Its place in the order the pool wrote requests (ConnectionPool.nextSeq). */
  private sentSeq = 0
  /** Requests this connection carried before the current one (0: a fresh connection). */
  uses = 0
  connected = false
  /** The current request, body included, has been written completely. */
  requestDone = false
  /** The socket's inactivity timeout now in force. */
  timeoutMs: number
  /**
   * Request bytes held for the end of this turn, as latin1 (under load, see BATCH_ABOVE): one
   * string and one write for all the requests pipelined in a turn, rather than a cork and a
   * writev of one string each.
   */
  private held = ''

  constructor(
    private readonly pool: ConnectionOwner,
    host: string,
    port: number,
    timeoutMs: number,
  ) {
    this.parser = new ResponseParser(this)
    this.timeoutMs = timeoutMs
    // `onread` hands us each read in one shared buffer, bypassing the readable-stream
    // machinery (no 'data' event, no per-read allocation); what we keep is copied out.
    const socket = connect({ host, port, noDelay: true, onread: { buffer: READ_BUFFER, callback: this.onSocketRead } })
    socket.setTimeout(timeoutMs)
    socket.on('connect', this.onConnect)
    socket.on('end', this.onSocketEnd)
    socket.on('error', this.onSocketError)
    socket.on('close', this.onSocketClose)
    socket.on('timeout', this.onSocketTimeout)
    this.socket = socket
  }

  /** Did an earlier request use this connection? (A failure then may just be a stale socket.) */
  get reused(): boolean {
    return this.uses > 0
  }

  /** Send a request's head; the connection is the request's until its answer ends. */
  start(req: UpstreamRequest): void {
    const { user, timeoutMs } = req
    this.user = user
    if (this.pool.rescues) {
      this.sentAt = Date.now()
      this.sentSeq = this.pool.nextSeq()
    }
    this.requestDone = req.bodyless
    this.parser.expect(req.isHead)
    if (timeoutMs !== this.timeoutMs) {
      this.timeoutMs = timeoutMs
      this.socket.setTimeout(timeoutMs)
    }
    this.send(user, req.head)
  }

  /** Count the request in flight and write its head (held to the end of the turn under load). */
  private send(user: ConnectionUser, head: string): void {
    user.onStart(this)
    const batcher = this.pool.batcher
    batcher.busy++
    if (batcher.batching()) {
      if (this.held === '') batcher.hold(this)
      this.held += head
    } else {
      this.writeHeld()
      this.socket.write(head, 'latin1')
    }
    if (this.connected) user.onConnected(this)
  }

  /** TurnEndTask: the end of the turn, when held writes go out. */
  runAtTurnEnd(): void {
    this.writeHeld()
  }

  /** Write what is held for the end of the turn (at its end, or before bytes that must follow it). */
  writeHeld(): void {
    const held = this.held
    if (held === '') return
    this.held = ''
    if (!this.socket.destroyed) this.socket.write(held, 'latin1')
  }

  /** Requests in flight on this connection. */
  get depth(): number {
    return (this.user === undefined ? 0 : 1) + this.queued.length
  }

  /** May another GET/HEAD be written behind what this connection carries now? */
  canPipeline(max: number): boolean {
    return this.user !== undefined && this.requestDone && this.depth < max && !this.socket.destroyed && !this.socket.isPaused()
  }

  /** Write a bodyless request behind the ones in flight; its answer comes after theirs. */
  pipeline(req: UpstreamRequest): void {
    this.queued.push(req.user, req.isHead, this.pool.nextSeq())
    if (this.pool.rescues) this.pool.stalls.watch(this)
    this.send(req.user, req.head)
  }

  /**
   * The stall rescue (the top of this file): when the oldest request still waiting in the
   * queue is stuck, every waiting request fails with PipelineStalledError (the exchange sends it
   * again on a connection of its own) and its answer here will be dropped.
   */
  checkStall(now: number): boolean {
    const waiting = this.queued.oldestWaiting()
    if (waiting === undefined) return false
    const limit = this.pool.stallLimit()
    // Stuck: waited past the limit, while the replica answered a request written after it.
    if (now - waiting.since < limit || this.pool.answeredSeq <= waiting.seq) return true
    this.pool.backOff()
    this.queued.failWaiting(new PipelineStalledError(`waited over ${Math.round(limit)} ms behind a slower answer on a shared connection`), this)
    return false
  }

  /** The current request is over (answered, failed or abandoned). */
  private detach(): ConnectionUser | undefined {
    const user = this.user
    if (user !== undefined) {
      this.user = undefined
      this.pool.batcher.busy--
    }
    return user
  }

  /** Request body bytes; false when the socket wants the writer to wait for 'drain'. */
  write(chunk: Buffer | string): boolean {
    if (this.held !== '') {
      // Right behind a held head: a small body joins it (latin1 keeps the bytes as they are).
      if (chunk.length <= SMALL_HELD) {
        this.held += typeof chunk === 'string' ? chunk : chunk.toString('latin1')
        return true
      }
      this.writeHeld()
    }
    return this.socket.write(chunk)
  }

  /** The request body is complete (the caller wrote its final framing). */
  endRequest(): void {
    this.requestDone = true
  }

  /**
   * `user` gives up on its request (its client went away): close without a word, unless
   * pipelined requests share the connection — then its answer is read and dropped.
   */
  discard(user: ConnectionUser): void {
    if (user === this.user) {
      if (this.queued.length === 0) {
        this.detach()
        this.parser.abort()
        this.socket.destroy()
        return
      }
      this.user = DROPPED
      // It may have held the replica back for its slow client.
      if (this.socket.isPaused()) this.socket.resume()
      return
    }
    this.queued.drop(user)
  }

  pause(): void {
    this.socket.pause()
  }

  resume(): void {
    this.socket.resume()
  }

  // ResponseHandler: the parser's calls, passed on to the user.
  onHead(statusCode: number, statusMessage: string, headText: string): void {
    this.user?.onHead(statusCode, statusMessage, headText)
  }

  onData(chunk: Buffer, last: boolean): void {
    const user = this.user
    if (user === undefined) return
    if (!last) {
      user.onData(chunk, false)
      return
    }
    this.detach()
    this.uses++
    if (this.pool.rescues) this.pool.answered(Date.now() - this.sentAt, this.sentSeq)
    const next = this.queued.shift()
    if (next !== undefined && this.parser.keepAlive && !this.socket.destroyed) {
      // The next pipelined answer: the parser goes on with any bytes left in this read.
      this.user = next.user
      this.sentAt = next.since
      this.sentSeq = next.seq
      this.parser.expect(next.isHead)
      user.onData(chunk, true)
      return
    }
    const reusable = this.parser.keepAlive && this.requestDone && !this.parser.trailing
    user.onData(chunk, true)
    if (next !== undefined) {
      // The replica closes after this answer: the requests behind it will not be answered.
      this.pool.backOff()
      this.queued.putBack(next)
      this.failQueued(new PipelineAbortedError('the replica closed the connection before answering'))
      this.socket.destroy()
    } else if (reusable && !this.socket.destroyed) {
      this.pool.release(this)
    } else {
      this.socket.destroy()
    }
  }

  private fail(cause: Error): void {
    const err = fromSocketError(cause)
    err.reused = this.uses > 0
    const user = this.detach()
    this.parser.abort()
    this.socket.destroy()
    user?.onFailure(err, this)
    this.failQueued(new PipelineAbortedError(`the request before it on the connection failed (${err.code || err.message})`))
  }

  /** Pipelined requests that will get no answer on this connection. */
  private failQueued(err: UpstreamError): void {
    for (const q of this.queued.takeAll()) {
      this.pool.batcher.busy--
      q.user.onFailure(err, this)
    }
  }

  private readonly onConnect = (): void => {
    this.connected = true
    this.user?.onConnected(this)
  }

  private readonly onSocketRead = (nread: number, buf: Buffer): boolean => {
    if (this.user === undefined) {
      // Bytes on an idle connection (nobody asked): it cannot be trusted any more.
      this.socket.destroy()
      return false
    }
    try {
      // A copy: READ_BUFFER is reused by the next read, and the chunk may be queued for the client.
      this.parser.execute(Buffer.from(buf.subarray(0, nread)))
    } catch (err) {
      this.fail(err as Error)
    }
    return true
  }

  private readonly onSocketEnd = (): void => {
    if (this.user !== undefined && !this.parser.eof()) {
      this.fail(hangUp())
    }
    this.socket.destroy()
  }

  private readonly onSocketError = (err: Error): void => {
    this.fail(err)
  }

  private readonly onSocketClose = (): void => {
    if (this.user !== undefined || this.queued.length > 0) this.fail(hangUp())
    this.pool.forget(this)
  }

  private readonly onSocketTimeout = (): void => {
    if (this.user !== undefined) this.fail(new UpstreamTimeoutError())
    else this.socket.destroy()
  }
}

