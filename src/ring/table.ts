/**
 * The `default` preset's owner table: a capacity-capped rendezvous (HRW) assignment of the
 * M slots, built from the replica set alone (names and weights), so any join order and any
 * balancer with the same replicas get the same table.
 *
 * 1. Scores. Each replica ranks the slots with its own keyed permutation of [0, M): slot s
 *    gets rank π_name(s). A permutation, not M independent hashes: every replica holds each
 *    rank exactly once, which takes the replica's own luck out of its share (the spread of
 *    top-choice counts drops by about a third against independent hashes). The score of
 *    (replica, slot) is ln((rank + ½) / M) / weight, weighted rendezvous.
 * 2. Base. Every slot goes to its best-scoring replica: plain rendezvous, where a join only
 *    takes slots for the newcomer and a leave only frees the leaver's.
 * 3. Caps. Replica i may own at most cap_i slots: its fair share f_i = M·w_i/W plus a little
 *    slack, never above max(⌈f_i⌉, ⌊1.05·f_i⌋). The slack (0.6 slot on average) is rounded
 *    per replica with a per-name offset, so caps follow f_i smoothly as N changes instead of
 *    jumping by whole slots for everyone at once (those jumps are what moves extra slots).
 * 4. Repair. A replica over its cap sheds its weakest base slots (lowest own score); the shed
 *    slots go, best score first, to the replicas still under their caps. One hop only: no
 *    replica at its cap is ever displaced, so a change ripples through few slots.
 *
 * Measured over random hostname sets (test/ring/table.ts, bench/ring-quality.ts), M = 512:
 * the busiest replica owns at most 1.039x its fair share for N = 2..20, and adding or
 * removing one replica moves on average at most ~1.45x the ideal share (1/(N+1), or the
 * leaver's share), never more than ~1.9x in thousands of trials.
 */
import { fmix32, fnv1a32 } from './mix.js'

/** Nobody owns more than max(⌈fair⌉, ⌊BALANCE_BOUND·fair⌋) slots. */
export const BALANCE_BOUND = 1.05
/** Average slack of a cap above the fair share, in slots (see the file comment, step 3). */
export const CAP_SLACK = 0.6

export interface TableMember {
  readonly name: string
  /** A positive integer; a replica with weight 2 gets about twice the slots. */
  readonly weight: number
}

/**
 * A keyed permutation of [0, m) (m <= 65536): three rounds of add-key, multiply by an odd
 * key and xorshift, each a bijection on the smallest power of two >= m, cycle-walked back
 * into [0, m). Statistically independent enough across keys for ranking slots; not crypto.
 */
export class SlotPermutation {
  private readonly k1: number
  private readonly k2: number
  private readonly k3: number
  private readonly k4: number
  private readonly k5: number
  private readonly k6: number
  private readonly mask: number
  private readonly shift: number

  constructor(
    key: number,
    private readonly m: number,
  ) {
    const bits = Math.max(1, Math.ceil(Math.log2(m)))
    this.mask = 2 ** bits - 1
    this.shift = (bits + 1) >>> 1
    this.k1 = fmix32((key ^ 0x243f6a88) >>> 0)
    this.k2 = fmix32((key ^ 0x85a308d3) >>> 0) | 1
    this.k3 = fmix32((key ^ 0x13198a2e) >>> 0)
    this.k4 = fmix32((key ^ 0x03707344) >>> 0) | 1
    this.k5 = fmix32((key ^ 0xa4093822) >>> 0)
    this.k6 = fmix32((key ^ 0x299f31d0) >>> 0) | 1
  }

  /** The image of `x` (0 <= x < m). */
  at(x: number): number {
    const { mask, shift, m } = this
    do {
      x = (x + this.k1) & mask
      x = Math.imul(x, this.k2) & mask
      x ^= x >>> shift
      x = (x + this.k3) & mask
      x = Math.imul(x, this.k4) & mask
      x ^= x >>> shift
      x = (x + this.k5) & mask
      x = Math.imul(x, this.k6) & mask
      x ^= x >>> shift
    } while (x >= m)
    return x
  }
}

/** The key a replica's permutation, tie-breaks and cap rounding derive from. */
export function memberKey(name: string): number {
  return fmix32(fnv1a32(name))
}

/**
 * The most slots each member may own (in input order): see the file comment, step 3.
 * Always sums to at least m, and no entry exceeds max(⌈f⌉, ⌊1.05·f⌋).
 */
