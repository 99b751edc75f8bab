/**
 * Keep-alive connections to one replica, on plain `node:net` sockets: the proxy's upstream
 * client. It replaces `http.request` + `http.Agent`, which the profile showed costing more
 * than the rest of the proxy together (a ClientRequest, an IncomingMessage, two streams and
 * a dozen listeners per request). Here a request is one string written to a pooled socket,
 * and the response goes through a small parser (response-parser.ts) straight to the user.
 *
 * Bounded: at most `maxSockets` connections per replica (more requests wait in order), at most
 * `maxIdle` kept idle, most recently used first, and idle ones close after `idleTimeoutMs`
 * (before the replica's own keep-alive timeout, so we are the side that closes).
 *
 * Pipelining (`pipeline` > 1, `--upstream-pipeline`): under load, the GET and HEAD requests
 * for one replica within one event-loop turn share a connection, up to `pipeline` in flight on
 * it, so they leave in one write and their answers often come back in one read — fewer system
 * calls for the balancer and the replica alike. HTTP/1.1 pipelining's price is that a slow
 * answer delays the ones behind it, and that a replica must answer pipelined requests
 * correctly (node:http does). Two rules bound that price:
 * - Stall rescue: a request stuck behind a slow answer on its connection is sent again on a
 *   connection of its own (GET and HEAD are safe to repeat, RFC 9110 9.2.1); the late answer,
 *   when it comes, is read and dropped. Stuck means all of: it has waited `stallMs`, and
 *   STALL_FACTOR times the replica's typical answer time, and the replica has meanwhile
 *   answered a request written after it. The last two keep a replica that is slow across
 *   the board (starting up, overloaded: every answer waits its turn) from being taken for one
 *   slow answer blocking others; moving requests would then only add work. (Measured at 1,000
 *   connections: with the fixed bound alone, rescues and back-offs made pipelining slower
 *   than none.) The rescue starts after a replica's first TYPICAL_AFTER answers.
 * - Back-off: after a stall, or a replica closing a connection with requests still queued on
 *   it, that replica gets no pipelined requests for `cooldownMs`. So a replica with slow
 *   answers, or one that mishandles pipelining, costs at most one such event per cooldown.
 */
import { connect, type Socket } from 'node:net'
import { ResponseParser, type ResponseHandler } from './response-parser.js'
import { UPSTREAM_TIMEOUT } from '../route/retry.js'

/** The party a connection works for: the proxy's exchange for one request. */
export interface ConnectionUser {
  /** This connection carries the user's request from now on (maybe not connected yet). */
  onStart(conn: Connection): void
  /** The request head is on its way and the socket is connected: the body may flow. */
  onConnected(conn: Connection): void
  onHead(statusCode: number, statusMessage: string, rawHeaders: string[]): void
  /** Body bytes; exactly one call has `last` set, after which the connection is no longer the user's. */
  onData(chunk: Buffer, last: boolean): void
  /** The attempt failed (before or during the response); the connection is gone. */
  onFailure(err: NodeJS.ErrnoException, conn: Connection | undefined): void
}

export interface PoolOptions {
  maxSockets?: number
  maxIdle?: number
  idleTimeoutMs?: number
  /** Most requests in flight on one connection (1: no pipelining). */
  pipeline?: number
  /** ms a pipelined request may wait behind others before it is sent again alone (0: never). */
  stallMs?: number
  /** ms without pipelining after a stall or an aborted pipeline. */
  cooldownMs?: number
}

/** Defaults of the stall rescue and back-off (config.ts has the flags). */
export const PIPELINE_DEFAULTS = { stallMs: 50, cooldownMs: 10_000 } as const

