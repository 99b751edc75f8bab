/**
 * The balancer owns membership: which replicas exist, in which order they joined, and the
 * ring that routes to them. Every change (admin /add and /rm, replacement of a dead replica,
 * shutdown) runs through one queue, so two changes never interleave, and each applies whole
 * or not at all: validation first, then replicas are started (or drained and stopped), then
 * the ring changes in one step.
 */
import { EventEmitter } from 'node:events'
import { BalancerError } from '../errors.js'
import type { RingView } from '../ring/ring.js'
import { randomHostname } from './names.js'
import { assertAddRoom } from './capacity.js'
import { Members } from './members.js'
import { SerialQueue } from './serial.js'
import { assertAddable, assertRemovable } from './validate.js'
import type { BalancerEvents, MemberState, Membership, TransportFactory } from './types.js'
import { Upstream } from '../upstream/upstream.js'
import { WriteBatcher } from '../upstream/batcher.js'
import { StallWatch } from '../upstream/stall-watch.js'
import type { ReplicaChange, ReplicaHandle, ReplicaProvider } from '../replicas/provider.js'
import type { Config } from '../config.js'


export class Balancer extends EventEmitter<BalancerEvents> {
  /** The ring as everyone else sees it: look-ups only (the type has no add or remove). */
  readonly ring: RingView<Upstream>
  /** The members and the writable ring: only this class changes them, one change at a time. */
  private readonly members: Members
  private readonly transport: TransportFactory
  private readonly queue = new SerialQueue()
  private closed = false
  /** Dead replicas still being stopped (outside the queue; close waits for them). */
  private readonly stopping = new Set<Promise<void>>()
  /** Replacements that failed to start, waiting to be tried again. */
  private readonly retries = new Set<NodeJS.Timeout>()

  constructor(
    private readonly config: Config,
    readonly provider: ReplicaProvider,
    transport?: TransportFactory,
  ) {
    super()
    this.members = new Members({ slots: config.slots, vnodes: config.vnodes, hash: config.hash, probe: config.probe })
    this.ring = this.members.ring
    if (transport === undefined) {
      const pool = { pipeline: config.upstreamPipeline, stallMs: config.pipelineStallMs, batcher: new WriteBatcher(), stalls: new StallWatch() }
      transport = (handle) => new Upstream(handle, pool)
    }
    this.transport = transport
    provider.onChange?.((change) => this.changed(change))
  }

  /**
   * A short digest of the routing table (preset, M, every slot's owner by name): balancers
   * with the same digest send every key to the same replica first. See ring/digest.ts.
   */
  tableDigest(): string {
    return this.members.digest()
  }

  /** Who decides membership when this balancer only follows (a Swarm follower); undefined for a writer. */
  get writer(): string | undefined {
    return this.provider.follows?.()
  }

  /** Names in join order and their count: the body of GET /rep. */
  membership(): Membership {
    return { N: this.members.size, replicas: this.members.names() }
  }

  upstreams(): Upstream[] {
    return this.members.upstreams()
  }

  /** A transport's health as membership sees it ('up' for one that joined and was never suspected). */
  stateOf(upstream: Upstream): MemberState {
    return this.members.stateOf(upstream)
  }

  get(name: string): Upstream | undefined {
    return this.members.get(name)
  }

  /** A member's weight on the ring (1 unless set by --weights or /add's `weights`). */
  weightOf(name: string): number | undefined {
    return this.members.weightOf(name)
  }

  /** Initialise the provider, take over adopted replicas, then start the configured ones. */
  start(): Promise<Membership> {
    return this.serial(async () => {
      const adopted = await this.provider.init()
      // A follower's members are the writer's: all of them, and nothing started here.
      if (this.provider.follows) {
        for (const handle of adopted) this.join(handle, handle.weight ?? 1)
        return this.membership()
      }
      const want = this.config.replicas
      const keep = adopted.slice(0, want)
      for (const extra of adopted.slice(want)) await this.provider.stop(extra.name)
      for (const handle of keep) this.join(handle, handle.weight ?? this.configuredWeight(handle.name))
      const names: string[] = []
      for (const name of this.config.names) if (!this.members.has(name) && names.length + keep.length < want) names.push(name)
      for (let i = 1; names.length + keep.length < want; i++) {
        const name = `Server ${i}`
        if (!this.members.has(name) && !names.includes(name)) names.push(name)
      }
      await this.startAll(names, names.map((name) => this.configuredWeight(name)))
      return this.membership()
    })
  }

