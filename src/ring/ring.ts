/**
 * The consistent-hash ring (SPEC 3). M slots; each member is placed as K virtual servers
 * (K·w for a member of weight w) at Φ(i, j) mod M, collisions resolved by linear or
 * quadratic probing. The slots a member really occupies are recorded at placement, so
 * removal frees exactly those.
 *
 * The `default` preset (hash kind `table`) has no virtual servers: its owner table is a
 * capacity-capped rendezvous assignment of all M slots, rebuilt from the member set on every
 * change (table.ts). Everything else -- pick, next, shares -- reads the same table. Room:
 * each unit of weight reserves K slots, as a member of a formula ring occupies K of them.
 *
 * Lookups are O(1) and allocation-free: `table` (a Uint16Array of length M) maps every slot
 * to the index (in join order) of the member owning the nearest occupied slot clockwise,
 * the slot itself included. It is rebuilt in O(M) after each membership change (at the next
 * read, so a batch of joins costs one rebuild), which is rare next to requests. Beside it, `points` lists the occupied slots in ring order and
 * `pointAt` maps a slot to its nearest point, so the failover walk in next() steps over
 * the N·K points instead of all M slots.
 */
import { RingFullError } from './errors.js'
import { bindHash, parseHashSpec, type BoundHash, type HashSpec } from './hashes.js'
import { buildTable } from './table.js'

export type Probe = 'linear' | 'quadratic'

export interface RingOptions {
  /** M, the number of slots: an integer 1..65536. Default 512. */
  slots?: number
  /** K, virtual servers per member: an integer 1..M. Default round(log2(M)), i.e. 9 for 512. */
  vnodes?: number
  /** A HashSpec or a text accepted by parseHashSpec. Default `default` (balanced table). */
  hash?: HashSpec | string
  /** Collision resolution. Default `linear`. */
  probe?: Probe
}

export const MAX_SLOTS = 65536
/** Ring size M when none is given (config.ts's --slots default too). */
export const DEFAULT_SLOTS = 512
/** Largest member weight (as HAProxy's server weights, 1..256). */
export const MAX_WEIGHT = 256

interface Member<T> {
  readonly name: string
  readonly value: T
  /** Smallest free positive integer at join time; the `i` of the formula presets. */
  readonly serverId: number
  /** A positive integer: K·weight virtual servers, or weight/W of a balanced table. */
  readonly weight: number
  /** Slot of virtual server j at index j, after probing (empty for a balanced table). */
  readonly slots: readonly number[]
}

const FREE = -1

/**
 * What the request path may do with the ring: look up, never change. Membership
 * (src/membership/balancer.ts) holds the HashRing itself; the route layer gets this view, so
 * an add or remove there does not compile.
 */
export type RingView<T> = Pick<HashRing<T>, 'slots' | 'size' | 'has' | 'get' | 'names' | 'valueList' | 'weights' | 'totalWeight' | 'slotOf' | 'pick' | 'next' | 'weightOf' | 'shares' | 'ownerTable' | 'placements'>

/**
 * Where a member sits, as another process needs it to build the same table (src/cluster/):
 * its server id and weight, and for the ring presets its virtual servers' slots after probing
 * (empty for the balanced table, which is rebuilt from names and weights alone).
 */
export interface Placement {
  readonly name: string
  readonly serverId: number
  readonly weight: number
  readonly slots: readonly number[]
}

