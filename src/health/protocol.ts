/**
 * Messages between the health monitor (main thread) and the health checker (worker thread).
 * Targets are numbered by the monitor, so a report about a replica that has since left (or a
 * new replica reusing its name) can never be mistaken for one about the current member.
 */

export interface CheckerOptions {
  /** ms between probes of a healthy replica (start to start). */
  readonly intervalMs: number
  /** ms a probe may take before it counts as failed. */
  readonly timeoutMs: number
  /** Consecutive good probes that bring a suspect (or down) replica back. */
  readonly rise: number
  /** Consecutive failed probes that make a replica dead. */
  readonly fall: number
  /** ms between probes while a replica is changing state (HAProxy's `fastinter`). */
  readonly fastIntervalMs: number
}

export interface ProbeTarget {
  readonly id: number
  readonly name: string
  readonly host: string
  readonly port: number
  /**
   * Probe counters in shared memory, written here and read by /metrics without a message:
   * [successes, failures, last probe wall-clock ms, its duration ms, 1 if it succeeded]
   * (src/observe/replica-stats.ts). Absent with metrics off.
   */
  readonly counters?: Float64Array | undefined
}

export type ToWorker =
  | { readonly type: 'add'; readonly target: ProbeTarget }
  | { readonly type: 'remove'; readonly id: number }
  /** The proxy saw a refused/reset connection: probe now; one more failure confirms death. */
  | { readonly type: 'suspect'; readonly id: number }

export type HealthState = 'up' | 'down'

export type FromWorker =
  | { readonly type: 'ready' }
  | {
      readonly type: 'state'
      readonly id: number
      readonly state: HealthState
      /** Why: the last probe's outcome (`timeout after 500 ms`, `ECONNREFUSED`, `status 503`, `ok`). */
      readonly reason: string
      /** Wall-clock ms of the transition, measured in the worker. */
      readonly at: number
      /** Wall-clock ms of the first probe (or passive report) of the streak that led to it. */
      readonly since: number
      /** Probes in the streak. */
      readonly probes: number
    }

/** Derived fast interval: a quarter of the interval, but never below 10 ms. */
export function fastInterval(intervalMs: number): number {
  return Math.max(10, Math.min(intervalMs, Math.round(intervalMs / 4)))
}
