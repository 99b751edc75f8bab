/**
 * Wiring: config -> provider -> balancer (ring + membership) -> HTTP front (admin + proxy).
 * `startApp` is what `main` runs and what the end-to-end tests start on port 0.
 */
import type { IncomingMessage, Server, ServerResponse } from 'node:http'
import type { AddressInfo, Server as TcpServer } from 'node:net'
import { OPTIONS, type Config } from './config.js'
import { Balancer } from './membership/balancer.js'
import { createAdminPlane } from './admin/plane.js'
import { auditLine, type AuditSink } from './admin/audit.js'
import { FastFront } from './front/fast.js'
import { createEdgeServer } from './front/edge-server.js'
import { createProxy } from './front/http.js'
import { createChooser } from './route/bounded.js'
import { AttemptLoop } from './route/attempt.js'
import { attachHealth } from './health/attach.js'
import { createTcpProxy } from './front/tcp.js'
import { Tunnels } from './upstream/tunnel.js'
import { Upstream } from './upstream/upstream.js'
import { WriteBatcher } from './upstream/batcher.js'
import { StallWatch } from './upstream/stall-watch.js'
import { createUpgradeHandler } from './front/upgrade.js'
import { keyExtractor, pathOf, type KeySource } from './route/keys.js'
import { createProvider } from './replicas/index.js'
import type { ReplicaProvider } from './replicas/provider.js'
import { createObservability, type Observability } from './observe/observability.js'

export interface App {
  readonly config: Config
  readonly balancer: Balancer
  readonly server: Server
  /** `http://host:port` of the front, with a loopback host when listening on all interfaces. */
  readonly url: string
  /** The L4 listener when `--tcp-port` is set. */
  readonly tcp: TcpServer | undefined
  /** Its port (the bound one when `--tcp-port 0`). */
  readonly tcpPort: number | undefined
  /** The admin listener (--admin-port); undefined when off. */
  readonly adminServer: Server | undefined
  /** `http://host:port` of the admin listener (the bound port when --admin-port 0). */
  readonly adminUrl: string | undefined
  /** Open TCP-mode connections and WebSocket tunnels. */
  readonly tunnels: Tunnels
  /** Metrics, /stats, the dashboard and the access log (src/observe/). */
  readonly observe: Observability
  /** Every listening socket the balancer opened, with its real bound address (main logs them). */
  readonly listeners: readonly Listener[]
  /** Stop accepting, drain, stop every replica. Safe to call twice. */
  close(): Promise<void>
}

export interface Listener {
  /** What it serves: `HTTP`, `TCP mode`, ... */
  readonly name: string
  /** `host:port` as bound (`[::1]:5000` for IPv6). */
  readonly address: string
}

export interface StartOptions {
  /** Use this provider instead of the one the config names (tests). */
  provider?: ReplicaProvider
  log?: (line: string) => void
  /** Where error lines go (default stderr; tests that expect errors keep them out of the output). */
  error?: (line: string) => void
  /** Where audit entries of membership requests go (default: an `audit {...}` line on stdout, even with --quiet). */
  audit?: AuditSink
}

