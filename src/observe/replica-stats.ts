/**
 * One replica's counters, as the request path updates them: plain numbers and preallocated
 * typed arrays indexed by small integers (status class, histogram bucket, error reason), so a
 * request costs a few array increments and no label lookup or allocation. The Prometheus text
 * is formatted from these only when /metrics is scraped (exposition.ts).
 *
 * An instance lives as long as the replica is a member: it is created when the replica joins
 * and dropped when it leaves, so its series disappear with it.
 */

/** Upper bounds of the request-duration histogram buckets, in seconds (0.5 ms to 10 s). */
export const DURATION_BUCKETS: readonly number[] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]
/** The same bounds in milliseconds, the unit durations are observed in. */
const BUCKET_MS = Float64Array.from(DURATION_BUCKETS, (s) => s * 1000)
const BUCKETS = BUCKET_MS.length

/** `reason` label values of ring_balancer_upstream_errors_total, by index. */
export const ERROR_REASONS = ['refused', 'reset', 'timeout', 'stalled', 'protocol', 'unreachable', 'aborted', 'other'] as const
export type ErrorReason = (typeof ERROR_REASONS)[number]
const REASON_INDEX: ReadonlyMap<string, number> = new Map<string, number>([
  ['ECONNREFUSED', 0],
  ['ECONNRESET', 1],
  ['EPIPE', 1],
  ['ECONNABORTED', 1],
  ['ETIMEDOUT_UPSTREAM', 2],
  ['ETIMEDOUT', 2],
  ['ERR_PIPELINE_STALLED', 3],
  ['HPE_UPSTREAM', 4],
  ['EHOSTUNREACH', 5],
  ['ENETUNREACH', 5],
  ['EADDRNOTAVAIL', 5],
  ['ENOTFOUND', 5],
  ['EAI_AGAIN', 5],
  ['ERR_PIPELINE_ABORTED', 6],
  ['ERR_POOL_CLOSED', 6],
])
const OTHER = ERROR_REASONS.indexOf('other')

/** The `reason` index of an upstream error code (the transport's stable codes). */
export function reasonIndex(code: string | undefined): number {
  return REASON_INDEX.get(code ?? '') ?? (code?.startsWith('HPE_') ? 4 : OTHER)
}

/** `result` label values of ring_balancer_health_checks_total, by index. */
export const HEALTH_RESULTS = ['success', 'failure'] as const

export class ReplicaStats {
  /** Answers relayed to clients, by status class: index 0 = 1xx ... 4 = 5xx. */
  readonly requests = new Float64Array(5)
  /** Duration histogram, not cumulative: bucket i counts observations <= DURATION_BUCKETS[i] and above the one before; the last is +Inf. */
  readonly buckets = new Float64Array(BUCKETS + 1)
  /** Sum of observed durations, in seconds. */
  durationSeconds = 0
  /** Failed attempts on this replica, by ERROR_REASONS index. */
  readonly errors = new Float64Array(ERROR_REASONS.length)
  /** Requests that failed here and were sent to another replica. */
  retries = 0
  /** TCP mode: connections relayed to it, and bytes from the client to it and back. */
  tcpConnections = 0
  tcpBytesToReplica = 0
  tcpBytesFromReplica = 0
  /**
   * Heartbeat probes by HEALTH_RESULTS index, then the last probe's wall-clock ms, its
   * duration in ms and whether it succeeded (1/0). Shared with the health checker's thread,
   * which writes it directly (health/worker.ts), so counting probes costs no message.
   */
  readonly health: Float64Array

  constructor(
    readonly name: string,
    health: Float64Array = new Float64Array(HEALTH_SLOTS),
  ) {
    this.health = health
  }

  /** One answer of status `status` (100..599) relayed to a client, `ms` after the request arrived. */
  answered(status: number, ms: number): void {
    const cls = (status / 100) | 0
    if (cls >= 1 && cls <= 5) this.requests[cls - 1]!++
    this.observe(ms)
  }

  /** A request-duration observation in milliseconds. */
  observe(ms: number): void {
    let i = 0
    while (i < BUCKETS && ms > BUCKET_MS[i]!) i++
    this.buckets[i]!++
    this.durationSeconds += ms / 1000
  }

  /** An attempt on this replica failed with the transport's error `code`. */
  failed(code: string | undefined): void {
    this.errors[reasonIndex(code)]!++
  }

  /** Answers relayed, all classes. */
  get total(): number {
    const r = this.requests
    return r[0]! + r[1]! + r[2]! + r[3]! + r[4]!
  }

  /** Failed attempts, all reasons. */
  get errorTotal(): number {
    let sum = 0
    for (const n of this.errors) sum += n
    return sum
  }
}

/** Layout of ReplicaStats.health (a SharedArrayBuffer the health worker writes). */
export const HEALTH_OK = 0
export const HEALTH_FAIL = 1
export const HEALTH_LAST_AT = 2
export const HEALTH_LAST_MS = 3
export const HEALTH_LAST_OK = 4
export const HEALTH_SLOTS = 5

/** A health block the checker thread can write: Float64Array over shared memory. */
export function sharedHealthBlock(): Float64Array {
  return new Float64Array(new SharedArrayBuffer(HEALTH_SLOTS * Float64Array.BYTES_PER_ELEMENT))
}