export class HashRing<T> {
  readonly slots: number
  readonly vnodes: number
  readonly probe: Probe
  readonly hash: HashSpec
  private readonly bound: BoundHash
  /** The `table` kind: owner table from table.ts, no virtual servers. */
  private readonly balanced: boolean
  private members: Member<T>[] = []
  private readonly byName = new Map<string, Member<T>>()
  /** Values in join order, parallel to `members`, so pick() is two array reads. */
  private values: T[] = []
  /** Weights in join order, parallel to `values`. */
  private weightList: number[] = []
  private weightSum = 0
  /** Slot -> index of the member whose virtual server sits there, or FREE. */
  private readonly occupant: Int32Array
  /** Slot -> index of the member owning it (nearest occupied slot clockwise). */
  private readonly table: Uint16Array
  /** The occupied slots in increasing order; the first `pointCount` entries are valid. */
  private readonly points: Int32Array
  private pointCount = 0
  /** Slot -> index into `points` of the nearest occupied slot clockwise. */
  private readonly pointAt: Uint16Array
  /** next(): member index -> the walk that last offered it, so a walk allocates nothing. */
  private offeredIn = new Uint32Array(0)
  private walk = 0
  private walking = false
  /**
   * The tables lag a membership change until the next read (pick, next, ownerTable, ...):
   * joining N members one by one then costs one rebuild, not N -- which matters for the
   * balanced table, an O(N·M) build.
   */
  private dirty = false

  constructor(options: RingOptions = {}) {
    const m = options.slots ?? DEFAULT_SLOTS
    if (!Number.isInteger(m) || m < 1 || m > MAX_SLOTS) {
      throw new RangeError(`slots (M) must be an integer from 1 to ${MAX_SLOTS}, got ${m}`)
    }
    const k = options.vnodes ?? Math.max(1, Math.round(Math.log2(m)))
    if (!Number.isInteger(k) || k < 1 || k > m) {
      throw new RangeError(`vnodes (K) must be an integer from 1 to slots (${m}), got ${k}`)
    }
    const probe = options.probe ?? 'linear'
    if (probe !== 'linear' && probe !== 'quadratic') {
      throw new RangeError(`probe must be "linear" or "quadratic", got ${JSON.stringify(probe)}`)
    }
    const hash = options.hash ?? 'default'
    this.hash = typeof hash === 'string' ? parseHashSpec(hash) : hash
    this.slots = m
    this.vnodes = k
    this.probe = probe
    this.bound = bindHash(this.hash, m)
    this.balanced = this.hash.kind === 'table'
    this.occupant = new Int32Array(m).fill(FREE)
    this.table = new Uint16Array(m)
    this.points = new Int32Array(m)
    this.pointAt = new Uint16Array(m)
  }

  get size(): number {
    return this.members.length
  }

  has(name: string): boolean {
    return this.byName.has(name)
  }

  get(name: string): T | undefined {
    return this.byName.get(name)?.value
  }

  /** Member names in join order; ownerTable() entries index into this list. */
  names(): string[] {
    return this.members.map((m) => m.name)
  }

  serverIdOf(name: string): number | undefined {
    return this.byName.get(name)?.serverId
  }

  /**
   * Ring presets: the slots the member occupies, virtual server j at index j (after
   * probing). Balanced table: the slots it owns now, ascending.
   */
  slotsOf(name: string): readonly number[] {
    const member = this.byName.get(name)
    if (member === undefined) return []
    if (!this.balanced) return member.slots
    if (this.dirty) this.rebuild()
    const index = this.members.indexOf(member)
    const owned: number[] = []
    this.table.forEach((owner, slot) => owner === index && owned.push(slot))
    return Object.freeze(owned)
  }

  weightOf(name: string): number | undefined {
    return this.byName.get(name)?.weight
  }

  /** Member values in join order (the live array: do not modify). ownerTable() indexes it. */
  valueList(): readonly T[] {
    return this.values
  }

  /** Member weights in join order, parallel to valueList() (the live array: do not modify). */
  weights(): readonly number[] {
    return this.weightList
  }

  /** The sum of all member weights. */
  get totalWeight(): number {
    return this.weightSum
  }

