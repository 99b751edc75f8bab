/**
 * The primary's side of the cluster: it forks the workers (node:cluster), posts every
 * membership change to them as a versioned snapshot, knows which version each one applied,
 * drains a leaving replica on every worker, collects their counters, answers the /add and /rm
 * they forward, and forks a new worker when one dies (it starts from the latest snapshot).
 */
import cluster, { type Worker } from 'node:cluster'
import type { Balancer } from '../membership/balancer.js'
import type { MembershipControl } from '../admin/api.js'
import type { AuditSink } from '../admin/audit.js'
import { BalancerError } from '../errors.js'
import type { Upstream } from '../upstream/upstream.js'
import { memberKey, takeSnapshot, type Snapshot } from './snapshot.js'
import type { CounterSum } from './counters.js'
import type { FromWorker, ToWorker } from './protocol.js'

export interface CoordinatorOptions {
  readonly workers: number
  /**
   * Who accepts client connections (--worker-accept): `rr`, this process, handing each to a
   * worker in turn (node:cluster's round-robin: accept + one IPC message with the handle per
   * connection, an even spread); `shared`, every worker from the one listening socket
   * (SCHED_NONE: nothing per connection here; the kernel picks the worker, unevenly).
   */
  readonly accept: 'rr' | 'shared'
  /** The worker's entry module (worker-main). */
  readonly entry: string
  /** The flag values workers build their config from (without the admin token), and the token's digest. */
  readonly values: Readonly<Record<string, string>>
  readonly tokenDigest: string | undefined
  readonly balancer: Balancer
  /** /add and /rm forwarded by a worker run here (answers once every worker routes alike). */
  readonly control: MembershipControl
  readonly sums: CounterSum
  readonly audit: AuditSink
  /** A worker's request saw this member refuse or reset a connection. */
  readonly suspect: (upstream: Upstream, code: string | undefined) => void
  readonly log: (line: string) => void
  readonly error: (line: string) => void
}

interface Slot {
  readonly worker: Worker
  readonly forkedAt: number
  /** The warm spare: started and following snapshots, not listening until a worker dies. */
  spare: boolean
  /** It said hello: it hears messages (one sent before is lost). */
  listening: boolean
  /** A spare that is set up and waits for `listen`. */
  standby: boolean
  ready: boolean
  applied: number
  digest: string
}

/** Longest wait for every worker to apply a snapshot, for counters on a scrape. */
const SYNC_TIMEOUT_MS = 10_000
const COLLECT_TIMEOUT_MS = 1_000

export class Coordinator {
  private version = 0
  private latest: Snapshot
  private readonly slots = new Map<number, Slot>()
  /** Members leaving (/rm, shutdown) that workers still drain: listed as `draining` until all are done. */
  private readonly draining = new Set<Upstream>()
  private readonly waits = new Map<number, { readonly left: Set<number>; readonly ready: (slot: Slot) => boolean; readonly done: () => void }>()
  private nextId = 1
  private scheduled = false
  private closing = false
  private started = false
  /** The warm spare, when one is up: a dead worker's place is taken in milliseconds, not a process start. */
  private spare: Slot | undefined
  /** Workers that died within a second of being forked in a row (a crash loop backs off). */
  private quickDeaths = 0
  /** The ports the workers listen on (the same for all). */
  http = 0
  tcp: number | undefined
  /** Workers forked since start, replacements included. */
  forks = 0

  constructor(private readonly options: CoordinatorOptions) {
    this.latest = takeSnapshot(options.balancer, 0, [])
    for (const event of ['joined', 'left', 'suspect', 'restored', 'dead'] as const) options.balancer.on(event, () => this.schedule())
  }

  /** Fork every worker; resolves once all listen (rejects with the first one's failure, e.g. a port in use). */
  start(): Promise<void> {
    return new Promise((resolve, reject) => {
      let pending = this.options.workers
      for (let i = 0; i < this.options.workers; i++) {
        const slot = this.fork()
        slot.worker.on('message', (m: FromWorker) => {
          if (m.t === 'ready' && --pending === 0) {
            this.started = true
            this.spare = this.fork(true)
            resolve()
          } else if (m.t === 'failed') {
            reject(Object.assign(new Error(m.message), { code: m.code }))
          }
        })
        slot.worker.once('exit', (code, signal) => {
          if (!this.started) reject(new Error(`a worker exited while starting (${signal ?? `code ${code}`})`))
        })
      }
    })
  }

  /** Process ids of the serving workers (not the spare). */
  pids(): number[] {
    return [...this.slots.values()].filter((s) => !s.spare).map((s) => s.worker.process.pid!)
  }

  /** Process id of the warm spare once it is set up and waiting (undefined while it starts). */
  sparePid(): number | undefined {
    return this.spare?.standby ? this.spare.worker.process.pid : undefined
  }

