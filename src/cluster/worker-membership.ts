/**
 * A worker's copy of membership: the Upstreams (its own keep-alive pools) of the members in
 * the latest snapshot, and a ring rebuilt from the snapshot's placements, so it routes every
 * key exactly as the primary's table does. It never decides membership: it applies what the
 * primary posts, drains what the primary asks it to, and reports (passive health) what its
 * requests saw. It looks like the Balancer to the observability code (events, upstreams()),
 * so the worker counts its requests with the same ReplicaStats.
 */
import { EventEmitter } from 'node:events'
import { HashRing, type RingView } from '../ring/ring.js'
import { tableDigest } from '../ring/digest.js'
import type { Membership } from '../membership/types.js'
import type { Upstream } from '../upstream/upstream.js'
import type { ReplicaHandle } from '../replicas/provider.js'
import type { Config } from '../config.js'
import { memberKey, type MemberState, type Snapshot } from './snapshot.js'

interface WorkerMembershipEvents {
  joined: [upstream: Upstream]
  left: [name: string, reason: string, upstream: Upstream]
  suspect: [upstream: Upstream]
  restored: [upstream: Upstream]
  dead: [upstream: Upstream]
  replaced: [dead: string, fresh: string]
}

export class WorkerMembership extends EventEmitter<WorkerMembershipEvents> {
  readonly ring: RingView<Upstream>
  private readonly table: HashRing<Upstream>
  /** This worker's Upstream per member key (name and address), as long as it may carry requests. */
  private readonly byKey = new Map<string, Upstream>()
  private readonly states = new WeakMap<Upstream, MemberState>()
  private readonly weights = new Map<string, number>()
  /** Members no longer listed, draining in the background: a drain request for one waits for it. */
  private readonly leaving = new Map<string, Promise<void>>()
  private replicas: readonly string[] = []
  /** The version applied last (0: none yet). */
  version = 0

  constructor(
    private readonly config: Pick<Config, 'slots' | 'vnodes' | 'hash' | 'probe' | 'drainTimeoutMs'>,
    private readonly transport: (handle: ReplicaHandle) => Upstream,
    private readonly error: (line: string) => void = () => {},
  ) {
    super()
    this.table = new HashRing<Upstream>({ slots: config.slots, vnodes: config.vnodes, hash: config.hash, probe: config.probe })
    this.ring = this.table
  }

  /**
   * Apply `snapshot` if it is newer than the one applied; false (nothing changes) otherwise.
   * New members get an Upstream; `down` ones are closed at once (their in-flight requests fail
   * and are retried where safe); members no longer listed drain in the background, then close.
   */
  apply(snapshot: Snapshot): boolean {
    if (snapshot.version <= this.version) return false
    this.version = snapshot.version
    const listed = new Set<string>()
    const routable = new Map<string, Upstream>()
    for (const m of snapshot.members) {
      const key = memberKey(m)
      listed.add(key)
      let upstream = this.byKey.get(key)
      if (m.state === 'down') {
        if (upstream) this.retire(key, upstream, 'dead')
        continue
      }
      // Leaving, and not known here (or already draining in the background): nothing to route to it.
      if (m.state === 'draining' && upstream === undefined) continue
      if (upstream === undefined) {
        upstream = this.transport({ name: m.name, host: m.host, port: m.port, id: `${m.host}:${m.port}` })
        this.byKey.set(key, upstream)
        this.emit('joined', upstream)
      }
      this.states.set(upstream, m.state)
      if (m.state !== 'draining') {
        this.weights.set(m.name, m.weight)
        routable.set(m.name, upstream)
      }
    }
    for (const [key, upstream] of this.byKey) if (!listed.has(key)) this.retire(key, upstream, 'removed')
    const entries = []
    for (const p of snapshot.ring) {
      const value = routable.get(p.name)
      if (value === undefined) this.error(`snapshot ${snapshot.version}: ring member ${p.name} is not an active member; left out`)
      else entries.push({ ...p, value })
    }
    this.table.restore(entries)
    this.replicas = snapshot.replicas
    return true
  }

  /** The routing-table digest of this worker's ring (equal to the primary's when it routes alike). */
  tableDigest(): string {
    return tableDigest(this.table)
  }

  /** GET /rep from the latest snapshot. */
  membership(): Membership {
    return { N: this.replicas.length, replicas: [...this.replicas] }
  }

  upstreams(): Upstream[] {
    return [...this.byKey.values()]
  }

  byMemberKey(key: string): Upstream | undefined {
    return this.byKey.get(key)
  }

  stateOf(upstream: Upstream): 'up' | 'suspect' | 'dead' {
    const state = this.states.get(upstream)
    return state === 'suspect' ? 'suspect' : state === 'down' ? 'dead' : 'up'
  }

  weightOf(name: string): number | undefined {
    return this.weights.get(name)
  }

  /**
   * Passive health, before the primary hears of it: a replica that refused or reset a
   * connection leaves this worker's ring at once, as it does the single process's (never the
   * last one: the primary keeps it too). The next snapshot decides.
   */
  suspect(upstream: Upstream): boolean {
    if (this.states.get(upstream) !== 'active' || this.table.get(upstream.name) !== upstream || this.table.size <= 1) return false
    this.states.set(upstream, 'suspect')
    this.table.remove(upstream.name)
    return true
  }

  /** The primary drains a leaving member: wait for this worker's in-flight requests (up to `timeoutMs`), then close it. */
  async drain(key: string, timeoutMs: number): Promise<void> {
    const upstream = this.byKey.get(key)
    if (upstream === undefined) return this.leaving.get(key)
    if (this.table.get(upstream.name) === upstream) this.table.remove(upstream.name)
    await upstream.waitIdle(timeoutMs)
    if (this.byKey.get(key) !== upstream) return
    this.byKey.delete(key)
    upstream.close()
    this.emit('left', upstream.name, 'removed', upstream)
  }

  /** Shutdown: close every member's connections. */
  closeAll(): void {
    for (const [key, upstream] of this.byKey) {
      this.byKey.delete(key)
      upstream.close()
    }
  }

  private retire(key: string, upstream: Upstream, reason: 'dead' | 'removed'): void {
    this.byKey.delete(key)
    this.states.set(upstream, reason === 'dead' ? 'down' : 'draining')
    if (reason === 'dead') {
      upstream.close()
      this.emit('left', upstream.name, 'dead', upstream)
      return
    }
    const drained = upstream.waitIdle(this.config.drainTimeoutMs).then(() => {
      this.leaving.delete(key)
      upstream.close()
      this.emit('left', upstream.name, 'removed', upstream)
    })
    this.leaving.set(key, drained)
  }
}
