/**
 * The metrics registry: one ReplicaStats per member (created when it joins, dropped when it
 * leaves, so its series go with it), the balancer-wide counters, and the Prometheus text
 * for GET /metrics. Nothing here runs per request except what ReplicaStats and
 * `answeredByBalancer` do: a few typed-array increments. Family names and labels are listed
 * in the README's Observability section.
 */
import { DURATION_BUCKETS, ERROR_REASONS, HEALTH_FAIL, HEALTH_OK, HEALTH_RESULTS, ReplicaStats, sharedHealthBlock } from './replica-stats.js'
import { TextWriter } from './exposition.js'
import { EventLoopLag, writeProcessMetrics } from './process-metrics.js'

/** What the registry reads of a member (the request path's Upstream). */
export interface ObservedMember {
  readonly name: string
  readonly inflight: number
  /** Set by the registry while the member is counted; undefined with metrics off. */
  stats: ReplicaStats | undefined
}

/** What the registry reads of the balancer (membership). */
export interface ObservedBalancer<M extends ObservedMember = ObservedMember> {
  upstreams(): M[]
  /** up (in the ring), suspect (out until the health checker decides) or dead. */
  stateOf(member: M): 'up' | 'suspect' | 'dead'
  weightOf(name: string): number | undefined
  readonly ring: { shares(): Map<string, number>; readonly slots: number }
  on(event: 'joined', listener: (member: M) => void): unknown
  on(event: 'left', listener: (name: string, reason: string, member: M) => void): unknown
  on(event: 'replaced', listener: (dead: string, fresh: string) => void): unknown
  prependListener(event: 'joined', listener: (member: M) => void): unknown
}

export const MEMBERSHIP_CHANGES = ['add', 'remove', 'replace'] as const
/** Listeners whose open connections are reported (`open_connections{listener}`). */
export type ListenerName = 'http' | 'tcp' | 'admin'

const P = 'ring_balancer_'
const CLASSES = ['1xx', '2xx', '3xx', '4xx', '5xx']

export class Metrics {
  /** Answers the balancer wrote itself (no replica's answer relayed), by exact status. */
  readonly local = new Float64Array(600)
  /** Membership changes by MEMBERSHIP_CHANGES index. */
  readonly changes = new Float64Array(MEMBERSHIP_CHANGES.length)
  readonly lag = new EventLoopLag()
  private readonly listeners = new Map<ListenerName, () => number | Promise<number>>()

  /**
   * Count `balancer`'s members from now on (call before it starts, so the first replicas are
   * counted; the health checker then finds each member's health block already there).
   */
  constructor(private readonly balancer: ObservedBalancer) {
    balancer.prependListener('joined', (m) => {
      m.stats = new ReplicaStats(m.name, sharedHealthBlock())
      this.changes[0]!++
    })
    balancer.on('left', (_name, reason, m) => {
      // Its series went when it stopped being a member (counted() reads the member list).
      m.stats = undefined
      if (reason === 'removed') this.changes[1]!++
    })
    balancer.on('replaced', () => {
      // Its replacement's join was counted as an add a moment ago (same turn): it is a replace.
      this.changes[0]!--
      this.changes[2]!++
    })
  }

  /** A request the balancer answered itself with `status` (503 no replicas, 502/504, 4xx from the edge). */
  answeredByBalancer(status: number): void {
    if (status >= 100 && status < 600) this.local[status]!++
  }

  /** Report the open connections of a listener at each scrape (e.g. `server.getConnections`). */
  openConnections(listener: ListenerName, count: () => number | Promise<number>): void {
    this.listeners.set(listener, count)
  }

  /** Members counted now, in join order (the live balancer list, stats attached). */
  counted(): ObservedMember[] {
    return this.balancer.upstreams().filter((m) => m.stats !== undefined)
  }

