/**
 * The members and their ring: who is a member (in join order), each one's weight and health,
 * and the hash ring that routes to the ones in it. A member may be out of the ring for a while
 * (a suspect, or dead and being replaced) and still be a member. Only membership code holds
 * this object; everyone else sees `ring`, whose type has no add or remove.
 */
import { BalancerError } from '../errors.js'
import { RingFullError } from '../ring/errors.js'
import { HashRing, type RingOptions, type RingView } from '../ring/ring.js'
import { tableDigest } from '../ring/digest.js'
import type { Upstream } from '../upstream/upstream.js'
import type { MemberState } from './types.js'

export class Members {
  /** The ring as everyone else sees it: look-ups only. */
  readonly ring: RingView<Upstream>
  /** The same ring, writable: changed only through the methods below. */
  private readonly table: HashRing<Upstream>
  /** Members by name, in join order (Map keeps insertion order). */
  private readonly byName = new Map<string, Upstream>()
  /** Each member's ring weight (kept while a suspect is out of the ring; a replacement inherits it). */
  private readonly weights = new Map<string, number>()
  /** Each member's health (kept until its transport is forgotten). */
  private readonly states = new WeakMap<Upstream, MemberState>()

  constructor(options: RingOptions) {
    this.table = new HashRing<Upstream>(options)
    this.ring = this.table
  }

  get size(): number {
    return this.byName.size
  }

  names(): string[] {
    return [...this.byName.keys()]
  }

  upstreams(): Upstream[] {
    return [...this.byName.values()]
  }

  get(name: string): Upstream | undefined {
    return this.byName.get(name)
  }

  has(name: string): boolean {
    return this.byName.has(name)
  }

  /** Is this very transport the member under its name (not one that left, or an older one)? */
  holds(upstream: Upstream): boolean {
    return this.byName.get(upstream.name) === upstream
  }

  weightOf(name: string): number | undefined {
    return this.weights.get(name)
  }

  /** A transport's health ('up' for one that joined and was never suspected). */
  stateOf(upstream: Upstream): MemberState {
    return this.states.get(upstream) ?? 'up'
  }

  setState(upstream: Upstream, state: MemberState): void {
    this.states.set(upstream, state)
  }

  /** SHA-256 of the routing table (ring/digest.ts). */
  digest(): string {
    return tableDigest(this.table)
  }

  /** Would these new members (with these weights) fit on the ring? */
  fits(names: readonly string[], weights: readonly number[]): boolean {
    return this.table.fits(names, weights)
  }

  /** A new member, into the ring with its weight. */
  join(name: string, upstream: Upstream, weight: number): void {
    try {
      this.table.add(name, upstream, weight)
    } catch (err) {
      // The ring's own error carries no HTTP meaning; to a client it is the SPEC's 400.
      if (err instanceof RingFullError) throw new BalancerError('RING_FULL', err.message, { cause: err })
      throw err
    }
    this.byName.set(name, upstream)
    this.weights.set(name, weight)
  }

  /** Out of the ring, still a member (a suspect, or dead until it is replaced). */
  takeOut(name: string): void {
    this.table.remove(name)
  }

  /** A suspect back into the ring with its weight; false when its slots were taken meanwhile. */
  putBack(upstream: Upstream): boolean {
    try {
      this.table.add(upstream.name, upstream, this.weights.get(upstream.name) ?? 1)
      return true
    } catch (err) {
      if (err instanceof RingFullError) return false
      throw err
    }
  }

  /** Out of the ring and no longer a member; returns the weight it had. */
  forget(name: string): number {
    const weight = this.weights.get(name) ?? 1
    this.table.remove(name)
    this.byName.delete(name)
    this.weights.delete(name)
    return weight
  }

  /**
   * The member `name` runs at a new address: `fresh` takes its place under the same name,
   * slots and weight (a suspect, out of the ring, goes back in at its new address).
   */
  swap(name: string, fresh: Upstream): void {
    if (!this.table.setValue(name, fresh)) this.table.add(name, fresh, this.weights.get(name) ?? 1)
    this.byName.set(name, fresh)
  }
}
