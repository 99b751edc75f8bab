/**
 * GET /stats: the numbers /metrics has, plus what a person watching wants — per-replica
 * req/s and p50/p99 over the last interval (sampler.ts), state, last health check, the ring's
 * owner table, recent events and the last minutes of totals. The dashboard draws this.
 */
import { ERROR_REASONS, HEALTH_FAIL, HEALTH_LAST_AT, HEALTH_LAST_MS, HEALTH_LAST_OK, HEALTH_OK } from './replica-stats.js'
import { MEMBERSHIP_CHANGES, type Metrics, type ObservedBalancer } from './metrics.js'
import type { Sampler } from './sampler.js'
import type { EventLog } from './events.js'

/** The ring as /stats shows it. */
export interface RingView {
  readonly slots: number
  /** Members in the ring, in join order; ownerTable() indexes this list. */
  names(): string[]
  ownerTable(): Readonly<Uint16Array>
  shares(): Map<string, number>
  readonly size: number
}

export interface StatsSource extends ObservedBalancer {
  readonly ring: RingView
  /** The routing-table digest, where membership provides one (the swarm issue). */
  tableDigest?: () => string
}

const round = (n: number | null, digits = 3): number | null => (n === null ? null : Math.round(n * 10 ** digits) / 10 ** digits)

export function buildStats(balancer: StatsSource, metrics: Metrics, sampler: Sampler, events: EventLog): object {
  const ring = balancer.ring
  const ringNames = ring.size > 0 ? ring.names() : []
  const shares = ring.shares()
  const replicas = metrics.counted().map((m) => {
    const s = m.stats!
    const r = sampler.rates(m.name)
    const h = s.health
    const slots = shares.get(m.name) ?? 0
    return {
      name: m.name,
      state: balancer.stateOf(m),
      weight: balancer.weightOf(m.name) ?? 1,
      slots,
      share: round(slots / ring.slots, 4),
      inflight: m.inflight,
      requests: { '1xx': s.requests[0], '2xx': s.requests[1], '3xx': s.requests[2], '4xx': s.requests[3], '5xx': s.requests[4] },
      total: s.total,
      rps: round(r.rps, 1),
      p50Ms: round(r.p50),
      p99Ms: round(r.p99),
      errors: Object.fromEntries(ERROR_REASONS.map((reason, i) => [reason, s.errors[i]])),
      errorTotal: s.errorTotal,
      errorsPerSecond: round(r.errorsPerSecond, 1),
      retries: s.retries,
      health: {
        success: h[HEALTH_OK],
        failure: h[HEALTH_FAIL],
        last: h[HEALTH_LAST_AT]! > 0 ? { at: new Date(h[HEALTH_LAST_AT]!).toISOString(), ms: round(h[HEALTH_LAST_MS]!), ok: h[HEALTH_LAST_OK] === 1 } : null,
      },
      tcp: { connections: s.tcpConnections, bytesToReplica: s.tcpBytesToReplica, bytesFromReplica: s.tcpBytesFromReplica },
    }
  })
  const local: Record<string, number> = {}
  metrics.local.forEach((n, status) => n > 0 && (local[String(status)] = n))
  const cpu = process.cpuUsage()
  return {
    time: new Date().toISOString(),
    N: replicas.length,
    ring: {
      slots: ring.slots,
      names: ringNames,
      // Slot -> index into `names` (empty while no replica is in the ring).
      owners: ringNames.length > 0 ? Array.from(ring.ownerTable()) : [],
      ...(balancer.tableDigest ? { digest: balancer.tableDigest() } : {}),
    },
    replicas,
    localResponses: local,
    membershipChanges: Object.fromEntries(MEMBERSHIP_CHANGES.map((c, i) => [c, metrics.changes[i]])),
    events: events.recent(),
    history: sampler.history().map((p) => ({ t: p.t, rps: round(p.rps, 1), errorsPerSecond: round(p.errorsPerSecond, 1), p50Ms: round(p.p50), p99Ms: round(p.p99) })),
    process: {
      cpuSeconds: (cpu.user + cpu.system) / 1e6,
      residentBytes: process.memoryUsage.rss(),
      uptimeSeconds: Math.round(process.uptime()),
      eventLoopLagSeconds: metrics.lag.seconds,
    },
  }
}