  /**
   * Adds a member with a weight (a positive integer up to MAX_WEIGHT, default 1). Atomic: if
   * the ring has no room (RingFullError), the name is taken or the weight invalid, nothing
   * changes.
   */
  add(name: string, value: T, weight = 1): void {
    if (this.byName.has(name)) throw new Error(`ring: member ${JSON.stringify(name)} already exists`)
    checkWeight(weight)
    const index = this.members.length
    const serverId = this.freeServerIds(1)[0]!
    const slots = this.balanced
      ? this.reserve(this.weightSum, name, weight)
      : this.place(this.occupant, serverId, name, index, weight) // throws before any change
    const member: Member<T> = { name, value, serverId, weight, slots: Object.freeze(slots) }
    this.members.push(member)
    this.values.push(value)
    this.weightList.push(weight)
    this.weightSum += weight
    this.byName.set(name, member)
    this.dirty = true
  }

  /**
   * Gives a member a new payload (its replica moved to another address), keeping its place in
   * join order, its slots and its server id: the table does not change. False if absent.
   */
  setValue(name: string, value: T): boolean {
    const member = this.byName.get(name)
    if (!member) return false
    const index = this.members.indexOf(member)
    const updated: Member<T> = { ...member, value }
    this.members[index] = updated
    this.values[index] = value
    this.byName.set(name, updated)
    return true
  }

  /** Every member's placement, in join order (ownerTable() indexes this order). */
  placements(): Placement[] {
    return this.members.map(({ name, serverId, weight, slots }) => ({ name, serverId, weight, slots }))
  }

  /**
   * Replaces every member with `entries`, in that join order, each at the placement another
   * ring reported (placements()): the result routes every request id exactly as that ring
   * does, which replaying the joins could not promise for the ring presets (server ids and
   * probing depend on the history of joins and leaves). Validated whole first; on an invalid
   * entry (RangeError) nothing changes.
   */
  restore(entries: ReadonlyArray<Placement & { readonly value: T }>): void {
    const occupant = new Int32Array(this.slots).fill(FREE)
    const names = new Set<string>()
    const ids = new Set<number>()
    let units = 0
    entries.forEach((e, index) => {
      if (names.has(e.name)) throw new RangeError(`ring: member ${JSON.stringify(e.name)} appears twice`)
      if (!Number.isSafeInteger(e.serverId) || e.serverId < 1 || ids.has(e.serverId)) throw new RangeError(`ring: bad or repeated server id ${e.serverId}`)
      checkWeight(e.weight)
      names.add(e.name)
      ids.add(e.serverId)
      units += e.weight
      if (this.balanced) return
      if (e.slots.length !== this.vnodes * e.weight) throw new RangeError(`ring: ${JSON.stringify(e.name)} needs ${this.vnodes * e.weight} slots, got ${e.slots.length}`)
      for (const s of e.slots) {
        if (!Number.isInteger(s) || s < 0 || s >= this.slots || occupant[s] !== FREE) throw new RangeError(`ring: slot ${s} of ${JSON.stringify(e.name)} is out of range or taken`)
        occupant[s] = index
      }
    })
    if (this.balanced && units * this.vnodes > this.slots) throw new RangeError(`ring: ${units} units of weight do not fit ${this.slots} slots`)
    this.occupant.set(occupant)
    this.members = entries.map((e) => ({ name: e.name, value: e.value, serverId: e.serverId, weight: e.weight, slots: Object.freeze(this.balanced ? [] : [...e.slots]) }))
    this.values = this.members.map((m) => m.value)
    this.weightList = this.members.map((m) => m.weight)
    this.weightSum = units
    this.byName.clear()
    for (const m of this.members) this.byName.set(m.name, m)
    this.dirty = true
  }

  /** Removes a member, freeing the slots it recorded at placement. False if absent. */
  remove(name: string): boolean {
    const member = this.byName.get(name)
    if (!member) return false
    const index = this.members.indexOf(member)
    if (!this.balanced) {
      for (const s of member.slots) this.occupant[s] = FREE
      // Members after it move down one place in join order; renumber their slots.
      for (let s = 0; s < this.slots; s++) {
        if (this.occupant[s]! > index) this.occupant[s]!--
      }
    }
    this.members.splice(index, 1)
    this.values.splice(index, 1)
    this.weightList.splice(index, 1)
    this.weightSum -= member.weight
    this.byName.delete(name)
    this.dirty = true
    return true
  }