  /** The Prometheus text for GET /metrics. */
  async render(): Promise<string> {
    const open: Array<[ListenerName, number]> = []
    for (const [name, count] of this.listeners) open.push([name, await count()])
    const members = this.counted()
    const w = new TextWriter()
    const shares = this.balancer.ring.shares()

    w.family(`${P}requests_total`, 'counter', 'Answers relayed from a replica to clients, by status class, counted when complete or aborted (a client that left before any answer counts as 4xx, 499).')
    for (const m of members) for (let c = 0; c < 5; c++) w.sample(`${P}requests_total`, m.stats!.requests[c]!, 'replica', m.name, 'code', CLASSES[c]!)

    w.family(`${P}local_responses_total`, 'counter', 'Answers the balancer wrote itself, by status: 503 no replicas, 502/504 when no replica could answer, 4xx from the edge.')
    for (let s = 100; s < 600; s++) if (this.local[s]! > 0) w.sample(`${P}local_responses_total`, this.local[s]!, 'code', String(s))

    w.family(`${P}request_duration_seconds`, 'histogram', 'Time from a request arriving to its answer being complete (or aborted), per replica.')
    for (const m of members) {
      const s = m.stats!
      let cumulative = 0
      for (let b = 0; b < DURATION_BUCKETS.length; b++) {
        cumulative += s.buckets[b]!
        w.sample(`${P}request_duration_seconds_bucket`, cumulative, 'replica', m.name, 'le', String(DURATION_BUCKETS[b]))
      }
      cumulative += s.buckets[DURATION_BUCKETS.length]!
      w.sample(`${P}request_duration_seconds_bucket`, cumulative, 'replica', m.name, 'le', '+Inf')
      w.sample(`${P}request_duration_seconds_sum`, s.durationSeconds, 'replica', m.name)
      w.sample(`${P}request_duration_seconds_count`, cumulative, 'replica', m.name)
    }

    w.family(`${P}inflight_requests`, 'gauge', 'Requests (and TCP connections) sent to a replica and not finished.')
    for (const m of members) w.sample(`${P}inflight_requests`, m.inflight, 'replica', m.name)
    w.family(`${P}replica_up`, 'gauge', '1 while the replica is in the ring, 0 while suspect or dead.')
    for (const m of members) w.sample(`${P}replica_up`, this.balancer.stateOf(m) === 'up' ? 1 : 0, 'replica', m.name)
    w.family(`${P}replica_weight`, 'gauge', 'The replica\'s weight on the ring.')
    for (const m of members) w.sample(`${P}replica_weight`, this.balancer.weightOf(m.name) ?? 1, 'replica', m.name)
    w.family(`${P}replica_slots`, 'gauge', 'Slots of the ring table the replica owns (they sum to M while any replica is up).')
    for (const m of members) w.sample(`${P}replica_slots`, shares.get(m.name) ?? 0, 'replica', m.name)
    w.family(`${P}replicas`, 'gauge', 'Members (N), including any suspect not yet replaced.')
    w.sample(`${P}replicas`, members.length)
    w.family(`${P}ring_slots`, 'gauge', 'Slots in the ring (M).')
    w.sample(`${P}ring_slots`, this.balancer.ring.slots)

    w.family(`${P}upstream_errors_total`, 'counter', 'Failed attempts on a replica, by reason.')
    for (const m of members) for (let r = 0; r < ERROR_REASONS.length; r++) w.sample(`${P}upstream_errors_total`, m.stats!.errors[r]!, 'replica', m.name, 'reason', ERROR_REASONS[r]!)
    w.family(`${P}retries_total`, 'counter', 'Requests moved away from a replica to the next one after a failed attempt.')
    for (const m of members) w.sample(`${P}retries_total`, m.stats!.retries, 'replica', m.name)
    w.family(`${P}health_checks_total`, 'counter', 'Heartbeat probes of a replica, by result.')
    for (const m of members) {
      const h = m.stats!.health
      w.sample(`${P}health_checks_total`, h[HEALTH_OK]!, 'replica', m.name, 'result', HEALTH_RESULTS[0])
      w.sample(`${P}health_checks_total`, h[HEALTH_FAIL]!, 'replica', m.name, 'result', HEALTH_RESULTS[1])
    }
    w.family(`${P}membership_changes_total`, 'counter', 'Membership changes: add (start-up, /add), remove (/rm), replace (a dead replica replaced).')
    for (let c = 0; c < MEMBERSHIP_CHANGES.length; c++) w.sample(`${P}membership_changes_total`, this.changes[c]!, 'change', MEMBERSHIP_CHANGES[c]!)
    w.family(`${P}open_connections`, 'gauge', 'Open client connections per listener.')
    for (const [name, n] of open) w.sample(`${P}open_connections`, n, 'listener', name)

    w.family(`${P}tcp_connections_total`, 'counter', 'TCP-mode connections relayed to a replica.')
    for (const m of members) w.sample(`${P}tcp_connections_total`, m.stats!.tcpConnections, 'replica', m.name)
    w.family(`${P}tcp_bytes_total`, 'counter', 'TCP-mode bytes relayed, by direction (to_replica: from clients; from_replica: to clients), counted when a connection closes.')
    for (const m of members) {
      w.sample(`${P}tcp_bytes_total`, m.stats!.tcpBytesToReplica, 'replica', m.name, 'direction', 'to_replica')
      w.sample(`${P}tcp_bytes_total`, m.stats!.tcpBytesFromReplica, 'replica', m.name, 'direction', 'from_replica')
    }

    writeProcessMetrics(w, this.lag)
    return w.text()
  }
}