export async function startApp(config: Config, options: StartOptions = {}): Promise<App> {
  const log = options.log ?? (config.quiet ? () => {} : (line: string) => console.log(line))
  const error = options.error ?? ((line: string) => console.error(line))
  const provider = options.provider ?? (await createProvider(config))
  // One write batcher and one stall clock for every replica's pool: batching counts the
  // whole process's upstream requests, and one timer watches every pipelined connection.
  const pool = { pipeline: config.upstreamPipeline, stallMs: config.pipelineStallMs, batcher: new WriteBatcher(), stalls: new StallWatch() }
  const balancer = new Balancer(config, provider, (handle) => new Upstream(handle, pool))
  balancer.on('joined', (u) => log(`replica ${u.name} joined (${u.host}:${u.port})`))
  balancer.on('left', (name, reason) => log(`replica ${name} left (${reason})`))
  balancer.on('error', (err) => error(`balancer: ${err.message}`))
  logTableChanges(balancer, log)
  // Set as soon as close() is called: from then on a replica that ends is not replaced (its
  // exit is part of the shutdown, or too late to matter), and no log line says otherwise.
  let shuttingDown = false
  provider.onExit((name) => {
    if (shuttingDown) return
    log(`replica ${name} exited on its own; replacing it`)
    balancer.replace(name).catch((err: Error) => error(`replacing ${name} failed: ${err.message}`))
  })
  // Counting starts with the first replicas: each gets its counters as it joins.
  const observe = createObservability(config, balancer)
  // The health checker (a worker thread) watches every replica from its first join.
  const health = await attachHealth(balancer, config.health, { info: log, error })

  let closing: Promise<void> | undefined
  const audit = options.audit ?? ((entry) => console.log(auditLine(entry)))
  const plane = createAdminPlane({ balancer, config: config.admin, maxBodyBytes: config.maxBodyBytes, audit, closing: () => closing !== undefined })
  const admin = plane.main
  // /metrics, /stats and /dashboard: on the admin listener only, never on the proxied port.
  for (const [path, route] of observe.routes()) plane.routes.set(path, route)
  if (plane.server) observe.watchListener('admin', plane.server)
  const keyOf = keyExtractor(config.key, config.slots)
  // One attempt loop per kind of request, over the ring's read-only view. HTTP's first pick
  // may be bounded (--balance-factor; ring.pick when off); upgrades and TCP connections take
  // the ring's owner. Failover, the retry policy and passive health are the same for all.
  const route = { ring: balancer.ring, upstreamTimeoutMs: config.upstreamTimeoutMs, onUpstreamFailure: health.onUpstreamFailure, observer: observe.observer }
  const httpLoop = new AttemptLoop({ ...route, choose: createChooser(balancer.ring, config.balanceFactor) })
  const proxy = createProxy({ loop: httpLoop, keyOf })
  // Every connection is read by the edge (src/front/fast*.ts, edge-*.ts), which runs every
  // timeout and limit; node:http gets checked requests (edge-server.ts has its settings).
  const server = createEdgeServer(config.edge, (req: IncomingMessage, res: ServerResponse) => {
    if (!admin(req, res, pathOf(req.url ?? '/'))) proxy(req, res)
  })
  // TCP-mode connections and upgraded (WebSocket) requests share one limit and idle timeout
  // with the HTTP connections.
  let front: FastFront | undefined
  const tunnels = new Tunnels({ maxConnections: config.maxConnections, idleTimeoutMs: config.idleTimeoutMs, otherConnections: () => front?.size ?? 0 })
  // Plain GET/HEAD requests are read and answered on the raw socket (with --fast-front); the
  // rest go to `server`, every request through the edge's rules.
  front = new FastFront(server, {
    loop: httpLoop,
    keyOf,
    isAdminPath: admin.handles,
    keyHeaders: keyHeadersOf(config.key),
    fast: config.fastFront,
    edge: config.edge,
    maxConnections: config.maxConnections,
    otherConnections: () => tunnels.size,
    onConnectionRefused: () => tunnels.noteRefused(),
  })
  server.on('upgrade', front.upgradeListener(createUpgradeHandler({ loop: new AttemptLoop(route), keyOf, tunnels })))
  const tcp =
    config.tcpPort === undefined
      ? undefined
      : createTcpProxy({ loop: new AttemptLoop(route), key: config.tcpKey, slots: config.slots, connectTimeoutMs: config.tcpConnectTimeoutMs, tunnels })

  // Listeners first, replicas second: a port in use fails in milliseconds, before any replica
  // (process or container) is started. Until the replicas join, requests get 503.
  try {
    await listen(server, config.port, config.host, 'HTTP', 'port')
    if (tcp) await listen(tcp, config.tcpPort!, config.host, 'TCP mode', 'tcp-port')
    if (plane.server) await listen(plane.server, config.admin.port!, config.admin.host, 'admin', 'admin-port')
    await balancer.start()
  } catch (err) {
    shuttingDown = true
    if (server.listening) server.close()
    if (tcp?.listening) tcp.close()
    if (plane.server?.listening) plane.server.close()
    await health.close()
    await balancer.close().catch(() => {})
    await observe.close()
    throw err
  }
  observe.watchListener('http', server)
  if (tcp) observe.watchListener('tcp', tcp)
  const { port } = server.address() as AddressInfo
  const host = config.host === '0.0.0.0' || config.host === '::' ? '127.0.0.1' : config.host
  const url = `http://${host.includes(':') ? `[${host}]` : host}:${port}`
  const tcpPort = tcp ? (tcp.address() as AddressInfo).port : undefined
  const listeners: Listener[] = [{ name: 'HTTP', address: boundAddress(server) }]
  if (tcp) listeners.push({ name: 'TCP mode', address: boundAddress(tcp) })
  if (plane.server) listeners.push({ name: 'admin', address: boundAddress(plane.server) })

  const close = (): Promise<void> =>
    (closing ??= (async () => {
      shuttingDown = true
      const adminClosed = plane.close()
      await health.close()
      const serverClosed = new Promise<void>((resolve) => server.close(() => resolve()))
      const tcpClosed = new Promise<void>((resolve) => (tcp ? tcp.close(() => resolve()) : resolve()))
      server.closeIdleConnections()
      front?.closeIdle()
      // Draining waits for TCP connections and tunnels too (they count as in flight).
      await balancer.close()
      server.closeAllConnections()
      front?.closeAll()
      tunnels.closeAll()
      plane.closeAll()
      await Promise.all([serverClosed, tcpClosed, adminClosed])
      await observe.close()
    })())

  return { config, balancer, server, url, adminServer: plane.server, adminUrl: plane.url(), tcp, tcpPort, tunnels, observe, listeners, close }
}