  /** Each ready worker's applied version and table digest. */
  applied(): Array<{ pid: number; version: number; digest: string }> {
    return [...this.slots.values()].filter((s) => s.ready).map((s) => ({ pid: s.worker.process.pid!, version: s.applied, digest: s.digest }))
  }

  /** The latest snapshot posted. */
  get snapshot(): Snapshot {
    return this.latest
  }

  /** Post the current membership to every worker now, as a new version. */
  publish(): Snapshot {
    this.latest = takeSnapshot(this.options.balancer, ++this.version, this.draining)
    for (const slot of this.slots.values()) this.send(slot, { t: 'snapshot', snapshot: this.latest })
    return this.latest
  }

  /** Resolves once every live worker applied the current membership (or SYNC_TIMEOUT_MS passed). */
  synced(): Promise<void> {
    const { version } = this.publish()
    return this.waitFor(
      (slot) => slot.applied >= version,
      () => {},
      SYNC_TIMEOUT_MS,
    )
  }

  /**
   * A member leaves (/rm, shutdown, a moved replica): workers stop sending it new requests
   * (the snapshot lists it as draining), then each waits up to `timeoutMs` for its in-flight
   * ones and closes its connections. Resolves when every worker is done (a worker that dies
   * meanwhile is done).
   */
  async drain(upstream: Upstream, timeoutMs: number): Promise<boolean> {
    this.draining.add(upstream)
    this.publish()
    const id = this.nextId++
    const key = memberKey(upstream)
    await this.waitFor(
      () => false,
      (slot) => this.send(slot, { t: 'drain', id, key, timeoutMs }),
      timeoutMs + 2_000,
      id,
    )
    this.draining.delete(upstream)
    this.schedule()
    return true
  }

  /** Ask every worker for its counters now and fold them (a scrape). */
  async collect(fold: () => void): Promise<void> {
    const id = this.nextId++
    await this.waitFor(
      () => false,
      (slot) => this.send(slot, { t: 'collect', id }),
      COLLECT_TIMEOUT_MS,
      id,
    )
    fold()
  }

  /** Shutdown, first step: workers stop accepting. */
  stop(): void {
    this.closing = true
    for (const slot of this.slots.values()) this.send(slot, { t: 'stop' })
  }

  /** Shutdown, last step: workers close everything and exit; resolves once all have (killing any that linger). */
  async exit(): Promise<void> {
    this.closing = true
    const exits = [...this.slots.values()].map(
      (slot) =>
        new Promise<void>((resolve) => {
          if (slot.worker.isDead()) return resolve()
          const timer = setTimeout(() => slot.worker.process.kill('SIGKILL'), 5_000)
          slot.worker.once('exit', () => {
            clearTimeout(timer)
            resolve()
          })
          // One that has not said hello yet would not hear it: it exits when it does (see 'hello').
          this.send(slot, { t: 'exit' })
        }),
    )
    await Promise.all(exits)
  }

  private schedule(): void {
    if (this.scheduled) return
    this.scheduled = true
    queueMicrotask(() => {
      this.scheduled = false
      this.publish()
    })
  }

  private fork(spare = false): Slot {
    // node:cluster reads the policy once, at its first setupPrimary or fork, for good.
    cluster.schedulingPolicy = this.options.accept === 'shared' ? cluster.SCHED_NONE : cluster.SCHED_RR
    cluster.setupPrimary({ exec: this.options.entry, silent: false })
    const worker = cluster.fork()
    const slot: Slot = { worker, forkedAt: Date.now(), spare, listening: false, standby: false, ready: false, applied: 0, digest: '' }
    this.slots.set(worker.id, slot)
    this.forks++
    worker.on('message', (m: FromWorker) => this.received(slot, m))
    worker.on('error', () => {})
    worker.once('exit', (code, signal) => this.exited(slot, code, signal))
    return slot
  }

  private received(slot: Slot, m: FromWorker): void {
    switch (m.t) {
      case 'hello':
        slot.listening = true
        if (this.closing) return this.send(slot, { t: 'exit' })
        // The latest membership, so it routes as the others from its first connection.
        this.send(slot, { t: 'start', values: { ...this.options.values }, tokenDigest: this.options.tokenDigest, snapshot: this.publish(), listen: !slot.spare })
        return
      case 'standby':
        slot.standby = true
        return
      case 'ready':
        slot.ready = true
        this.http = m.http
        this.tcp = m.tcp
        // Snapshots posted while it started applied too; make sure it has the latest.
        if (slot.applied < this.latest.version) this.send(slot, { t: 'snapshot', snapshot: this.latest })
        return
      case 'applied':
        slot.applied = Math.max(slot.applied, m.version)
        slot.digest = m.digest
        this.check()
        return
      case 'drained':
        this.done(m.id, slot.worker.id)
        return
      case 'counters':
        this.options.sums.report(slot.worker.id, m.counters)
        if (m.id !== undefined) this.done(m.id, slot.worker.id)
        return
      case 'suspect': {
        const upstream = this.options.balancer.upstreams().find((u) => memberKey(u) === m.key)
        if (upstream) this.options.suspect(upstream, m.code)
        return
      }
      case 'call':
        void this.call(slot, m)
        return
      case 'audit':
        this.options.audit(m.entry)
        return
      case 'log':
        ;(m.level === 'error' ? this.options.error : this.options.log)(m.line)
        return
      case 'failed':
        this.options.error(`worker ${slot.worker.process.pid} could not start: ${m.message}`)
        return
    }
  }

