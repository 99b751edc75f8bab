/**
 * The balancer owns membership: which replicas exist, in which order they joined, and the
 * ring that routes to them. Every change (admin /add and /rm, replacement of a dead replica,
 * shutdown) runs through one queue, so two changes never interleave, and each applies whole
 * or not at all: validation first, then replicas are started (or drained and stopped), then
 * the ring changes in one step.
 */
import { EventEmitter } from 'node:events'
import { BalancerError, RingFullError } from './errors.js'
import { HashRing } from './ring/ring.js'
import { randomHostname, validateHostname } from './names.js'
import { Upstream } from './proxy/upstream.js'
import type { ReplicaHandle, ReplicaProvider } from './replicas/provider.js'
import type { Config } from './config.js'

export interface Membership {
  N: number
  replicas: string[]
}

export interface BalancerEvents {
  /** A replica joined the ring (after its heartbeat answered). */
  joined: [upstream: Upstream]
  /** A replica left the ring (removed, dead, or shutdown) and was stopped. */
  left: [name: string, reason: 'removed' | 'dead' | 'shutdown']
  /** Something went wrong outside a request (e.g. a replacement failed to start). */
  error: [err: Error]
}

export class Balancer extends EventEmitter<BalancerEvents> {
  readonly ring: HashRing<Upstream>
  /** Members by name, in join order (Map keeps insertion order). */
  private readonly members = new Map<string, Upstream>()
  private queue: Promise<unknown> = Promise.resolve()
  private closed = false

  constructor(
    private readonly config: Config,
    readonly provider: ReplicaProvider,
  ) {
    super()
    this.ring = new HashRing<Upstream>({ slots: config.slots, vnodes: config.vnodes, hash: config.hash, probe: config.probe })
  }

  /** Names in join order and their count: the body of GET /rep. */
  membership(): Membership {
    return { N: this.members.size, replicas: [...this.members.keys()] }
  }

  upstreams(): Upstream[] {
    return [...this.members.values()]
  }

  get(name: string): Upstream | undefined {
    return this.members.get(name)
  }

  /** Initialise the provider, take over adopted replicas, then start the configured ones. */
  start(): Promise<Membership> {
    return this.serial(async () => {
      const adopted = await this.provider.init()
      const want = this.config.replicas
      const keep = adopted.slice(0, want)
      for (const extra of adopted.slice(want)) await this.provider.stop(extra.name)
      for (const handle of keep) this.join(handle)
      const names: string[] = []
      for (const name of this.config.names) if (!this.members.has(name) && names.length + keep.length < want) names.push(name)
      for (let i = 1; names.length + keep.length < want; i++) {
        const name = `Server ${i}`
        if (!this.members.has(name) && !names.includes(name)) names.push(name)
      }
      await this.startAll(names)
      return this.membership()
    })
  }

  /**
   * POST /add: start `n` replicas, named from `hostnames` and the rest random. Validates
   * everything (names, room on the ring) before starting anything; if any replica fails to
   * start, the ones that did are stopped and nothing joins.
   */
  add(n: number, hostnames: readonly string[] = []): Promise<Membership> {
    return this.serial(async () => {
      this.assertOpen()
      if (hostnames.length > n) throw new BalancerError('ADD_TOO_MANY_HOSTNAMES')
      assertUnique(hostnames)
      for (const name of hostnames) {
        validateHostname(name)
        if (this.members.has(name)) throw new BalancerError('HOSTNAME_IN_USE', `Hostname '${name}' is already in use`)
      }
      const names = [...hostnames]
      const taken = new Set([...this.members.keys(), ...names])
      while (names.length < n) {
        const name = randomHostname(taken)
        taken.add(name)
        names.push(name)
      }
      if (!this.ring.fits(names)) {
        throw new RingFullError(`The ring has no room for ${n} more server(s): ${this.config.slots} slots, ${this.config.vnodes} virtual servers each, ${this.members.size} present`)
      }
      await this.startAll(names)
      return this.membership()
    })
  }

