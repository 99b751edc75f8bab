/**
 * A data-plane worker (node:cluster): the single process's listeners and request path
 * (data-plane.ts) over a ring rebuilt from the primary's snapshots, its own keep-alive pools,
 * its own counters. Everything that decides lives in the primary: /add and /rm arriving here
 * go to it (channel.ts), passive health reports go to its checker, counters are summed there.
 */
import type { AddressInfo } from 'node:net'
import { buildConfig, type Config } from '../config.js'
import { createDataPlane, type DataPlane } from '../data-plane.js'
import { listen } from '../listen.js'
import { createAdmin, membershipRoutes } from '../admin/api.js'
import { MAIN_PATHS } from '../admin/plane.js'
import { createObservability, type Observability } from '../observe/observability.js'
import { Upstream } from '../upstream/upstream.js'
import { WriteBatcher } from '../upstream/batcher.js'
import { StallWatch } from '../upstream/stall-watch.js'
import type { UpstreamError } from '../upstream/errors.js'
import { WorkerMembership } from './worker-membership.js'
import { PrimaryChannel } from './channel.js'
import { countersOf } from './counters.js'
import { memberKey } from './snapshot.js'
import type { ToWorker } from './protocol.js'

/** How often counters go to the primary unasked (its sampler's rates are per second). */
const REPORT_MS = 1000

export function runWorker(): void {
  const channel = new PrimaryChannel()
  const log = (line: string): void => channel.send({ t: 'log', level: 'info', line })
  const error = (line: string): void => channel.send({ t: 'log', level: 'error', line })
  let membership: WorkerMembership | undefined
  let running: Running | undefined
  let activate: (() => void) | undefined

  process.on('message', (message: ToWorker) => {
    if (message.t === 'start') {
      // Built before listening, so snapshots that arrive meanwhile apply in order.
      const config = withToken(buildConfig(message.values), message.tokenDigest)
      const pool = { pipeline: config.upstreamPipeline, stallMs: config.pipelineStallMs, batcher: new WriteBatcher(), stalls: new StallWatch() }
      membership = new WorkerMembership(config, (handle) => new Upstream(handle, pool), error)
      const observe = createObservability(config, membership)
      // The primary's sampler computes rates from the sums; this one would only spend a timer.
      observe.sampler?.stop()
      membership.apply(message.snapshot)
      // The warm spare is ready to route but waits for a dead worker's place to listen.
      const go = message.listen ? Promise.resolve() : new Promise<void>((resolve) => (activate = resolve))
      if (!message.listen) channel.send({ t: 'standby' })
      go.then(() => start(config, membership!, observe)).then(
        (r) => (running = r),
        (err: NodeJS.ErrnoException) => {
          channel.send({ t: 'failed', message: err.message, code: err.code })
          process.exitCode = 1
          process.disconnect()
        },
      )
      return
    }
    if (message.t === 'reply') return channel.settle(message)
    if (message.t === 'listen') return activate?.()
    if (message.t === 'exit' && running === undefined) return process.exit(0)
    if (message.t === 'snapshot' && membership !== undefined) {
      membership.apply(message.snapshot)
      if (running !== undefined) channel.send({ t: 'applied', version: membership.version, digest: membership.tableDigest() })
      return
    }
    running?.handle(message)
  })
  channel.send({ t: 'hello' })
  // The primary is gone (it exited or was killed): nothing here may outlive it.
  process.on('disconnect', () => {
    channel.failAll()
    running?.exit()
    setTimeout(() => process.exit(0), 100).unref()
  })

  async function start(config: Config, membership: WorkerMembership, observe: Observability): Promise<Running> {
    const control = channel.control(() => membership.membership(), () => membership.ring.size)
    const routes = membershipRoutes(control, { maxBodyBytes: config.maxBodyBytes, bodyTimeoutMs: config.admin.bodyTimeoutMs })
    const mainPaths: readonly string[] = config.admin.onMain ? MAIN_PATHS : ['/rep']
    const admin = createAdmin(new Map([...routes].filter(([path]) => mainPaths.includes(path))), {
      listener: 'main',
      policy: config.admin,
      audit: (entry) => channel.send({ t: 'audit', entry }),
      membership: () => membership.membership(),
    })
    const onUpstreamFailure = (upstream: Upstream, err: UpstreamError): void => {
      membership.suspect(upstream)
      channel.send({ t: 'suspect', key: memberKey(upstream), code: err.code })
    }
    // Bounded loads: this worker's in-flight counts stand for 1/N of the load (route/bounded.ts).
    const plane = createDataPlane(config, { ring: membership.ring, onUpstreamFailure, observer: observe.observer, admin, loadShare: config.workers })
    // Through node:cluster: the primary holds the listening socket and hands this worker its
    // share of connections (round-robin); port 0 is the same port for every worker.
    await listen(plane.server, config.port, config.host, 'HTTP', 'port')
    if (plane.tcp) await listen(plane.tcp, config.tcpPort!, config.host, 'TCP mode', 'tcp-port')
    const running = new Running(config, membership, observe, plane, channel)
    channel.send({ t: 'ready', http: (plane.server.address() as AddressInfo).port, tcp: plane.tcp ? (plane.tcp.address() as AddressInfo).port : undefined })
    channel.send({ t: 'applied', version: membership.version, digest: membership.tableDigest() })
    log(`worker ${process.pid} serving`)
    return running
  }
}

/** The config with the admin token's digest, which the flag values sent to workers leave out. */
function withToken(config: Config, tokenDigest: string | undefined): Config {
  return Object.freeze({ ...config, admin: Object.freeze({ ...config.admin, tokenDigest }) })
}

class Running {
  private readonly timer: NodeJS.Timeout | undefined

  constructor(
    config: Config,
    private readonly membership: WorkerMembership,
    private readonly observe: Observability,
    private readonly plane: DataPlane,
    private readonly channel: PrimaryChannel,
  ) {
    if (config.metrics) {
      this.timer = setInterval(() => void this.report(undefined), REPORT_MS)
      this.timer.unref()
    }
  }

  handle(message: ToWorker): void {
    switch (message.t) {
      case 'drain':
        void this.membership.drain(message.key, message.timeoutMs).then(() => this.channel.send({ t: 'drained', id: message.id }))
        return
      case 'collect':
        void this.report(message.id)
        return
      case 'stop':
        this.stop()
        return
      case 'exit':
        this.exit()
        setImmediate(() => process.exit(0))
        return
    }
  }

  /** Stop accepting; idle keep-alive connections close, busy ones finish. */
  stop(): void {
    this.plane.server.close()
    this.plane.tcp?.close()
    this.plane.server.closeIdleConnections()
    this.plane.front.closeIdle()
  }

  exit(): void {
    if (this.timer) clearInterval(this.timer)
    this.stop()
    this.plane.server.closeAllConnections()
    this.plane.front.closeAll()
    this.plane.tunnels.closeAll()
    this.membership.closeAll()
    void this.observe.close()
  }

  private async report(id: number | undefined): Promise<void> {
    const count = (server: { getConnections(cb: (err: Error | null, n: number) => void): void } | undefined): Promise<number> =>
      new Promise((resolve) => (server ? server.getConnections((err, n) => resolve(err ? 0 : n)) : resolve(0)))
    const open = { http: await count(this.plane.server), tcp: await count(this.plane.tcp) }
    this.channel.send({ t: 'counters', id, counters: countersOf(this.membership.upstreams(), this.observe.metrics, open) })
  }
}