  /**
   * Throws RingFullError unless adding `names` (with `weights[k]` for names[k], default 1),
   * in this order, would succeed; changes nothing. Also throws (a plain Error) for a name in
   * use or repeated, or an invalid weight.
   */
  checkRoom(names: readonly string[], weights: readonly number[] = []): void {
    const seen = new Set<string>()
    for (const name of names) {
      if (this.byName.has(name) || seen.has(name)) {
        throw new Error(`ring: member ${JSON.stringify(name)} already exists or is repeated`)
      }
      seen.add(name)
    }
    for (const w of weights) checkWeight(w)
    if (this.balanced) {
      let sum = this.weightSum
      names.forEach((name, n) => {
        this.reserve(sum, name, weights[n] ?? 1)
        sum += weights[n] ?? 1
      })
      return
    }
    const scratch = this.occupant.slice()
    const ids = this.freeServerIds(names.length)
    names.forEach((name, n) => this.place(scratch, ids[n]!, name, 0, weights[n] ?? 1))
  }

  /** Would adding `names`, in this order, fit? (See checkRoom.) */
  fits(names: readonly string[], weights: readonly number[] = []): boolean {
    try {
      this.checkRoom(names, weights)
      return true
    } catch (err) {
      if (err instanceof RingFullError) return false
      throw err
    }
  }

  /** Slot of request id `id`, a non-negative safe integer. */
  slotOf(id: number): number {
    if (!Number.isSafeInteger(id) || id < 0) {
      throw new RangeError(`request id must be a non-negative safe integer, got ${id}`)
    }
    return this.bound.requestSlot(id)
  }

  /** The member serving request id `id`, or undefined when the ring is empty. O(1). */
  pick(id: number): T | undefined {
    if (this.members.length === 0) return undefined
    if (this.dirty) this.rebuild()
    return this.values[this.table[this.slotOf(id)]!]
  }

  /**
   * Failover: walks clockwise from slotOf(id) -- over the occupied slots of a ring preset,
   * over the table's slots for the balanced table -- and returns the first member `accept`
   * takes, offering each distinct member at most once, the owner of the slot first (so the
   * first offer is pick()). Undefined if none. `accept` must not change the membership.
   * Allocates nothing (unless `accept` itself walks this ring again).
   */
  next(id: number, accept: (value: T, name: string, weight: number) => boolean): T | undefined {
    const n = this.members.length
    if (n === 0) return undefined
    const slot = this.slotOf(id)
    if (this.dirty) this.rebuild()
    const balanced = this.balanced
    const start = balanced ? slot : this.pointAt[slot]!
    const first = balanced ? this.table[slot]! : this.occupant[this.points[start]!]!
    const member = this.members[first]!
    if (accept(member.value, member.name, member.weight)) return member.value
    if (n === 1) return undefined
    const nested = this.walking
    const offeredSet = nested ? new Set<number>() : undefined
    if (!nested) {
      if (this.offeredIn.length < n) this.offeredIn = new Uint32Array(Math.max(n, 2 * this.offeredIn.length))
      if (++this.walk === 0xffffffff) {
        this.offeredIn.fill(0)
        this.walk = 1
      }
    }
    const walk = this.walk
    const marks = this.offeredIn
    const seen = (index: number): boolean => (offeredSet ? offeredSet.has(index) : marks[index] === walk)
    const mark = (index: number): void => void (offeredSet ? offeredSet.add(index) : (marks[index] = walk))
    mark(first)
    let offered = 1
    const count = balanced ? this.slots : this.pointCount
    this.walking = true
    try {
      for (let step = 1; step < count && offered < n; step++) {
        const index = balanced ? this.table[(start + step) % count]! : this.occupant[this.points[(start + step) % count]!]!
        if (seen(index)) continue
        mark(index)
        offered++
        const next = this.members[index]!
        if (accept(next.value, next.name, next.weight)) return next.value
      }
    } finally {
      this.walking = nested
    }
    return undefined
  }