  private configuredWeight(name: string): number {
    return this.config.weights?.get(name) ?? 1
  }

  /**
   * POST /add: start `n` replicas, named from `hostnames` and the rest random. Validates
   * everything (names, room on the ring) before starting anything; if any replica fails to
   * start, the ones that did are stopped and nothing joins. `n` is checked against
   * --max-replicas and the ring's room before a single name is made up (capacity.ts).
   */
  add(n: number, hostnames: readonly string[] = [], weights: readonly number[] = []): Promise<Membership> {
    return this.serial(async () => {
      this.assertOpen()
      this.assertWriter()
      assertAddable(n, hostnames, weights, (name) => this.members.has(name))
      assertAddRoom(n, { present: this.members.size, maxReplicas: this.config.maxReplicas, slots: this.config.slots, vnodes: this.config.vnodes, usedUnits: this.ring.totalWeight })
      const names = [...hostnames]
      const taken = new Set([...this.members.names(), ...names])
      while (names.length < n) {
        const name = randomHostname(taken)
        taken.add(name)
        names.push(name)
      }
      if (!this.members.fits(names, weights)) {
        const weight = weights.length > 0 ? ` of total weight ${names.reduce((sum, _, k) => sum + (weights[k] ?? 1), 0)}` : ''
        throw new BalancerError('RING_FULL', `The ring has no room for ${n} more server(s)${weight}: ${this.config.slots} slots, ${this.config.vnodes} virtual servers each, ${this.members.size} present`)
      }
      await this.startAll(names, weights)
      return this.membership()
    })
  }

  /** DELETE /rm: drain and stop the named replicas plus random others, `n` in all. */
  remove(n: number, hostnames: readonly string[] = []): Promise<Membership> {
    return this.serial(async () => {
      this.assertOpen()
      this.assertWriter()
      assertRemovable(n, hostnames, (name) => this.members.has(name), this.members.size)
      const names = [...hostnames]
      const others = this.members.names().filter((name) => !names.includes(name))
      while (names.length < n) names.push(others.splice(Math.floor(Math.random() * others.length), 1)[0]!)
      await this.leaveAll(names, 'removed')
      return this.membership()
    })
  }

  /**
   * Passive detection: a connection to this replica was refused or reset. It leaves the ring
   * at once (no queue: the very next request must not pick it) and stays a member until the
   * health checker confirms it dead (`replace`) or healthy (`restore`). Never empties the
   * ring: with a single replica left, trying it beats refusing everyone (Envoy's panic
   * threshold). Returns false if it is not a live member (left, or already dead).
   */
  suspect(upstream: Upstream): boolean {
    if (this.closed || this.stateOf(upstream) === 'dead' || !this.members.holds(upstream)) return false
    if (this.stateOf(upstream) === 'up' && this.ring.size > 1) {
      this.members.setState(upstream, 'suspect')
      this.members.takeOut(upstream.name)
      this.emit('suspect', upstream)
    }
    return true
  }

  /** The health checker found a suspect healthy: back into the ring (in the queue, as a join). */
  restore(upstream: Upstream): Promise<boolean> {
    return this.serial(async () => {
      if (this.closed || this.stateOf(upstream) !== 'suspect' || !this.members.holds(upstream)) return false
      if (!this.members.putBack(upstream)) {
        // Its slots were taken while it was out (a /add filled the ring): replace it instead.
        void this.replace(upstream.name)
        return false
      }
      this.members.setState(upstream, 'up')
      this.emit('restored', upstream)
      return true
    })
  }

