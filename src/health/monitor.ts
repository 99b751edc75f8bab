/**
 * Main-thread side of health checking: starts the checker worker, keeps its list of replicas
 * in step with membership, forwards passive suspicions, and turns the worker's transitions
 * into `down` / `up` events about the very target objects it was given.
 *
 * The worker file is `worker.ts` when this module runs from `src/` (tests, through the
 * TypeScript loader, which the worker inherits with the parent's execArgv) and `worker.js`
 * when it runs built from `dist/`.
 */
import { EventEmitter } from 'node:events'
import { Worker } from 'node:worker_threads'
import { fastInterval, type CheckerOptions, type FromWorker, type HealthState, type ProbeTarget, type ToWorker } from './protocol.js'

export interface HealthTarget {
  readonly name: string
  readonly host: string
  readonly port: number
  /** Its counters, when metrics are on: the worker counts probes into `health` (protocol.ts). */
  readonly stats?: { readonly health: Float64Array } | undefined
}

export interface HealthReport<T extends HealthTarget> {
  readonly target: T
  readonly state: HealthState
  readonly reason: string
  /** Wall-clock ms of the transition (measured in the worker). */
  readonly at: number
  /** Wall-clock ms the streak that caused it began: `at - since` is the detection time. */
  readonly since: number
  readonly probes: number
}

export interface MonitorOptions {
  readonly intervalMs: number
  readonly timeoutMs: number
  readonly rise: number
  readonly fall: number
  /** Defaults to a quarter of the interval. */
  readonly fastIntervalMs?: number
  /** How long the worker may take to load and say it is ready. */
  readonly readyTimeoutMs?: number
}

export interface MonitorEvents<T extends HealthTarget> {
  down: [report: HealthReport<T>]
  up: [report: HealthReport<T>]
  /** The worker failed; it is restarted with the current list (states start over as up). */
  error: [err: Error]
}

function probeTarget(id: number, target: HealthTarget): ProbeTarget {
  return { id, name: target.name, host: target.host, port: target.port, counters: target.stats?.health }
}

const fromSource = import.meta.url.endsWith('.ts')
const workerUrl = new URL(fromSource ? './worker.ts' : './worker.js', import.meta.url)
/**
 * Built, the worker needs no flags. From source it needs the TypeScript loader, which it
 * inherits with the parent's execArgv; a test runner's coverage and mocking hooks are left
 * out, as they would double the worker's start-up time and it uses neither.
 */
const workerExecArgv = fromSource ? process.execArgv.filter((a) => !/@tapjs[\\/](processinfo|mock)/.test(a)) : undefined

export class HealthMonitor<T extends HealthTarget> extends EventEmitter<MonitorEvents<T>> {
  private worker: Worker | undefined
  private readonly ids = new Map<T, number>()
  private readonly byId = new Map<number, T>()
  /** Suspects awaiting a verdict: told again to a restarted worker, which starts from scratch. */
  private readonly suspects = new Set<number>()
  private nextId = 1
  private closed = false
  private restartDelayMs = 100
  private restartTimer: NodeJS.Timeout | undefined
  private readonly readyTimeoutMs: number
  readonly options: CheckerOptions

  constructor(options: MonitorOptions) {
    super()
    this.options = Object.freeze({
      intervalMs: options.intervalMs,
      timeoutMs: options.timeoutMs,
      rise: options.rise,
      fall: options.fall,
      fastIntervalMs: options.fastIntervalMs ?? fastInterval(options.intervalMs),
    })
    this.readyTimeoutMs = options.readyTimeoutMs ?? 30_000
  }

  /** Start the worker; resolves once it has loaded and is ready to take targets. */
  async start(): Promise<void> {
    if (this.worker) return
    const worker = new Worker(workerUrl, { workerData: this.options, execArgv: workerExecArgv })
    this.worker = worker
    try {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => fail(new Error(`health checker worker not ready within ${this.readyTimeoutMs} ms`)), this.readyTimeoutMs)
        const onMessage = (m: FromWorker): void => {
          if (m.type !== 'ready') return
          cleanup()
          resolve()
        }
        const fail = (err: Error): void => {
          cleanup()
          reject(err)
        }
        const onExit = (code: number): void => fail(new Error(`health checker worker exited with code ${code} before it was ready`))
        const cleanup = (): void => {
          clearTimeout(timer)
          worker.off('message', onMessage)
          worker.off('error', fail)
          worker.off('exit', onExit)
        }
        worker.on('message', onMessage)
        worker.once('error', fail)
        worker.once('exit', onExit)
      })
    } catch (err) {
      this.worker = undefined
      await worker.terminate()
      throw err
    }
    this.restartDelayMs = 100
    worker.on('message', (m: FromWorker) => this.onMessage(m))
    worker.on('error', (err) => this.emit('error', new Error(`health checker worker failed: ${err.message}`, { cause: err })))
    worker.once('exit', () => this.onExit(worker))
    for (const [target, id] of this.ids) this.send({ type: 'add', target: probeTarget(id, target) })
    for (const id of this.suspects) this.send({ type: 'suspect', id })
  }

  /** Start probing a replica (it joined). Watching a target twice is a no-op. */
  watch(target: T): void {
    if (this.ids.has(target)) return
    const id = this.nextId++
    this.ids.set(target, id)
    this.byId.set(id, target)
    this.send({ type: 'add', target: probeTarget(id, target) })
  }

  /** Stop probing a replica (it left). */
  unwatch(target: T): void {
    const id = this.ids.get(target)
    if (id === undefined) return
    this.ids.delete(target)
    this.byId.delete(id)
    this.suspects.delete(id)
    this.send({ type: 'remove', id })
  }

  /** The proxy saw this replica refuse or reset a connection: confirm or restore it quickly. */
  suspect(target: T): void {
    const id = this.ids.get(target)
    if (id === undefined) return
    this.suspects.add(id)
    this.send({ type: 'suspect', id })
  }

  watching(): T[] {
    return [...this.ids.keys()]
  }

  async close(): Promise<void> {
    this.closed = true
    clearTimeout(this.restartTimer)
    const worker = this.worker
    this.worker = undefined
    if (worker) await worker.terminate()
  }

  private send(message: ToWorker): void {
    this.worker?.postMessage(message)
  }

  private onMessage(m: FromWorker): void {
    if (m.type !== 'state') return
    // A report about a target that has left since the worker sent it is stale: drop it.
    const target = this.byId.get(m.id)
    if (target === undefined) return
    this.suspects.delete(m.id)
    const report: HealthReport<T> = { target, state: m.state, reason: m.reason, at: m.at, since: m.since, probes: m.probes }
    this.emit(m.state, report)
  }

  /** The worker died (a bug, or out of memory): restart it with backoff so checking goes on. */
  private onExit(worker: Worker): void {
    if (this.closed || this.worker !== worker) return
    this.worker = undefined
    this.scheduleRestart()
  }

  private scheduleRestart(): void {
    const delay = this.restartDelayMs
    this.restartDelayMs = Math.min(10_000, delay * 2)
    this.restartTimer = setTimeout(() => {
      if (this.closed) return
      this.start().catch((err: Error) => {
        this.emit('error', err)
        this.scheduleRestart()
      })
    }, delay)
  }
}
