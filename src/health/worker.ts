/**
 * The health checker, run in a worker thread so that a busy main event loop (a burst of
 * requests, a slow admin call, a GC pause) can neither delay a probe nor stretch its timeout:
 * every probe and every timer here lives on this thread's own event loop.
 *
 * Each replica gets its own keep-alive connection (one socket, reused) and a probe loop:
 * GET /heartbeat every `intervalMs`; a probe fails on a non-200 answer, a connection error,
 * or no full answer within `timeoutMs`. `fall` failures in a row make an up replica down;
 * `rise` successes in a row bring a suspect or down replica back up. While a replica is
 * changing state it is probed every `fastIntervalMs`. Only transitions are posted.
 */
import { parentPort, workerData } from 'node:worker_threads'
import { Agent } from 'node:http'
import { probeHeartbeat } from '../replicas/heartbeat.js'
import type { CheckerOptions, FromWorker, HealthState, ProbeTarget, ToWorker } from './protocol.js'

type Post = (message: FromWorker) => void

/** The probe loop of one replica. */
class Checked {
  private state: HealthState = 'up'
  private suspect = false
  private good = 0
  private bad = 0
  /** When the current streak started (first failure, or first success after failures). */
  private since = 0
  private timer: NodeJS.Timeout | undefined
  /** Abandons the probe in flight, if any. */
  private probing: AbortController | undefined
  private stopped = false
  private readonly agent = new Agent({ keepAlive: true, maxSockets: 1, maxFreeSockets: 1 })

  constructor(
    readonly target: ProbeTarget,
    private readonly options: CheckerOptions,
    private readonly post: Post,
  ) {
    // A replica joins only after its heartbeat answered, so it starts up; the first probe
    // comes one interval later, like every other.
    this.schedule(options.intervalMs)
  }

  /** Passive report from the proxy: out of the ring already; confirm or restore it now. */
  markSuspect(): void {
    if (this.stopped || this.state === 'down') return
    if (!this.suspect) {
      this.suspect = true
      this.good = 0
      if (this.bad === 0) this.since = Date.now()
      // Like HAProxy's `on-error sudden-death`: the passive failure counts as all but one of
      // the `fall` failures, so one failed probe confirms the replica dead.
      this.bad = Math.max(this.bad, this.options.fall - 1)
    }
    if (this.probing === undefined) this.schedule(0)
  }

  stop(): void {
    this.stopped = true
    clearTimeout(this.timer)
    this.probing?.abort()
    this.agent.destroy()
  }

  private schedule(delayMs: number): void {
    clearTimeout(this.timer)
    this.timer = setTimeout(() => this.probe(), delayMs)
  }

  private probe(): void {
    const started = Date.now()
    const probing = new AbortController()
    this.probing = probing
    const { host, port } = this.target
    void probeHeartbeat(host, port, { timeoutMs: this.options.timeoutMs, agent: this.agent, signal: probing.signal }).then(({ ok, reason }) => {
      if (this.probing === probing) this.probing = undefined
      if (this.stopped) return
      this.record(ok, reason, started)
      const every = this.transitioning() ? this.options.fastIntervalMs : this.options.intervalMs
      this.schedule(Math.max(0, started + every - Date.now()))
    })
  }

  private transitioning(): boolean {
    return this.suspect || (this.state === 'up' && this.bad > 0) || (this.state === 'down' && this.good > 0)
  }

  private record(ok: boolean, reason: string, at: number): void {
    const counters = this.target.counters
    if (counters !== undefined) {
      // Layout: src/observe/replica-stats.ts (HEALTH_OK ... HEALTH_LAST_OK).
      counters[ok ? 0 : 1]!++
      counters[2] = at
      counters[3] = Date.now() - at
      counters[4] = ok ? 1 : 0
    }
    if (ok) {
      if (this.good === 0 && (this.bad > 0 || this.suspect || this.state === 'down')) this.since = at
      this.bad = 0
      this.good++
      if ((this.state === 'down' || this.suspect) && this.good >= this.options.rise) this.change('up', reason)
    } else {
      if (this.bad === 0) this.since = at
      this.good = 0
      this.bad++
      if (this.state === 'up' && this.bad >= this.options.fall) this.change('down', reason)
    }
  }

  private change(state: HealthState, reason: string): void {
    const probes = state === 'up' ? this.good : this.bad
    this.state = state
    this.suspect = false
    this.post({ type: 'state', id: this.target.id, state, reason, at: Date.now(), since: this.since, probes })
  }
}

/** The checker: a set of probe loops driven by messages from the monitor. */
export class Checker {
  private readonly checked = new Map<number, Checked>()

  constructor(
    private readonly options: CheckerOptions,
    private readonly post: Post,
  ) {}

  handle(message: ToWorker): void {
    switch (message.type) {
      case 'add':
        this.checked.get(message.target.id)?.stop()
        this.checked.set(message.target.id, new Checked(message.target, this.options, this.post))
        break
      case 'remove':
        this.checked.get(message.id)?.stop()
        this.checked.delete(message.id)
        break
      case 'suspect':
        this.checked.get(message.id)?.markSuspect()
        break
    }
  }

  stop(): void {
    for (const c of this.checked.values()) c.stop()
    this.checked.clear()
  }
}

if (parentPort) {
  const port = parentPort
  const checker = new Checker(workerData as CheckerOptions, (m) => port.postMessage(m))
  port.on('message', (m: ToWorker) => checker.handle(m))
  port.once('close', () => checker.stop())
  port.postMessage({ type: 'ready' } satisfies FromWorker)
}