export function tableCaps(members: readonly TableMember[], m: number): number[] {
  const total = members.reduce((sum, x) => sum + x.weight, 0)
  const offsets = members.map((x) => fmix32((memberKey(x.name) ^ 0x3c6ef372) >>> 0) / 4294967296)
  const hi = members.map((x) => Math.max(Math.ceil((m * x.weight) / total), Math.floor((105 * m * x.weight) / (100 * total))))
  const caps = members.map((x, i) => Math.min(hi[i]!, Math.floor((m * x.weight) / total + CAP_SLACK + offsets[i]!)))
  let sum = caps.reduce((a, b) => a + b, 0)
  if (sum < m) {
    // Rare (the offsets came out low): top up, largest offset first; the ceilings sum to >= m.
    const order = members.map((_, i) => i).sort((a, b) => offsets[b]! - offsets[a]! || compareNames(members[a]!.name, members[b]!.name))
    while (sum < m) {
      for (const i of order) {
        if (sum >= m) break
        if (caps[i]! < hi[i]!) {
          caps[i]!++
          sum++
        }
      }
    }
  }
  return caps
}

function compareNames(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0
}

/**
 * Fills `out` (length m) with, for every slot, the index into `members` of its owner.
 * The result depends on the set of (name, weight) pairs only, not on their order.
 * Names must be distinct; weights positive integers; at least one member.
 */
export function buildTable(members: readonly TableMember[], out: Uint16Array): void {
  const m = out.length
  const n = members.length
  if (n === 0) throw new Error('buildTable: no members')
  // Canonical order (by name) for every tie, so the input order cannot matter.
  const order = members.map((_, i) => i).sort((a, b) => compareNames(members[a]!.name, members[b]!.name))
  const keys = order.map((i) => memberKey(members[i]!.name))
  const perms = keys.map((k) => new SlotPermutation(k, m))
  const weights = order.map((i) => members[i]!.weight)
  const allCaps = tableCaps(members, m)
  const caps = order.map((i) => allCaps[i]!)
  // Scores: ln((rank + ½) / m) / weight, through a table of logs; with equal weights the
  // rank alone orders the same way, so the hot loop compares integers.
  const uniform = weights.every((w) => w === weights[0])
  const logs = new Float64Array(m)
  for (let r = 0; r < m; r++) logs[r] = Math.log((r + 0.5) / m)
  const score = (c: number, s: number): number => (uniform ? perms[c]!.at(s) : logs[perms[c]!.at(s)]! / weights[c]!)
  const tie = (c: number, s: number): number => fmix32((keys[c]! ^ Math.imul(s + 1, 0x9e3779b1)) >>> 0)

  // 2. Base: each slot's best-scoring member; equal scores go to the larger tie hash, then
  // the earlier name.
  const owner = new Int32Array(m)
  const best = new Float64Array(m)
  for (let c = 0; c < n; c++) {
    const perm = perms[c]!
    const w = weights[c]!
    for (let s = 0; s < m; s++) {
      const r = perm.at(s)
      const v = uniform ? r : logs[r]! / w
      if (c === 0 || v > best[s]! || (v === best[s]! && tie(c, s) > tie(owner[s]!, s))) {
        owner[s] = c
        best[s] = v
      }
    }
  }
  const count = new Int32Array(n)
  for (let s = 0; s < m; s++) count[owner[s]!]!++

  // 4. Repair, step one: members over their caps shed their weakest slots.
  const shed: number[] = []
  for (let c = 0; c < n; c++) {
    const excess = count[c]! - caps[c]!
    if (excess <= 0) continue
    const mine: number[] = []
    for (let s = 0; s < m; s++) if (owner[s] === c) mine.push(s)
    // Distinct slots have distinct ranks, so distinct scores: the weakest first.
    mine.sort((x, y) => best[x]! - best[y]! || x - y)
    for (let k = 0; k < excess; k++) {
      const s = mine[k]!
      owner[s] = -1
      shed.push(s)
    }
    count[c] = caps[c]!
  }
  // Step two: shed slots go to members under their caps, the best-scoring pair first.
  if (shed.length > 0) {
    const pairs: { s: number; c: number; v: number }[] = []
    for (const s of shed) for (let c = 0; c < n; c++) if (count[c]! < caps[c]!) pairs.push({ s, c, v: score(c, s) })
    // A total order: score, then the tie hash, then canonical member, then slot.
    pairs.sort((p, q) => q.v - p.v || tie(q.c, q.s) - tie(p.c, p.s) || p.c - q.c || p.s - q.s)
    let left = shed.length
    for (const { s, c } of pairs) {
      if (owner[s] !== -1 || count[c]! >= caps[c]!) continue
      owner[s] = c
      count[c]!++
      if (--left === 0) break
    }
  }
  for (let s = 0; s < m; s++) out[s] = order[owner[s]!]!
}