/**
 * Write batching under load. Each write to a replica wakes that replica, and on a machine
 * with fewer cores than busy processes the woken process often preempts the balancer at once:
 * about one context switch per request. With many requests in flight, request heads are
 * instead held and written together at the end of the event-loop turn (setImmediate, after
 * every ready socket was read), one string per connection, and the proxy does the same with
 * its small answers (see
 * `batching()` in http.ts): measured at 100 connections, about 10 % more requests per second
 * and less CPU per request. With few in flight it would only serialise work that otherwise
 * overlaps, so below the threshold every write goes out at once.
 */
export const BATCH_ABOVE = 32
/** Requests in flight on all upstream connections of this process. */
let busy = 0
/** Connections holding request heads for the end of this turn (Connection.held). */
const holding: Connection[] = []
let flushScheduled = false
/** Counts the end-of-turn flushes: requests started under the same value share a turn. */
let turn = 0

/** Many requests in flight: worth holding writes until the end of this event-loop turn. */
export function batching(): boolean {
  return busy > BATCH_ABOVE
}

/** Work held for the end of this event-loop turn (no closure per request). */
export interface TurnEndTask {
  runAtTurnEnd(): void
}

const deferred: TurnEndTask[] = []
/** Run `task` at the end of this event-loop turn, after the held request writes. */
export function atTurnEnd(task: TurnEndTask): void {
  deferred.push(task)
  scheduleFlush()
}

function scheduleFlush(): void {
  if (flushScheduled) return
  flushScheduled = true
  setImmediate(flush)
}

function flush(): void {
  flushScheduled = false
  turn++
  if (holding.length > 0) {
    const conns = holding.splice(0)
    for (const conn of conns) conn.writeHeld()
  }
  if (deferred.length > 0) {
    const tasks = deferred.splice(0)
    for (const task of tasks) task.runAtTurnEnd()
  }
}

/** Body bytes up to this size join a held request head (Connection.write). */
const SMALL_HELD = 16 * 1024

/** Every upstream socket reads into this one buffer; each read is handled (and copied) at once. */
const READ_BUFFER = Buffer.allocUnsafe(64 * 1024)

function errnoError(code: string, message: string): NodeJS.ErrnoException {
  return Object.assign(new Error(message), { code })
}

/**
 * The code a pipelined request fails with when the connection ends before its answer for a
 * reason that is not its own (the answer before it failed, or the replica closed after it).
 */
export const PIPELINE_ABORTED = 'ERR_PIPELINE_ABORTED'

/**
 * The code a pipelined request fails with when it waited too long behind answers on its
 * connection (the stall rescue, see the top of this file): the exchange sends it again at once.
 */
export const PIPELINE_STALLED = 'ERR_PIPELINE_STALLED'

/** How often connections with queued requests are checked for stalls. */
const STALL_CHECK_MS = 10
/** A stall is at least this many times the replica's typical answer time. */
export const STALL_FACTOR = 8
/** Answers a pool must have seen before its typical answer time means anything. */
export const TYPICAL_AFTER = 16
/** Connections with pipelined requests queued (a connection leaves when its queue is empty). */
const watched = new Set<Connection>()
let stallTimer: NodeJS.Timeout | undefined

function watch(conn: Connection): void {
  watched.add(conn)
  if (stallTimer !== undefined) return
  // One timer for the whole process, running only while something is queued.
  stallTimer = setInterval(checkStalls, STALL_CHECK_MS)
  stallTimer.unref()
}

function checkStalls(): void {
  const now = Date.now()
  for (const conn of watched) conn.checkStall(now)
  if (watched.size === 0 && stallTimer !== undefined) {
    clearInterval(stallTimer)
    stallTimer = undefined
  }
}

/** Stands in for a pipelined request whose client went away: its answer is read and dropped. */
const DROPPED: ConnectionUser = {
  onStart() {},
  onConnected() {},
  onHead() {},
  onData() {},
  onFailure() {},
}

/** A request written behind the current one on the same connection. */
interface Queued {
  user: ConnectionUser
  isHead: boolean
  /** When it was written (Date.now()) and its place in the pool's order, for the stall rescue. */
  since: number
  seq: number
}