  /**
   * A replica was found dead: it leaves the ring and its in-flight requests are aborted at
   * once (outside the queue, so no request waits on a slow change; the proxy retries the
   * aborted ones that are safe to retry). Then, in the queue, it is stopped and a new replica
   * with a new random hostname starts in its place so that N stays as configured (SPEC 5).
   * The dead one is stopped in the background: a frozen process may take the provider's
   * whole stop timeout, and the replacement need not wait for that. A replacement that fails
   * to start is tried again with backoff until one starts or the balancer closes.
   * Resolves with the new name (undefined if there was nothing to replace).
   */
  replace(name: string): Promise<string | undefined> {
    const upstream = this.members.get(name)
    if (!upstream || this.stateOf(upstream) === 'dead' || this.closed) return Promise.resolve(undefined)
    this.members.setState(upstream, 'dead')
    this.members.takeOut(name)
    upstream.close()
    this.emit('dead', upstream)
    return this.serial(async () => {
      // Removed by /rm meanwhile (which stops it): the user chose the new N.
      if (!this.members.holds(upstream) || this.closed) return undefined
      const weight = this.members.forget(name)
      const stopped = this.provider
        .stop(name)
        .catch((err: Error) => this.emit('error', err))
        .then(() => {
          this.stopping.delete(stopped)
          this.emit('left', name, 'dead', upstream)
        })
      this.stopping.add(stopped)
      // A follower replaces nothing: the writer does, and the follower learns of it (onChange).
      // Its provider only forgets the dead one, so that it joins again if it answers again.
      if (this.provider.follows) return undefined
      return this.startReplacement(name, 1, weight)
    })
  }

  /** In the queue: start one replica with a fresh random name (and the dead one's weight); on failure, retry later. */
  private async startReplacement(dead: string, attempt: number, weight = 1): Promise<string> {
    const fresh = randomHostname(new Set([...this.members.names(), ...this.provider.list().map((h) => h.name), dead]))
    try {
      await this.startAll([fresh], [weight])
    } catch (err) {
      if (!this.closed) {
        const delay = Math.min(30_000, 500 * 2 ** (attempt - 1))
        const timer = setTimeout(() => {
          this.retries.delete(timer)
          if (!this.closed) this.serial(() => this.startReplacement(dead, attempt + 1, weight)).catch(() => {})
        }, delay)
        this.retries.add(timer)
        this.emit('error', new Error(`replacement for ${dead} failed (attempt ${attempt}); trying again in ${delay} ms: ${(err as Error).message}`, { cause: err }))
      }
      throw err
    }
    this.emit('replaced', dead, fresh)
    return fresh
  }

  /**
   * Shutdown: every replica leaves the ring and drains (in-flight requests finish within the
   * drain timeout), then `provider.close()` decides what happens to them: the process
   * provider stops its children; the Docker provider removes its containers, or leaves them
   * running for the next start to adopt when told to keep them (--docker-keep). The balancer
   * itself never stops a replica on shutdown. Further changes are refused.
   */
  close(): Promise<void> {
    this.closed = true
    for (const timer of this.retries) clearTimeout(timer)
    this.retries.clear()
    return this.serial(async () => {
      const leaving = this.members.upstreams()
      await this.drainAll(leaving)
      try {
        await Promise.all(this.stopping)
        await this.provider.close()
      } finally {
        for (const upstream of leaving) this.emit('left', upstream.name, 'shutdown', upstream)
      }
    })
  }

  private assertOpen(): void {
    if (this.closed) throw new BalancerError('SHUTTING_DOWN')
  }

  private assertWriter(): void {
    const writer = this.writer
    if (writer !== undefined) {
      throw new BalancerError('NOT_THE_WRITER', `This balancer follows '${writer}' (--swarm-follow) and does not change membership: send /add and /rm to it`)
    }
  }

