/**
 * The edge of the HTTP listener. Every client connection is read by a FrontConnection
 * (fast-connection.ts), which applies the edge's rules and limits (README: Limits and
 * hardening) and passes checked requests to node:http through a NodeSide; with the fast front
 * on (the default), plain GET and HEAD requests — nearly all of a load balancer's traffic — are
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
import type { IncomingMessage, Server, ServerResponse } from 'node:http'
import type { Socket } from 'node:net'
import type { Duplex } from 'node:stream'
import { BalancerError } from '../errors.js'
import { EDGE_DEFAULTS, LINGER_MS, type EdgeConfig } from './edge-limits.js'
import { bodyBytes, errorAnswer } from './respond.js'
import { FrontConnection } from './fast-connection.js'
import { acceptPaused, readIntoSharedBuffer } from './shared-reads.js'
import { startReading } from './read-gate.js'
import { NodeSide } from './edge-node-side.js'
import { pathOf } from '../route/keys.js'
import { HttpExchange } from '../route/exchange.js'
import type { ProxyOptions } from './http.js'
import { FastAnswer } from './fast-client.js'
import type { FastRequest } from './fast-request.js'
import type { RequestObserver } from '../observe/request-observer.js'
import { UPSTREAM_OVERFLOW } from '../observe/flags.js'

export interface FastFrontOptions extends ProxyOptions {
  /** Paths node:http must answer (the admin API): their connections are handed over. */
  isAdminPath(path: string): boolean
  /**
   * Lower-case header names the routing key reads (the `--key` header, `cookie`): a request
   * that repeats one goes to node:http, whose rules for joining repeats then apply.
   */
  keyHeaders: readonly string[]
  /** Answer plain GET/HEAD requests on the raw socket (default true); false: every request through node:http. */
  fast?: boolean
  /** Limits and timeouts (default: the configuration's defaults). */
  edge?: EdgeConfig
  /** Client connections open elsewhere that count against edge.maxConnections (TCP mode, tunnels). */
  otherConnections?: () => number
  /** Most client connections open at once, these and the others together (default: no limit). */
  maxConnections?: number
  /** Told of each connection refused over maxConnections. */
  onConnectionRefused?: () => void
}

/** How often idle keep-alive connections are looked for (the timeout's precision). */
const SWEEP_MS = 500

type ConnectionListener = (this: Server, socket: Socket) => void

export class FastFront {
  readonly unique: ReadonlySet<string>
  /** Shutting down: answers say `Connection: close`, new connections go to node:http. */
  closing = false
  /** Requests the front answered itself, and connections it handed to node:http (for tests and stats). */
  served = 0
  handedOff = 0
  /** Requests the edge refused with its own 4xx/5xx, and connections refused over --max-connections. */
  refusals = 0
  refusedConnections = 0
  readonly fast: boolean
  readonly limits: EdgeConfig
  /** Told of the answers the edge writes itself (the HTTP attempt loop's observer). */
  readonly observer: RequestObserver | undefined
  /** Unparsed bytes held per connection before reading pauses: one head at its largest, and some. */
  readonly readAheadBytes: number
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
    // Nothing is read before accept() decides how the socket is read (shared-reads.ts).
    acceptPaused(server)
    // Ours first: the app's request listener may answer at once.
    server.prependListener('request', (req: IncomingMessage, res: ServerResponse) => {
      if (req.socket instanceof NodeSide) (req.socket.owner as FrontConnection).nodeRequest(res)
    })
    server.on('clientError', (err: NodeJS.ErrnoException, side: Duplex) => {
      if (side instanceof NodeSide) (side.owner as FrontConnection).nodeClientError(err)
      else side.destroy()
    })
    this.fast = options.fast ?? true
    this.observer = options.loop.observer
    this.limits = options.edge ?? EDGE_DEFAULTS
    this.readAheadBytes = this.limits.maxHeaderSize + 16 * 1024
    this.unique = new Set(options.keyHeaders)
    this.sweeper = setInterval(() => this.sweep(), SWEEP_MS)
    this.sweeper.unref()
  }

  /** Connections the front itself is serving (not handed to node:http). */
  get size(): number {
    return this.connections.size
  }

  private accept(socket: Socket): void {
    const max = this.options.maxConnections
    if (max !== undefined && this.connections.size + (this.options.otherConnections?.() ?? 0) >= max) {
      this.refuse(socket, max)
      return
    }
    let conn: FrontConnection | undefined
    if (readIntoSharedBuffer(socket, () => conn)) conn = new FrontConnection(socket, this, true)
    else {
      conn = new FrontConnection(socket, this)
      startReading(socket)
    }
    this.connections.add(conn)
  }

  /** Over --max-connections: a 503 and a lingering close, before reading anything. */
  private refuse(socket: Socket, max: number): void {
    this.refusedConnections++
    this.options.onConnectionRefused?.()
    socket.on('error', () => {})
    const err = new BalancerError('TOO_MANY_CONNECTIONS', `Too many open connections (the limit is ${max})`)
    const answer = errorAnswer(err, false, false, 0)
    socket.end(answer, 'latin1')
    this.observer?.answeredByBalancer(503, { socket }, UPSTREAM_OVERFLOW, bodyBytes(answer))
    socket.resume()
    const timer = setTimeout(() => socket.destroy(), LINGER_MS)
    timer.unref()
    socket.once('close', () => clearTimeout(timer))
  }

  /** node:http takes over a connection, as the NodeSide the edge feeds. */
  handOff(side: NodeSide): void {
    this.handedOff++
    this.nodeListener.call(this.server, side as unknown as Socket)
  }

  /**
   * The server's 'upgrade' listener around `handler`: the handler gets the client's own socket
   * (and the bytes read after the request's head), not the NodeSide node:http saw.
   */
  upgradeListener(handler: (req: IncomingMessage, socket: Duplex, head: Buffer) => void): (req: IncomingMessage, socket: Duplex, head: Buffer) => void {
    return (req, side, head) => {
      if (!(side instanceof NodeSide)) {
        handler(req, side, head)
        return
      }
      const rest = (side.owner as FrontConnection).takeForUpgrade()
      const socket = side.socket
      handler(req, socket, rest === undefined ? head : Buffer.concat([head, rest]))
    }
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

  /** Every connection's timeouts (header, body idle, keep-alive idle, lingering close), once a second. */
  private sweep(): void {
    const now = Date.now()
    for (const conn of this.connections) conn.tick(now)
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
