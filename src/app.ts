/**
 * Wiring: config -> provider -> balancer (ring + membership) -> HTTP front (admin + proxy).
 * `startApp` is what `main` runs and what the end-to-end tests start on port 0.
 */
import type { Server } from 'node:http'
import type { AddressInfo, Server as TcpServer } from 'node:net'
import type { Config } from './config.js'
import { Balancer } from './membership/balancer.js'
import { createAdminPlane } from './admin/plane.js'
import { auditLine, type AuditSink } from './admin/audit.js'
import { attachHealth } from './health/attach.js'
import type { Tunnels } from './upstream/tunnel.js'
import { Upstream } from './upstream/upstream.js'
import { WriteBatcher } from './upstream/batcher.js'
import { StallWatch } from './upstream/stall-watch.js'
import { createProvider } from './replicas/index.js'
import type { ReplicaProvider } from './replicas/provider.js'
import { createDataPlane } from './data-plane.js'
import { boundAddress, listen, urlOf } from './listen.js'
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
  const stopReplacing = followMembership(balancer, provider, log, error)
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
  const { server, front, tunnels, tcp } = createDataPlane(config, { ring: balancer.ring, onUpstreamFailure: health.onUpstreamFailure, observer: observe.observer, admin })

  // Listeners first, replicas second: a port in use fails in milliseconds, before any replica
  // (process or container) is started. Until the replicas join, requests get 503.
  try {
    await listen(server, config.port, config.host, 'HTTP', 'port')
    if (tcp) await listen(tcp, config.tcpPort!, config.host, 'TCP mode', 'tcp-port')
    if (plane.server) await listen(plane.server, config.admin.port!, config.admin.host, 'admin', 'admin-port')
    await balancer.start()
  } catch (err) {
    stopReplacing()
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
  const url = urlOf(config.host, (server.address() as AddressInfo).port)
  const tcpPort = tcp ? (tcp.address() as AddressInfo).port : undefined
  const listeners: Listener[] = [{ name: 'HTTP', address: boundAddress(server) }]
  if (tcp) listeners.push({ name: 'TCP mode', address: boundAddress(tcp) })
  if (plane.server) listeners.push({ name: 'admin', address: boundAddress(plane.server) })

  const close = (): Promise<void> =>
    (closing ??= (async () => {
      stopReplacing()
      const adminClosed = plane.close()
      await health.close()
      const serverClosed = new Promise<void>((resolve) => server.close(() => resolve()))
      const tcpClosed = new Promise<void>((resolve) => (tcp ? tcp.close(() => resolve()) : resolve()))
      server.closeIdleConnections()
      front.closeIdle()
      // Draining waits for TCP connections and tunnels too (they count as in flight).
      await balancer.close()
      server.closeAllConnections()
      front.closeAll()
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
/**
 * Log membership changes and replace a replica that ends on its own. Returns the function
 * close() calls first: from then on a replica that ends is not replaced (its exit is part of
 * the shutdown, or too late to matter), and no log line says otherwise. Shared by the single
 * process and the cluster primary.
 */
export function followMembership(balancer: Balancer, provider: ReplicaProvider, log: (line: string) => void, error: (line: string) => void): () => void {
  balancer.on('joined', (u) => log(`replica ${u.name} joined (${u.host}:${u.port})`))
  balancer.on('left', (name, reason) => log(`replica ${name} left (${reason})`))
  balancer.on('error', (err) => error(`balancer: ${err.message}`))
  logTableChanges(balancer, log)
  let shuttingDown = false
  provider.onExit((name) => {
    if (shuttingDown) return
    log(`replica ${name} exited on its own; replacing it`)
    balancer.replace(name).catch((err: Error) => error(`replacing ${name} failed: ${err.message}`))
  })
  return () => {
    shuttingDown = true
  }
}

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