/**
 * Every change of the routing table is logged with its digest (Balancer.tableDigest), once per
 * burst: balancers that print the same digest route every key alike.
 */
function logTableChanges(balancer: Balancer, log: (line: string) => void): void {
  let pending = false
  const changed = (): void => {
    if (pending) return
    pending = true
    setImmediate(() => {
      pending = false
      log(`routing table ${balancer.tableDigest()} (${balancer.ring.size} replicas in the ring)`)
    })
  }
  for (const event of ['joined', 'left', 'suspect', 'restored', 'dead'] as const) balancer.on(event, changed)
}

/** Header names the request key reads, which the fast front must see exactly once. */
function keyHeadersOf(key: KeySource): string[] {
  if (key.kind === 'header') return [key.name]
  if (key.kind === 'cookie') return ['cookie']
  return []
}

/**
 * Listen, or fail with a message that says which setting to change: the `flag` of the
 * option and its environment twin (`--port` or `LB_PORT`).
 */
function listen(server: TcpServer, port: number, host: string, what: string, flag: string): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException): void => {
      const where = `${host.includes(':') ? `[${host}]` : host}:${port}`
      const option = OPTIONS.find((o) => o.flag === flag)
      const change = option ? `; choose another port with --${option.flag} or ${option.env}` : ''
      // The same code as the system error, a message that says what to change.
      const explained = (message: string): Error => Object.assign(new Error(message, { cause: err }), { code: err.code })
      if (err.code === 'EADDRINUSE') reject(explained(`the ${what} port is in use: ${where} (EADDRINUSE)${change}`))
      else if (err.code === 'EACCES') reject(explained(`no permission to listen on ${where} for ${what} (EACCES)${change}`))
      else if (err.code === 'EADDRNOTAVAIL') reject(explained(`cannot listen on ${where} for ${what}: no such local address (EADDRNOTAVAIL); check --host or LB_HOST`))
      else reject(err)
    }
    server.once('error', onError)
    server.listen(port, host, () => {
      server.off('error', onError)
      resolve()
    })
  })
}

function boundAddress(server: TcpServer): string {
  const a = server.address() as AddressInfo
  return a.family === 'IPv6' ? `[${a.address}]:${a.port}` : `${a.address}:${a.port}`
}