  /** DELETE /rm: drain and stop the named replicas plus random others, `n` in all. */
  remove(n: number, hostnames: readonly string[] = []): Promise<Membership> {
    return this.serial(async () => {
      this.assertOpen()
      if (hostnames.length > n) throw new BalancerError('RM_TOO_MANY_HOSTNAMES')
      assertUnique(hostnames)
      for (const name of hostnames) {
        if (!this.members.has(name)) throw new BalancerError('HOSTNAME_NOT_FOUND', `Hostname '${name}' does not exist`)
      }
      if (n > this.members.size) {
        throw new BalancerError('RM_MORE_THAN_EXIST', `Cannot remove ${n} replica(s): only ${this.members.size} exist`)
      }
      const names = [...hostnames]
      const others = [...this.members.keys()].filter((name) => !names.includes(name))
      while (names.length < n) names.push(others.splice(Math.floor(Math.random() * others.length), 1)[0]!)
      await this.leaveAll(names, 'removed')
      return this.membership()
    })
  }

  /**
   * A replica was found dead: it leaves the ring at once (outside the queue, so no request
   * waits on a slow change), then, in the queue, is stopped and replaced by a new replica with
   * a new random hostname so that N stays as configured (SPEC 5).
   */
  replace(name: string): Promise<string | undefined> {
    const upstream = this.members.get(name)
    if (!upstream || this.closed) return Promise.resolve(undefined)
    this.ring.remove(name)
    return this.serial(async () => {
      if (this.members.get(name) !== upstream || this.closed) return undefined
      this.members.delete(name)
      upstream.close()
      await this.provider.stop(name).catch((err: Error) => this.emit('error', err))
      this.emit('left', name, 'dead')
      const fresh = randomHostname(new Set(this.members.keys()))
      await this.startAll([fresh])
      return fresh
    })
  }

  /** Shutdown: drain every replica, stop them all. Further changes are refused. */
  close(): Promise<void> {
    this.closed = true
    return this.serial(async () => {
      await this.leaveAll([...this.members.keys()], 'shutdown')
      await this.provider.close()
    })
  }

  private assertOpen(): void {
    if (this.closed) throw new BalancerError('SHUTTING_DOWN')
  }

  /** Start all names in parallel; join all on success, stop every started one on failure. */
  private async startAll(names: readonly string[]): Promise<void> {
    if (names.length === 0) return
    const results = await Promise.allSettled(names.map((name) => this.provider.start(name)))
    const failed = results.findIndex((r) => r.status === 'rejected')
    if (failed !== -1) {
      await Promise.allSettled(names.map((name, i) => (results[i]!.status === 'fulfilled' ? this.provider.stop(name) : undefined)))
      const reason = (results[failed] as PromiseRejectedResult).reason as Error
      throw new BalancerError('REPLICA_START_FAILED', `Replica '${names[failed]}' failed to start: ${reason?.message ?? String(reason)}`, { cause: reason })
    }
    for (const r of results) this.join((r as PromiseFulfilledResult<ReplicaHandle>).value)
  }

  private join(handle: ReplicaHandle): void {
    const upstream = new Upstream(handle)
    this.ring.add(handle.name, upstream)
    this.members.set(handle.name, upstream)
    this.emit('joined', upstream)
  }

  /** Out of the ring first (no new requests), then drain in-flight ones, then stop. */
  private async leaveAll(names: readonly string[], reason: 'removed' | 'shutdown'): Promise<void> {
    const leaving = names.map((name) => this.members.get(name)!)
    for (const name of names) this.ring.remove(name)
    for (const name of names) this.members.delete(name)
    await Promise.all(
      leaving.map(async (upstream) => {
        await upstream.waitIdle(this.config.drainTimeoutMs)
        upstream.close()
        await this.provider.stop(upstream.name)
        this.emit('left', upstream.name, reason)
      }),
    )
  }

  /** Run membership changes one at a time, in arrival order; a failure does not block the next. */
  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(fn, fn)
    this.queue = run.catch(() => undefined)
    return run
  }
}

function assertUnique(names: readonly string[]): void {
  const seen = new Set<string>()
  for (const name of names) {
    if (seen.has(name)) throw new BalancerError('DUPLICATE_HOSTNAME', `Hostname '${name}' appears more than once`)
    seen.add(name)
  }
}
