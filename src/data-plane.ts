/**
 * The data plane: every listener that proxies (the HTTP front with its fast path and
 * upgrades, the TCP-mode listener) over a read-only ring of Upstreams. The single process
 * (app.ts) builds one over the balancer's ring; each cluster worker (src/cluster/worker.ts)
 * builds its own over the ring it rebuilds from the primary's snapshots. The caller listens
 * and closes.
 */
import type { IncomingMessage, Server, ServerResponse } from 'node:http'
import type { Server as TcpServer } from 'node:net'
import type { Config } from './config.js'
import type { RingView } from './ring/ring.js'
import type { Admin } from './admin/api.js'
import type { RequestObserver } from './observe/request-observer.js'
import type { UpstreamError } from './upstream/errors.js'
import { Tunnels } from './upstream/tunnel.js'
import type { Upstream } from './upstream/upstream.js'
import { FastFront } from './front/fast.js'
import { createEdgeServer } from './front/edge-server.js'
import { createProxy } from './front/http.js'
import { createTcpProxy } from './front/tcp.js'
import { createUpgradeHandler } from './front/upgrade.js'
import { createChooser } from './route/bounded.js'
import { AttemptLoop } from './route/attempt.js'
import { keyExtractor, pathOf, type KeySource } from './route/keys.js'

export interface DataPlaneOptions {
  readonly ring: RingView<Upstream>
  /** Passive health: a replica refused or reset a connection. */
  readonly onUpstreamFailure: (upstream: Upstream, err: UpstreamError) => void
  readonly observer: RequestObserver | undefined
  /** The admin routes the main port serves (/rep, /add, /rm). */
  readonly admin: Admin
  /**
   * Processes serving the load side by side, each with its own in-flight counts (a cluster
   * worker: --workers N); bounded loads count each local request N times (route/bounded.ts).
   * 1 (the default): the single process, whose counts are all of them.
   */
  readonly loadShare?: number
}

export interface DataPlane {
  /** The HTTP listener (node:http, fed by the edge). */
  readonly server: Server
  readonly front: FastFront
  /** Open TCP-mode connections and WebSocket tunnels. */
  readonly tunnels: Tunnels
  /** The L4 listener when `--tcp-port` is set. */
  readonly tcp: TcpServer | undefined
}

export function createDataPlane(config: Config, options: DataPlaneOptions): DataPlane {
  const { admin } = options
  const keyOf = keyExtractor(config.key, config.slots)
  // One attempt loop per kind of request, over the ring's read-only view. HTTP's first pick
  // may be bounded (--balance-factor; ring.pick when off); upgrades and TCP connections take
  // the ring's owner. Failover, the retry policy and passive health are the same for all.
  const route = { ring: options.ring, upstreamTimeoutMs: config.upstreamTimeoutMs, onUpstreamFailure: options.onUpstreamFailure, observer: options.observer }
  const httpLoop = new AttemptLoop({ ...route, choose: createChooser(options.ring, config.balanceFactor, options.loadShare ?? 1) })
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
  return { server, front, tunnels, tcp }
}

/** Header names the request key reads, which the fast front must see exactly once. */
function keyHeadersOf(key: KeySource): string[] {
  if (key.kind === 'header') return [key.name]
  if (key.kind === 'cookie') return ['cookie']
  return []
}
