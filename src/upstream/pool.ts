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
import { PoolClosedError } from './errors.js'
import { WriteBatcher } from './batcher.js'
import { StallWatch } from './stall-watch.js'
import { POOL_DEFAULTS, STALL_FACTOR, TYPICAL_AFTER } from './defaults.js'
import { Connection, type ConnectionOwner } from './connection.js'
import type { ConnectionUser, UpstreamRequest } from './request.js'

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
  /** The app's write batcher (batcher.ts); a pool of its own when left out. */
  batcher?: WriteBatcher
  /** The app's stall clock (stall-watch.ts); one of its own when left out. */
  stalls?: StallWatch
}

export class ConnectionPool implements ConnectionOwner {
  private readonly idle: Connection[] = []
  private readonly all = new Set<Connection>()
  private waiting: UpstreamRequest[] = []
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
  readonly batcher: WriteBatcher
  readonly stalls: StallWatch

  constructor(
    readonly host: string,
    readonly port: number,
    options: PoolOptions = {},
  ) {
    this.maxSockets = options.maxSockets ?? POOL_DEFAULTS.maxSockets
    this.maxIdle = options.maxIdle ?? POOL_DEFAULTS.maxIdle
    this.idleTimeoutMs = options.idleTimeoutMs ?? POOL_DEFAULTS.idleTimeoutMs
    this.pipelineDepth = options.pipeline ?? POOL_DEFAULTS.pipeline
    this.stallMs = options.stallMs ?? POOL_DEFAULTS.stallMs
    this.cooldownMs = options.cooldownMs ?? POOL_DEFAULTS.cooldownMs
    this.batcher = options.batcher ?? new WriteBatcher()
    this.stalls = options.stalls ?? new StallWatch()
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
   * freed. The user hears `onConnected` once the body may follow, then the response. A
   * pipelinable request may share a connection with others (when pipelining is on, see the
   * top of this file).
   */
  request(req: UpstreamRequest): void {
    if (this.closed) {
      queueMicrotask(() => req.user.onFailure(new PoolClosedError(), undefined))
      return
    }
    const turn = this.batcher.turn
    const sharing = req.pipelinable && this.pipelineDepth > 1 && this.coolingDown === undefined && this.batcher.batching()
    if (sharing) {
      const b = this.batchConn
      if (b !== undefined && b.turn === turn && b.timeoutMs === req.timeoutMs && b.canPipeline(this.pipelineDepth)) {
        this.pipelined++
        b.pipeline(req)
        return
      }
    }
    let conn = this.idle.pop()
    if (conn === undefined) {
      if (this.all.size >= this.maxSockets) {
        this.waiting.push(req)
        return
      }
      conn = new Connection(this, this.host, this.port, req.timeoutMs)
      this.all.add(conn)
    }
    conn.start(req)
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
      conn.start(w)
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
    if (w !== undefined) this.request(w)
  }

  /**
   * Close every connection, idle and busy: requests in flight fail with ECONNRESET (the proxy
   * retries those it safely can elsewhere); requests still waiting fail as never sent.
   */
  close(): void {
    this.closed = true
    const waiting = this.waiting
    this.waiting = []
    for (const w of waiting) w.user.onFailure(new PoolClosedError(), undefined)
    for (const conn of [...this.all]) conn.socket.destroy()
    this.idle.length = 0
    clearTimeout(this.coolingDown)
  }
}