export class Connection implements ResponseHandler {
  readonly socket: Socket
  private readonly parser: ResponseParser
  private user: ConnectionUser | undefined
  /** Pipelined requests behind `user`, already written, answered in this order. */
  private readonly queued: Queued[] = []
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
    private readonly pool: ConnectionPool,
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

  /** Send a request head for `user`; `isHead`: a HEAD request, whose answer has no body. */
  start(user: ConnectionUser, head: string, isHead: boolean, timeoutMs: number, bodyless: boolean): void {
    this.user = user
    if (this.pool.rescues) {
      this.sentAt = Date.now()
      this.sentSeq = this.pool.nextSeq()
    }
    this.requestDone = bodyless
    this.parser.expect(isHead)
    if (timeoutMs !== this.timeoutMs) {
      this.timeoutMs = timeoutMs
      this.socket.setTimeout(timeoutMs)
    }
    this.send(user, head)
  }

  /** Count the request in flight and write its head (held to the end of the turn under load). */
  private send(user: ConnectionUser, head: string): void {
    user.onStart(this)
    if (++busy > BATCH_ABOVE) {
      if (this.held === '') {
        holding.push(this)
        scheduleFlush()
      }
      this.held += head
    } else {
      this.writeHeld()
      this.socket.write(head, 'latin1')
    }
    if (this.connected) user.onConnected(this)
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
  pipeline(user: ConnectionUser, head: string, isHead: boolean): void {
    this.queued.push({ user, isHead, since: Date.now(), seq: this.pool.nextSeq() })
    if (this.pool.rescues) watch(this)
    this.send(user, head)
  }

  /**
   * The stall rescue (the top of this file): when the oldest request still waiting in the
   * queue is stuck, every waiting request fails with PIPELINE_STALLED (the exchange sends it
   * again on a connection of its own) and its answer here will be dropped.
   */
  checkStall(now: number): void {
    const waiting = this.queued.find((q) => q.user !== DROPPED)
    if (waiting === undefined) {
      watched.delete(this)
      return
    }
    const limit = this.pool.stallLimit()
    // Stuck: waited past the limit, while the replica answered a request written after it.
    if (now - waiting.since < limit || this.pool.answeredSeq <= waiting.seq) return
    watched.delete(this)
    this.pool.backOff()
    const err = errnoError(PIPELINE_STALLED, `waited over ${Math.round(limit)} ms behind a slower answer on a shared connection`)
    for (const q of this.queued) {
      const user = q.user
      if (user === DROPPED) continue
      q.user = DROPPED
      user.onFailure(err, this)
    }
  }

  /** The current request is over (answered, failed or abandoned). */
  private detach(): ConnectionUser | undefined {
    const user = this.user
    if (user !== undefined) {
      this.user = undefined
      busy--
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
    const q = this.queued.find((e) => e.user === user)
    if (q !== undefined) q.user = DROPPED
  }

  pause(): void {
    this.socket.pause()
  }

  resume(): void {
    this.socket.resume()
  }

  // ResponseHandler: the parser's calls, passed on to the user.
  onHead(statusCode: number, statusMessage: string, rawHeaders: string[]): void {
    this.user?.onHead(statusCode, statusMessage, rawHeaders)
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
      this.queued.unshift(next)
      this.failQueued(errnoError(PIPELINE_ABORTED, 'the replica closed the connection before answering'))
      this.socket.destroy()
    } else if (reusable && !this.socket.destroyed) {
      this.pool.release(this)
    } else {
      this.socket.destroy()
    }
  }

  private fail(err: NodeJS.ErrnoException): void {
    const user = this.detach()
    this.parser.abort()
    this.socket.destroy()
    user?.onFailure(err, this)
    this.failQueued(errnoError(PIPELINE_ABORTED, `the request before it on the connection failed (${err.code ?? err.message})`))
  }

  /** Pipelined requests that will get no answer on this connection. */
  private failQueued(err: NodeJS.ErrnoException): void {
    const queued = this.queued.splice(0)
    for (const q of queued) {
      busy--
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
      this.fail(err as NodeJS.ErrnoException)
    }
    return true
  }

  private readonly onSocketEnd = (): void => {
    if (this.user !== undefined && !this.parser.eof()) {
      this.fail(errnoError('ECONNRESET', 'socket hang up'))
    }
    this.socket.destroy()
  }

  private readonly onSocketError = (err: NodeJS.ErrnoException): void => {
    this.fail(err)
  }

  private readonly onSocketClose = (): void => {
    if (this.user !== undefined || this.queued.length > 0) this.fail(errnoError('ECONNRESET', 'socket hang up'))
    this.pool.forget(this)
  }

  private readonly onSocketTimeout = (): void => {
    if (this.user !== undefined) this.fail(errnoError(UPSTREAM_TIMEOUT, 'upstream timeout'))
    else this.socket.destroy()
  }
}

interface Waiter {
  user: ConnectionUser
  head: string
  isHead: boolean
  timeoutMs: number
  bodyless: boolean
}

export class ConnectionPool {
  private readonly idle: Connection[] = []
  private readonly all = new Set<Connection>()
  private waiting: Waiter[] = []
  private closed = false
  private readonly maxSockets: number
  private readonly maxIdle: number
  private readonly idleTimeoutMs: number
  private readonly pipelineDepth: number
  readonly stallMs: number
  private readonly cooldownMs: number
  /** No pipelining until the back-off timer ends (see the top of this file). */
  private coolingDown: NodeJS.Timeout | undefined
  /** Requests written behind another on a shared connection, since the pool began. */
  pipelined = 0
  /** Times pipelining to this replica was paused for `cooldownMs`, since the pool began. */
  backOffs = 0
  /** Moving average of the time from writing a request to its answer's end, in ms. */
  typicalMs = 0
  /** Answers so far (counted up to TYPICAL_AFTER). */
  private answers = 0
  /** Requests written, in order (nextSeq); and the latest in that order that has been answered. */
  private written = 0
  answeredSeq = 0
  /**
   * Pipelining with the stall rescue: only then are requests timed and numbered (a clock read
   * per request and per answer that the pool otherwise has no use for).
   */
  readonly rescues: boolean
  /** The connection that took this turn's last pipelinable request. */
  private batchConn: Connection | undefined

