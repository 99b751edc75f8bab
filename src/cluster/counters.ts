/**
 * Metrics across workers. Each worker counts its own requests in its own ReplicaStats (the
 * hot path is the single process's: typed-array increments, no IPC); the primary sums them
 * per replica when /metrics or /stats is scraped and once a second (the sampler's rates), into
 * its own members' ReplicaStats, which nothing else writes in cluster mode (the primary
 * proxies nothing). Health probe counts are the primary's own (its checker writes them).
 * A worker that dies leaves its last report behind, so counters do not go backwards.
 */
import { ReplicaStats } from '../observe/replica-stats.js'
import type { Metrics } from '../observe/metrics.js'
import type { Upstream } from '../upstream/upstream.js'
import { memberKey } from './snapshot.js'
import type { ReplicaCounters, WorkerCounters } from './protocol.js'

/** Worker side: this worker's counters, as plain arrays for the IPC channel. */
export function countersOf(upstreams: readonly Upstream[], metrics: Metrics | undefined, open: { http: number; tcp: number }): WorkerCounters {
  const replicas: ReplicaCounters[] = []
  for (const u of upstreams) {
    const s = u.stats
    if (s === undefined) continue
    replicas.push({
      key: memberKey(u),
      requests: Array.from(s.requests),
      buckets: Array.from(s.buckets),
      durationSeconds: s.durationSeconds,
      errors: Array.from(s.errors),
      retries: s.retries,
      tcpConnections: s.tcpConnections,
      tcpBytesToReplica: s.tcpBytesToReplica,
      tcpBytesFromReplica: s.tcpBytesFromReplica,
      inflight: u.inflight,
    })
  }
  const local: Array<[number, number]> = []
  metrics?.local.forEach((n, status) => n > 0 && local.push([status, n]))
  return { replicas, local, open }
}

/** Primary side: the latest report of every worker, and what workers that exited had counted. */
export class CounterSum {
  private readonly latest = new Map<number, WorkerCounters>()
  private readonly retired = new Map<string, ReplicaStats>()
  private readonly retiredLocal = new Float64Array(600)
  /** Open connections per listener, over the live workers (as of the last fold). */
  readonly open = { http: 0, tcp: 0 }

  report(worker: number, counters: WorkerCounters): void {
    this.latest.set(worker, counters)
  }

  /** A worker exited: its last counts stay in the sums; its in-flight and open connections do not. */
  exited(worker: number): void {
    const last = this.latest.get(worker)
    this.latest.delete(worker)
    if (last === undefined) return
    for (const r of last.replicas) {
      let sum = this.retired.get(r.key)
      if (sum === undefined) this.retired.set(r.key, (sum = new ReplicaStats(r.key)))
      add(sum, r)
    }
    for (const [status, n] of last.local) if (status >= 0 && status < 600) this.retiredLocal[status]! += n
  }

  /** Write the sums into the primary's members' stats (and the balancer-wide local answers). */
  fold(members: readonly Upstream[], metrics: Metrics | undefined): void {
    const byKey = new Map<string, { stats: ReplicaStats; upstream: Upstream }>()
    for (const u of members) {
      const s = u.stats
      if (s === undefined) continue
      s.requests.fill(0)
      s.buckets.fill(0)
      s.errors.fill(0)
      s.durationSeconds = s.retries = s.tcpConnections = s.tcpBytesToReplica = s.tcpBytesFromReplica = 0
      u.inflight = 0
      const retired = this.retired.get(memberKey(u))
      if (retired) add(s, retired)
      byKey.set(memberKey(u), { stats: s, upstream: u })
    }
    this.open.http = this.open.tcp = 0
    if (metrics) metrics.local.set(this.retiredLocal)
    for (const counters of this.latest.values()) {
      for (const r of counters.replicas) {
        const target = byKey.get(r.key)
        if (target === undefined) continue
        add(target.stats, r)
        target.upstream.inflight += r.inflight
      }
      if (metrics) for (const [status, n] of counters.local) if (status >= 0 && status < 600) metrics.local[status]! += n
      this.open.http += counters.open.http
      this.open.tcp += counters.open.tcp
    }
  }

  /** Forget the counts of members that are gone (their series went with them). */
  forget(keys: ReadonlySet<string>): void {
    for (const key of this.retired.keys()) if (!keys.has(key)) this.retired.delete(key)
  }
}

type Counts = Pick<ReplicaStats, 'requests' | 'buckets' | 'errors' | 'durationSeconds' | 'retries' | 'tcpConnections' | 'tcpBytesToReplica' | 'tcpBytesFromReplica'>

function add(into: ReplicaStats, from: Counts | ReplicaCounters): void {
  addArray(into.requests, from.requests)
  addArray(into.buckets, from.buckets)
  addArray(into.errors, from.errors)
  into.durationSeconds += from.durationSeconds
  into.retries += from.retries
  into.tcpConnections += from.tcpConnections
  into.tcpBytesToReplica += from.tcpBytesToReplica
  into.tcpBytesFromReplica += from.tcpBytesFromReplica
}

function addArray(into: Float64Array, from: ArrayLike<number>): void {
  const n = Math.min(into.length, from.length)
  for (let i = 0; i < n; i++) into[i]! += from[i]!
}
