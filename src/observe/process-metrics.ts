/**
 * The process families Prometheus users know from prom-client's defaults, with the same names
 * and meanings: CPU seconds, resident memory, open file descriptors, start time, and the
 * event-loop lag (the delay of a setImmediate callback, measured once a second).
 */
import { readdirSync } from 'node:fs'
import type { TextWriter } from './exposition.js'

const startTimeSeconds = Math.round((Date.now() / 1000 - process.uptime()) * 1000) / 1000

/** Open descriptors (Linux: entries of /proc/self/fd, minus the one reading it); undefined elsewhere. */
function openFds(): number | undefined {
  try {
    return readdirSync('/proc/self/fd').length - 1
  } catch {
    return undefined
  }
}

export class EventLoopLag {
  /** The last measured lag in seconds. */
  seconds = 0
  private measuring = false

  /** Measure once: the time from now until a setImmediate callback runs. */
  sample(): void {
    if (this.measuring) return
    this.measuring = true
    const start = process.hrtime.bigint()
    setImmediate(() => {
      this.seconds = Number(process.hrtime.bigint() - start) / 1e9
      this.measuring = false
    })
  }
}

export function writeProcessMetrics(w: TextWriter, lag: EventLoopLag): void {
  const cpu = process.cpuUsage()
  w.family('process_cpu_user_seconds_total', 'counter', 'Total user CPU time spent in seconds.').sample('process_cpu_user_seconds_total', cpu.user / 1e6)
  w.family('process_cpu_system_seconds_total', 'counter', 'Total system CPU time spent in seconds.').sample('process_cpu_system_seconds_total', cpu.system / 1e6)
  w.family('process_cpu_seconds_total', 'counter', 'Total user and system CPU time spent in seconds.').sample('process_cpu_seconds_total', (cpu.user + cpu.system) / 1e6)
  w.family('process_resident_memory_bytes', 'gauge', 'Resident memory size in bytes.').sample('process_resident_memory_bytes', process.memoryUsage.rss())
  const fds = openFds()
  if (fds !== undefined) w.family('process_open_fds', 'gauge', 'Number of open file descriptors.').sample('process_open_fds', fds)
  w.family('process_start_time_seconds', 'gauge', 'Start time of the process since unix epoch in seconds.').sample('process_start_time_seconds', startTimeSeconds)
  w.family('nodejs_eventloop_lag_seconds', 'gauge', 'Lag of event loop in seconds.').sample('nodejs_eventloop_lag_seconds', lag.seconds)
}