  constructor(
    readonly host: string,
    readonly port: number,
    options: PoolOptions = {},
  ) {
    this.maxSockets = options.maxSockets ?? 512
    this.maxIdle = options.maxIdle ?? 256
    this.idleTimeoutMs = options.idleTimeoutMs ?? 30_000
    this.pipelineDepth = options.pipeline ?? 1
    this.stallMs = options.stallMs ?? PIPELINE_DEFAULTS.stallMs
    this.cooldownMs = options.cooldownMs ?? PIPELINE_DEFAULTS.cooldownMs
    this.rescues = this.pipelineDepth > 1 && this.stallMs > 0
  }

  /** The place of the next request written, in the order this pool writes them. */
  nextSeq(): number {
    return ++this.written
  }

  /** The request written `seq`-th was answered `ms` after it was written. */
  answered(ms: number, seq: number): void {
    if (this.answers < TYPICAL_AFTER) this.answers++
    // The first answer sets the average; from then on each moves it by a sixteenth of the difference.
    this.typicalMs = this.answers === 1 ? ms : this.typicalMs + (ms - this.typicalMs) / 16
    if (seq > this.answeredSeq) this.answeredSeq = seq
  }

  /** How long a pipelined request must wait before the stall rescue may move it (the top of this file). */
  stallLimit(): number {
    if (this.answers < TYPICAL_AFTER) return Infinity
    return Math.max(this.stallMs, STALL_FACTOR * this.typicalMs)
  }

