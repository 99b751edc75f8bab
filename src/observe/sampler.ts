/**
 * Rates and quantiles for /stats and the dashboard, from the same counters /metrics shows:
 * once a second it takes the difference of each replica's counters since the last tick
 * (requests per second, errors per second) and estimates p50/p99 of that interval from the
 * histogram buckets, interpolating linearly inside a bucket as Prometheus's
 * histogram_quantile does. The totals of the last few minutes are kept for the charts.
 */
import { DURATION_BUCKETS } from './replica-stats.js'
import type { Metrics, ObservedMember } from './metrics.js'

export interface ReplicaRates {
  /** Requests answered per second over the last interval. */
  rps: number
  /** Failed attempts per second over the last interval. */
  errorsPerSecond: number
  /** Quantiles of the last interval's durations, in ms (null: no request). */
  p50: number | null
  p99: number | null
}

export interface HistoryPoint {
  /** Wall-clock ms of the tick. */
  t: number
  rps: number
  errorsPerSecond: number
  p50: number | null
  p99: number | null
}

interface Previous {
  stats: object
  total: number
  errors: number
  buckets: Float64Array
}

/** The q-quantile (0..1) in ms of a non-cumulative bucket count array; null when empty. */
export function quantileMs(buckets: ArrayLike<number>, q: number): number | null {
  let count = 0
  for (let i = 0; i < buckets.length; i++) count += buckets[i]!
  if (count === 0) return null
  const rank = q * count
  let below = 0
  for (let i = 0; i < buckets.length; i++) {
    const n = buckets[i]!
    if (n > 0 && below + n >= rank) {
      const lower = i === 0 ? 0 : DURATION_BUCKETS[i - 1]!
      // Above the last bound nothing is known but the bound: report it, as Prometheus does.
      if (i >= DURATION_BUCKETS.length) return lower * 1000
      const upper = DURATION_BUCKETS[i]!
      return (lower + (upper - lower) * ((rank - below) / n)) * 1000
    }
    below += n
  }
  return DURATION_BUCKETS[DURATION_BUCKETS.length - 1]! * 1000
}

export class Sampler {
  private readonly previous = new Map<string, Previous>()
  private readonly current = new Map<string, ReplicaRates>()
  private readonly points: HistoryPoint[] = []
  private timer: NodeJS.Timeout | undefined
  private lastTick = 0

  /**
   * @param intervalMs between ticks
   * @param historySize points kept (300 at 1 s: the last five minutes)
   */
  constructor(
    private readonly metrics: Metrics,
    private readonly intervalMs = 1000,
    private readonly historySize = 300,
  ) {}

  start(): void {
    if (this.timer) return
    this.lastTick = performance.now()
    this.tick(false)
    this.timer = setInterval(() => this.tick(true), this.intervalMs)
    this.timer.unref()
  }

  stop(): void {
    clearInterval(this.timer)
    this.timer = undefined
  }

  /** The last interval's rates of a replica (zeros before its first full interval). */
  rates(name: string): ReplicaRates {
    return this.current.get(name) ?? { rps: 0, errorsPerSecond: 0, p50: null, p99: null }
  }

  history(): readonly HistoryPoint[] {
    return this.points
  }

  /** One sample: differences since the last one, per replica and in total. */
  tick(record = true): void {
    const now = performance.now()
    const seconds = Math.max(0.001, (now - this.lastTick) / 1000)
    this.lastTick = now
    this.metrics.lag.sample()
    const all = new Float64Array(DURATION_BUCKETS.length + 1)
    let requests = 0
    let errors = 0
    const seen = new Set<string>()
    for (const m of this.metrics.counted()) {
      seen.add(m.name)
      const r = this.sampleOne(m, seconds, all)
      requests += r.requests
      errors += r.errors
    }
    for (const name of this.previous.keys()) {
      if (!seen.has(name)) {
        this.previous.delete(name)
        this.current.delete(name)
      }
    }
    if (!record) return
    this.points.push({ t: Date.now(), rps: requests / seconds, errorsPerSecond: errors / seconds, p50: quantileMs(all, 0.5), p99: quantileMs(all, 0.99) })
    if (this.points.length > this.historySize) this.points.shift()
  }

  private sampleOne(m: ObservedMember, seconds: number, all: Float64Array): { requests: number; errors: number } {
    const s = m.stats!
    const total = s.total
    const errors = s.errorTotal
    let prev = this.previous.get(m.name)
    if (prev === undefined || prev.stats !== s) {
      // New (or a new member under an old name): its first interval starts now.
      prev = { stats: s, total, errors, buckets: Float64Array.from(s.buckets) }
      this.previous.set(m.name, prev)
      return { requests: 0, errors: 0 }
    }
    const delta = new Float64Array(s.buckets.length)
    for (let i = 0; i < delta.length; i++) {
      delta[i] = s.buckets[i]! - prev.buckets[i]!
      all[i]! += delta[i]!
    }
    const requests = total - prev.total
    const failed = errors - prev.errors
    this.current.set(m.name, { rps: requests / seconds, errorsPerSecond: failed / seconds, p50: quantileMs(delta, 0.5), p99: quantileMs(delta, 0.99) })
    prev.total = total
    prev.errors = errors
    prev.buckets.set(s.buckets)
    return { requests, errors: failed }
  }
}
