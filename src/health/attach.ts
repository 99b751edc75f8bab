/**
 * Health wiring between the balancer and the checker: members join and leave the checker's
 * list with membership; a refused/reset connection seen by the proxy makes a replica suspect
 * (out of the ring at once) and asks the checker to confirm; the checker's verdicts replace
 * dead replicas and put healthy suspects back.
 */
import type { Balancer } from '../membership/balancer.js'
import type { HealthConfig } from '../config.js'
import type { Upstream } from '../upstream/upstream.js'
import { HealthMonitor } from './monitor.js'

export interface Health {
  readonly monitor: HealthMonitor<Upstream>
  /** The proxy's passive-detection hook (ProxyOptions.onUpstreamFailure). */
  readonly onUpstreamFailure: (upstream: Upstream, err: NodeJS.ErrnoException) => void
  close(): Promise<void>
}

export interface HealthLog {
  info: (line: string) => void
  error: (line: string) => void
}

/** Start the checker and wire it to `balancer`; call before `balancer.start()` so the first replicas are watched. */
export async function attachHealth(balancer: Balancer, config: HealthConfig, log: HealthLog): Promise<Health> {
  const monitor = new HealthMonitor<Upstream>(config)
  await monitor.start()

  balancer.on('joined', (u) => monitor.watch(u))
  balancer.on('dead', (u) => monitor.unwatch(u))
  balancer.on('left', (_name, _reason, u) => monitor.unwatch(u))
  balancer.on('suspect', (u) => log.info(`replica ${u.name} refused or reset a connection: out of the ring until checked`))
  balancer.on('restored', (u) => log.info(`replica ${u.name} answers its heartbeat again: back in the ring`))

  monitor.on('down', ({ target, reason, at, since }) => {
    if (balancer.get(target.name) !== target || balancer.stateOf(target) === 'dead') return
    log.info(`replica ${target.name} is dead (${reason}; ${at - since} ms after the first failure); replacing it`)
    balancer.replace(target.name).catch((err: Error) => log.error(`replacing ${target.name} failed: ${err.message}`))
  })
  monitor.on('up', ({ target }) => {
    if (balancer.stateOf(target) !== 'suspect') return
    balancer.restore(target).catch((err: Error) => log.error(`restoring ${target.name} failed: ${err.message}`))
  })
  monitor.on('error', (err) => log.error(`health: ${err.message}`))

  const onUpstreamFailure = (upstream: Upstream): void => {
    if (balancer.suspect(upstream)) monitor.suspect(upstream)
  }
  return { monitor, onUpstreamFailure, close: () => monitor.close() }
}