  /**
   * The provider saw a change it did not make for us: a replica moved (same name, new
   * address), or, on a follower, the writer added or removed one. Applied in the queue.
   */
  private changed(change: ReplicaChange): void {
    const apply = async (): Promise<void> => {
      if (this.closed) return
      if (change.kind === 'moved') return this.move(change.handle)
      if (change.kind === 'appeared') {
        if (!this.members.has(change.handle.name)) this.join(change.handle, change.handle.weight ?? 1)
        return
      }
      const upstream = this.members.get(change.name)
      if (!upstream) return
      this.detach([upstream])
      await this.drain(upstream)
      this.emit('left', change.name, 'removed', upstream)
    }
    this.serial(apply).catch((err: Error) => this.emit('error', new Error(`following a ${change.kind} replica failed: ${err.message}`, { cause: err })))
  }

  /**
   * A member's replica runs at a new address now (Swarm rescheduled its task): a new Upstream
   * takes its place under the same name, slots and weight (the routing table does not change);
   * the old one drains in the background.
   */
  private move(handle: ReplicaHandle): void {
    const old = this.members.get(handle.name)
    if (!old || this.stateOf(old) === 'dead' || (old.host === handle.host && old.port === handle.port)) return
    const fresh = this.transport(handle)
    this.members.swap(handle.name, fresh)
    this.emit('left', handle.name, 'moved', old)
    this.emit('joined', fresh)
    const drained = this.drain(old).then(() => {
      this.stopping.delete(drained)
    })
    this.stopping.add(drained)
  }

  /** Start all names in parallel; join all (names[k] with weights[k], default 1) on success, stop every started one on failure. */
  private async startAll(names: readonly string[], weights: readonly number[] = []): Promise<void> {
    if (names.length === 0) return
    const results = await Promise.allSettled(names.map((name, k) => this.provider.start(name, { weight: weights[k] ?? 1 })))
    const failed = results.findIndex((r) => r.status === 'rejected')
    if (failed !== -1) {
      await Promise.allSettled(names.map((name, i) => (results[i]!.status === 'fulfilled' ? this.provider.stop(name) : undefined)))
      const reason = (results[failed] as PromiseRejectedResult).reason as Error
      throw new BalancerError('REPLICA_START_FAILED', `Replica '${names[failed]}' failed to start: ${reason?.message ?? String(reason)}`, { cause: reason })
    }
    results.forEach((r, k) => this.join((r as PromiseFulfilledResult<ReplicaHandle>).value, weights[k] ?? 1))
  }

  private join(handle: ReplicaHandle, weight = 1): void {
    const upstream = this.transport(handle)
    this.members.join(handle.name, upstream, weight)
    this.emit('joined', upstream)
  }

  /** /rm: out of the ring first (no new requests), then drain in-flight ones, then stop each. */
  private async leaveAll(names: readonly string[], reason: 'removed'): Promise<void> {
    const leaving = names.map((name) => this.members.get(name)!)
    this.detach(leaving)
    await Promise.all(
      leaving.map(async (upstream) => {
        await this.drain(upstream)
        await this.provider.stop(upstream.name)
        this.emit('left', upstream.name, reason, upstream)
      }),
    )
  }

  /** Shutdown: out of the ring and drained, but not stopped (provider.close decides). */
  private async drainAll(leaving: readonly Upstream[]): Promise<void> {
    this.detach(leaving)
    await Promise.all(leaving.map((upstream) => this.drain(upstream)))
  }

  /** No new requests: out of the ring (a suspect is out already) and no longer a member. */
  private detach(leaving: readonly Upstream[]): void {
    for (const upstream of leaving) this.members.forget(upstream.name)
  }

  /** Wait for in-flight requests (up to the drain timeout), then close its connections. */
  private async drain(upstream: Upstream): Promise<void> {
    await upstream.waitIdle(this.config.drainTimeoutMs)
    upstream.close()
  }

  /** Run membership changes one at a time, in arrival order; a failure does not block the next. */
  private serial<T>(fn: () => Promise<T>): Promise<T> {
    return this.queue.run(fn)
  }
}
