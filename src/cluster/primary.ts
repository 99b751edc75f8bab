/**
 * `--workers N` (N > 1): the primary process. It owns what decides — the provider and its
 * replicas, the balancer (membership and the ring), the health checker thread, the admin
 * listener, metrics — and N worker processes (worker.ts) own the proxied listeners, each with
 * its own pools, routing by the snapshots the coordinator posts (Envoy's main thread and
 * workers; nginx's master and worker processes). Started by main.ts, and by tests on port 0.
 */
import { join } from 'node:path'
import type { Server } from 'node:http'
import type { Config } from '../config.js'
import { followMembership, type Listener, type StartOptions } from '../app.js'
import { Balancer } from '../membership/balancer.js'
import type { Membership } from '../membership/types.js'
import { createAdminPlane } from '../admin/plane.js'
import { auditLine } from '../admin/audit.js'
import type { MembershipControl } from '../admin/api.js'
import { attachHealth } from '../health/attach.js'
import { createProvider } from '../replicas/index.js'
import { Upstream } from '../upstream/upstream.js'
import type { ReplicaHandle } from '../replicas/provider.js'
import type { PoolOptions } from '../upstream/pool.js'
import { createObservability, type Observability } from '../observe/observability.js'
import { boundAddress, listen, urlOf } from '../listen.js'
import { projectRoot } from '../paths.js'
import { Coordinator } from './coordinator.js'
import { CounterSum } from './counters.js'

/**
 * The built worker entry (`npm run build`), also when this module runs from source under the
 * tests' TypeScript loader: a worker then starts in a fraction of a second instead of
 * compiling every module first (as the process provider runs the built replica).
 */
const WORKER_ENTRY = join(projectRoot, 'dist', 'src', 'cluster', 'worker-main.js')

export interface ClusterApp {
  readonly config: Config
  readonly balancer: Balancer
  /** `http://host:port` of the workers' HTTP listener. */
  readonly url: string
  readonly tcpPort: number | undefined
  readonly adminServer: Server | undefined
  readonly adminUrl: string | undefined
  /** The primary's observability: /metrics and /stats sum the workers' counters. */
  readonly observe: Observability
  readonly coordinator: Coordinator
  readonly listeners: readonly Listener[]
  close(): Promise<void>
}

/**
 * A replica as the primary sees it: it proxies nothing itself, so waiting for it to be idle
 * (draining it, in /rm and at shutdown) means waiting for every worker to drain it.
 */
class ClusterUpstream extends Upstream {
  constructor(
    handle: ReplicaHandle,
    pool: PoolOptions,
    private readonly drainer: (upstream: Upstream, timeoutMs: number) => Promise<boolean>,
  ) {
    super(handle, pool)
  }

  override waitIdle(timeoutMs: number): Promise<boolean> {
    return this.drainer(this, timeoutMs)
  }
}

export async function startCluster(config: Config, options: StartOptions = {}): Promise<ClusterApp> {
  const log = options.log ?? (config.quiet ? () => {} : (line: string) => console.log(line))
  const error = options.error ?? ((line: string) => console.error(line))
  const audit = options.audit ?? ((entry) => console.log(auditLine(entry)))
  const provider = options.provider ?? (await createProvider(config))
  let coordinator: Coordinator | undefined
  const drain = (upstream: Upstream, timeoutMs: number): Promise<boolean> => (coordinator ? coordinator.drain(upstream, timeoutMs) : Promise.resolve(true))
  const balancer = new Balancer(config, provider, (handle) => new ClusterUpstream(handle, {}, drain))
  const stopReplacing = followMembership(balancer, provider, log, error)
  const observe = createObservability(config, balancer)
  const health = await attachHealth(balancer, config.health, { info: log, error })

  // Membership requests answer once every worker routes by the result (/add: every worker
  // sends to the new replicas; /rm: drained everywhere, then gone from every table).
  const synced = async (change: Promise<Membership>): Promise<Membership> => {
    const membership = await change
    await coordinator?.synced()
    return membership
  }
  const control: MembershipControl = {
    membership: () => balancer.membership(),
    add: (n, hostnames, weights) => synced(balancer.add(n, hostnames, weights)),
    remove: (n, hostnames) => synced(balancer.remove(n, hostnames)),
    ring: balancer.ring,
  }
  let closing: Promise<void> | undefined
  const plane = createAdminPlane({ balancer: control, config: config.admin, maxBodyBytes: config.maxBodyBytes, audit, closing: () => closing !== undefined })
  const sums = new CounterSum()
  const fold = (): void => {
    sums.fold(balancer.upstreams(), observe.metrics)
  }
  // /metrics and /stats: the workers' counters, collected at the scrape and summed per replica.
  for (const [path, route] of observe.routes()) {
    const scraped = path === '/metrics' || path === '/stats'
    plane.routes.set(path, scraped ? { methods: route.methods, handle: (req, res) => void coordinator!.collect(fold).then(() => route.handle(req, res)) } : route)
  }
  if (plane.server) observe.watchListener('admin', plane.server)
  observe.metrics?.openConnections('http', () => sums.open.http)
  if (config.tcpPort !== undefined) observe.metrics?.openConnections('tcp', () => sums.open.tcp)

  coordinator = new Coordinator({
    workers: config.workers,
    accept: config.workerAccept,
    entry: WORKER_ENTRY,
    values: config.source,
    tokenDigest: config.admin.tokenDigest,
    balancer,
    control,
    sums,
    audit,
    suspect: (upstream, code) => health.onUpstreamFailure(upstream, Object.assign(new Error(`reported by a worker: ${code ?? 'error'}`), { code })),
    log,
    error,
  })
  // Counters once a second too, for the sampler's rates on /stats and the dashboard.
  const folding = setInterval(fold, 1000)
  folding.unref()

  try {
    if (plane.server) await listen(plane.server, config.admin.port!, config.admin.host, 'admin', 'admin-port')
    await coordinator.start()
    await balancer.start()
    await coordinator.synced()
  } catch (err) {
    stopReplacing()
    clearInterval(folding)
    if (plane.server?.listening) plane.server.close()
    await coordinator.exit()
    await health.close()
    await balancer.close().catch(() => {})
    await observe.close()
    throw err
  }
  const url = urlOf(config.host, coordinator.http)
  const listeners: Listener[] = [{ name: 'HTTP', address: `${config.host.includes(':') ? `[${config.host}]` : config.host}:${coordinator.http}` }]
  if (coordinator.tcp !== undefined) listeners.push({ name: 'TCP mode', address: `${config.host.includes(':') ? `[${config.host}]` : config.host}:${coordinator.tcp}` })
  if (plane.server) listeners.push({ name: 'admin', address: boundAddress(plane.server) })
  const workers = coordinator

  const close = (): Promise<void> =>
    (closing ??= (async () => {
      stopReplacing()
      clearInterval(folding)
      const adminClosed = plane.close()
      await health.close()
      // Workers stop accepting; the balancer drains every replica on every worker (ClusterUpstream), then stops them.
      workers.stop()
      await balancer.close()
      await workers.exit()
      plane.closeAll()
      await adminClosed
      await observe.close()
    })())

  return { config, balancer, url, tcpPort: coordinator.tcp, adminServer: plane.server, adminUrl: plane.url(), observe, coordinator, listeners, close }
}
