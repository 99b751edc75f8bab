/**
 * The fast front: plain GET and HEAD requests — nearly all of a load balancer's traffic — are
 * read and answered on the raw socket (connection.ts), without node:http's per-request
 * IncomingMessage, ServerResponse, parser callbacks and timers; every other request, and the
 * rest of its connection, goes to node:http as before. Profiled and measured in the README's
 * Performance section.
 *
 * node:http stays the listening server: its limits, its timeouts and `close()` keep working
 * for every connection it is given. The front takes node:http's own 'connection' listener
 * out and calls it for the connections it hands over, so node:http treats them exactly as
 * ones it accepted itself (including its headers and request timeouts, which it only checks
 * for connections of a listening server).
 */
import type { Server } from 'node:http'
import type { Socket } from 'node:net'
import { pathOf } from '../route/keys.js'
import { HttpExchange } from '../route/exchange.js'
import type { ProxyOptions } from './http.js'
import { FrontConnection } from './fast-connection.js'
import { FastAnswer } from './fast-client.js'
import type { FastRequest } from './fast-request.js'

export interface FastFrontOptions extends ProxyOptions {
  /** Paths node:http must answer (the admin API): their connections are handed over. */
  isAdminPath(path: string): boolean
  /**
   * Lower-case header names the routing key reads (the `--key` header, `cookie`): a request
   * that repeats one goes to node:http, whose rules for joining repeats then apply.
   */
  keyHeaders: readonly string[]
}

/** How often idle keep-alive connections are looked for (the timeout's precision). */
const SWEEP_MS = 1000

type ConnectionListener = (this: Server, socket: Socket) => void

export class FastFront {
  readonly unique: ReadonlySet<string>
  /** Shutting down: answers say `Connection: close`, new connections go to node:http. */
  closing = false
  /** Requests the front answered itself, and connections it handed to node:http (for tests and stats). */
  served = 0
  handedOff = 0
  private readonly connections = new Set<FrontConnection>()
  private readonly nodeListener: ConnectionListener
  private readonly sweeper: NodeJS.Timeout

  constructor(
    readonly server: Server,
    private readonly options: FastFrontOptions,
  ) {
    const listeners = server.listeners('connection') as ConnectionListener[]
    if (listeners.length !== 1) throw new Error(`fast front: expected node:http's one 'connection' listener, found ${listeners.length}`)
    this.nodeListener = listeners[0]!
    server.removeListener('connection', this.nodeListener)
    server.on('connection', (socket: Socket) => this.accept(socket))
    this.unique = new Set(options.keyHeaders)
    this.sweeper = setInterval(() => this.sweep(), SWEEP_MS)
    this.sweeper.unref()
  }

  /** Connections the front itself is serving (not handed to node:http). */
  get size(): number {
    return this.connections.size
  }

  private accept(socket: Socket): void {
    if (this.closing) {
      this.handOff(socket)
      return
    }
    this.connections.add(new FrontConnection(socket, this))
  }

  /** node:http takes over `socket` (its unread bytes already put back). */
  handOff(socket: Socket): void {
    this.handedOff++
    this.nodeListener.call(this.server, socket)
    socket.resume()
  }

  forget(conn: FrontConnection): void {
    this.connections.delete(conn)
  }

  /** Does the fast front answer a request for `url`? (Not the admin API's.) */
  takes(url: string): boolean {
    return !this.options.isAdminPath(pathOf(url))
  }

  keepAliveSeconds(): number {
    return Math.floor(this.server.keepAliveTimeout / 1000)
  }

  /** Route a request: key -> the attempt loop (first choice, failover; the SPEC's 503 when the ring is empty). */
  start(req: FastRequest, conn: FrontConnection): void {
    this.served++
    const answer = new FastAnswer(req.method === 'HEAD', conn)
    const exchange = new HttpExchange(req, this.options.keyOf(req), this.options.loop, answer, false, false)
    answer.exchange = exchange
    conn.inFlight(exchange)
    this.options.loop.start(exchange)
  }

  /** Close connections idle for longer than node:http's keepAliveTimeout, as node:http would. */
  private sweep(): void {
    const now = Date.now()
    const timeout = this.server.keepAliveTimeout
    if (timeout <= 0) return
    for (const conn of this.connections) if (conn.idle && now - conn.idleSince >= timeout) conn.destroy()
  }

  /** Shutdown, step 1: idle connections close now, busy ones after their answer. */
  closeIdle(): void {
    this.closing = true
    for (const conn of this.connections) if (conn.idle) conn.destroy()
  }

  /** Shutdown, step 2: close every connection the front still has. */
  closeAll(): void {
    this.closing = true
    clearInterval(this.sweeper)
    for (const conn of [...this.connections]) conn.destroy()
  }
}