  /** A pipeline stalled or was cut short: no pipelining to this replica for `cooldownMs`. */
  backOff(): void {
    if (this.coolingDown !== undefined) return
    this.backOffs++
    this.coolingDown = setTimeout(() => {
      this.coolingDown = undefined
    }, this.cooldownMs)
    this.coolingDown.unref()
  }

  /** Open connections (idle and busy). */
  get size(): number {
    return this.all.size
  }

  get idleCount(): number {
    return this.idle.length
  }

  /**
   * Send a request head on an idle connection, a new one, or (at the limit) the next one
   * freed. The user hears `onConnected` once the body may follow, then the response.
   * `bodyless`: no request body follows the head. `pipelinable`: a GET or HEAD without a body,
   * which may share a connection with others (when pipelining is on, see the top of this file).
   */
  request(user: ConnectionUser, head: string, isHead: boolean, timeoutMs: number, bodyless: boolean, pipelinable = false): void {
    if (this.closed) {
      queueMicrotask(() => user.onFailure(errnoError('ERR_POOL_CLOSED', 'the replica is leaving'), undefined))
      return
    }
    const sharing = pipelinable && this.pipelineDepth > 1 && this.coolingDown === undefined && batching()
    if (sharing) {
      const b = this.batchConn
      if (b !== undefined && b.turn === turn && b.timeoutMs === timeoutMs && b.canPipeline(this.pipelineDepth)) {
        this.pipelined++
        b.pipeline(user, head, isHead)
        return
      }
    }
    let conn = this.idle.pop()
    if (conn === undefined) {
      if (this.all.size >= this.maxSockets) {
        this.waiting.push({ user, head, isHead, timeoutMs, bodyless })
        return
      }
      conn = new Connection(this, this.host, this.port, timeoutMs)
      this.all.add(conn)
    }
    conn.start(user, head, isHead, timeoutMs, bodyless)
    if (sharing) {
      conn.turn = turn
      this.batchConn = conn
    }
  }

  /** Forget a request still waiting for a connection (its client went away). */
  cancel(user: ConnectionUser): void {
    if (this.waiting.length > 0) this.waiting = this.waiting.filter((w) => w.user !== user)
  }

  /** A connection finished its request and may carry another. */
  release(conn: Connection): void {
    const w = this.waiting.shift()
    if (w !== undefined) {
      conn.start(w.user, w.head, w.isHead, w.timeoutMs, w.bodyless)
      return
    }
    if (this.closed || this.idle.length >= this.maxIdle) {
      conn.socket.destroy()
      return
    }
    if (conn.timeoutMs !== this.idleTimeoutMs) {
      conn.timeoutMs = this.idleTimeoutMs
      conn.socket.setTimeout(this.idleTimeoutMs)
    }
    this.idle.push(conn)
  }

  /** A connection closed: drop it, and let a waiting request open a new one. */
  forget(conn: Connection): void {
    if (!this.all.delete(conn)) return
    if (this.batchConn === conn) this.batchConn = undefined
    const i = this.idle.lastIndexOf(conn)
    if (i !== -1) this.idle.splice(i, 1)
    const w = this.waiting.shift()
    if (w !== undefined) this.request(w.user, w.head, w.isHead, w.timeoutMs, w.bodyless)
  }

  /**
   * Close every connection, idle and busy: requests in flight fail with ECONNRESET (the proxy
   * retries those it safely can elsewhere); requests still waiting fail as never sent.
   */
  close(): void {
    this.closed = true
    const waiting = this.waiting
    this.waiting = []
    for (const w of waiting) w.user.onFailure(errnoError('ERR_POOL_CLOSED', 'the replica is leaving'), undefined)
    for (const conn of [...this.all]) conn.socket.destroy()
    this.idle.length = 0
    clearTimeout(this.coolingDown)
  }
}