  private async call(slot: Slot, m: Extract<FromWorker, { t: 'call' }>): Promise<void> {
    try {
      const membership = m.op === 'add' ? await this.options.control.add(m.n, m.hostnames, m.weights) : await this.options.control.remove(m.n, m.hostnames)
      this.send(slot, { t: 'reply', id: m.id, membership })
    } catch (err) {
      const e = err instanceof BalancerError ? err : new BalancerError('INTERNAL', `Internal error: ${(err as Error)?.message ?? String(err)}`)
      this.send(slot, { t: 'reply', id: m.id, error: { code: e.code, message: e.message } })
    }
  }

  private exited(slot: Slot, code: number | null, signal: string | null): void {
    this.slots.delete(slot.worker.id)
    this.options.sums.exited(slot.worker.id)
    for (const id of [...this.waits.keys()]) this.done(id, slot.worker.id)
    if (this.spare === slot) this.spare = undefined
    if (this.closing || !this.started) return
    const lived = Date.now() - slot.forkedAt
    this.quickDeaths = lived < 1_000 ? this.quickDeaths + 1 : 0
    const delay = this.quickDeaths === 0 ? 0 : Math.min(5_000, 100 * 2 ** this.quickDeaths)
    const pid = slot.worker.process.pid
    const how = signal ?? `code ${code}`
    if (slot.spare) {
      this.options.error(`the spare worker ${pid} exited (${how}); starting another spare${delay > 0 ? ` in ${delay} ms` : ''}`)
    } else if (this.spare !== undefined) {
      // The spare takes its place at once (it only has to listen); a new spare starts behind it.
      const spare = this.spare
      this.spare = undefined
      spare.spare = false
      // One still starting listens as soon as it is up ('hello' sends start with listen: true).
      if (spare.listening) this.send(spare, { t: 'listen' })
      this.options.error(`worker ${pid} exited (${how}); the spare worker ${spare.worker.process.pid} takes its place`)
    } else {
      this.options.error(`worker ${pid} exited (${how}); starting another${delay > 0 ? ` in ${delay} ms` : ''}`)
      this.later(delay, () => this.fork())
      return
    }
    this.later(delay, () => {
      if (this.spare === undefined) this.spare = this.fork(true)
    })
  }

  private later(delay: number, fn: () => void): void {
    const run = (): void => {
      if (!this.closing) fn()
    }
    if (delay === 0) run()
    else setTimeout(run, delay).unref()
  }

  private send(slot: Slot, message: ToWorker): void {
    if (slot.worker.isConnected()) slot.worker.send(message)
  }

  /**
   * Wait until every live worker is done: `ready(slot)` says so, or (with an `id`) it answered
   * that id. `ask` is sent to each ready worker first. Gives up after `timeoutMs`.
   */
  private waitFor(ready: (slot: Slot) => boolean, ask: (slot: Slot) => void, timeoutMs: number, id: number = this.nextId++): Promise<void> {
    return new Promise((resolve) => {
      const left = new Set<number>()
      for (const slot of this.slots.values()) {
        if (!slot.ready || ready(slot)) continue
        left.add(slot.worker.id)
        ask(slot)
      }
      if (left.size === 0) return resolve()
      const timer = setTimeout(() => finish(), timeoutMs)
      const finish = (): void => {
        clearTimeout(timer)
        this.waits.delete(id)
        resolve()
      }
      this.waits.set(id, { left, ready, done: finish })
    })
  }

  /** Worker `worker` is done with wait `id` (it answered, or it died). */
  private done(id: number, worker: number): void {
    const wait = this.waits.get(id)
    if (wait === undefined) return
    wait.left.delete(worker)
    if (wait.left.size === 0) wait.done()
  }

  /** A worker applied a version: settle the waits that asked for it. */
  private check(): void {
    for (const [id, wait] of [...this.waits]) for (const slot of this.slots.values()) if (wait.ready(slot)) this.done(id, slot.worker.id)
  }
}