  /**
   * The live owner table: slot -> index into names(). Valid until the next membership
   * change; meaningless while the ring is empty. For analysis; do not write to it.
   */
  ownerTable(): Readonly<Uint16Array> {
    if (this.dirty) this.rebuild()
    return this.table
  }

  /** Slots owned per member (how many table entries map to it), in join order. */
  shares(): Map<string, number> {
    if (this.dirty) this.rebuild()
    const counts = new Array<number>(this.members.length).fill(0)
    if (counts.length > 0) for (const index of this.table) counts[index]!++
    return new Map(this.members.map((m, i) => [m.name, counts[i]!]))
  }

  /** The `n` smallest positive integers not used as server ids. */
  private freeServerIds(n: number): number[] {
    const used = new Set(this.members.map((m) => m.serverId))
    const ids: number[] = []
    for (let id = 1; ids.length < n; id++) if (!used.has(id)) ids.push(id)
    return ids
  }

  /**
   * Balanced table: each unit of weight reserves K slots. Throws RingFullError if a member
   * of `weight` does not fit next to `used` units; returns its (empty) virtual server list.
   */
  private reserve(used: number, name: string, weight: number): number[] {
    if ((used + weight) * this.vnodes > this.slots) {
      throw new RingFullError(
        `The ring has no room for more servers: ${JSON.stringify(name)} (weight ${weight}) needs ${weight * this.vnodes} of the ${this.slots - used * this.vnodes} free slots (M=${this.slots}, K=${this.vnodes} slots per unit of weight)`,
      )
    }
    return []
  }

  /**
   * Places the K·weight virtual servers of one member into `occ`, marking them with `index`,
   * and returns their slots. On RingFullError it unmarks what it marked, so `occ` is unchanged.
   */
  private place(occ: Int32Array, serverId: number, name: string, index: number, weight = 1): number[] {
    const m = this.slots
    const placed: number[] = []
    for (let j = 0; j < this.vnodes * weight; j++) {
      const home = this.bound.vnodeSlot(serverId, name, j)
      let slot = FREE
      // Up to M tries. Linear probing reaches every slot; quadratic (home + t²) may not,
      // and a free slot it cannot reach counts as no room.
      for (let t = 0; t < m; t++) {
        const s = this.probe === 'linear' ? (home + t) % m : (home + t * t) % m
        if (occ[s] === FREE) {
          slot = s
          break
        }
      }
      if (slot === FREE) {
        for (const s of placed) occ[s] = FREE
        throw new RingFullError(
          `The ring has no room for more servers: no free slot for virtual server ${j} of ${JSON.stringify(name)} (M=${m}, K=${this.vnodes}, ${this.probe} probing)`,
        )
      }
      occ[slot] = index
      placed.push(slot)
    }
    return placed
  }

  /**
   * Recomputes the tables: each slot -> its nearest occupied slot clockwise (pointAt) and
   * that slot's owner (table).
   */
  private rebuild(): void {
    this.dirty = false
    if (this.balanced) {
      if (this.members.length === 0) this.table.fill(0)
      else buildTable(this.members, this.table)
      return
    }
    const m = this.slots
    const occ = this.occupant
    const points = this.points
    let count = 0
    for (let s = 0; s < m; s++) if (occ[s] !== FREE) points[count++] = s
    this.pointCount = count
    if (count === 0) {
      this.table.fill(0)
      this.pointAt.fill(0)
      return
    }
    // Walk backwards; slots after the last point wrap around to the first one (index 0).
    let p = 0
    let k = count
    for (let s = m - 1; s >= 0; s--) {
      if (occ[s] !== FREE) p = --k
      this.pointAt[s] = p
      this.table[s] = occ[points[p]!]!
    }
  }
}

function checkWeight(weight: number): void {
  if (!Number.isSafeInteger(weight) || weight < 1 || weight > MAX_WEIGHT) {
    throw new RangeError(`weight must be an integer from 1 to ${MAX_WEIGHT}, got ${weight}`)
  }
}
