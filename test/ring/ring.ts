import t from 'tap'
import { RingFullError } from '../../src/errors.js'
import { HashRing, type Probe } from '../../src/ring/ring.js'
import { customHash, type HashSpec } from '../../src/ring/hashes.js'
import { fmix32, fnv1a32, mixId } from '../../src/ring/mix.js'

// ---- independent oracle ---------------------------------------------------------------
// A deliberately naive model: BigInt formulas, a Map of occupied slots, and a brute-force
// clockwise search. The ring must agree with it after every step of random histories.

function refPoint(spec: HashSpec, m: number, id: number, name: string, j: number): number {
  if (spec.kind === 'mixed') return fmix32(fnv1a32(`${name}#${j}`)) % m
  const [a, b, c, d, e] = spec.phi.map(BigInt) as [bigint, bigint, bigint, bigint, bigint]
  const i = BigInt(id)
  const k = BigInt(j)
  return Number((a * i * i + b * i + c * k * k + d * k + e) % BigInt(m))
}
function refSlot(spec: HashSpec, m: number, id: number): number {
  if (spec.kind === 'mixed') return mixId(id) % m
  const [a, b, c] = spec.h.map(BigInt) as [bigint, bigint, bigint]
  const i = BigInt(id)
  return Number((a * i * i + b * i + c) % BigInt(m))
}

class Model {
  members: { name: string; id: number; slots: number[] }[] = []
  occupied = new Map<number, string>()
  constructor(readonly spec: HashSpec, readonly m: number, readonly k: number, readonly probe: Probe) {}

  /** The slots `name` would take, or 'full'; commits only when `commit`. */
  add(name: string, commit = true): number[] | 'full' {
    let id = 1
    while (this.members.some((x) => x.id === id)) id++
    const taken = new Set(this.occupied.keys())
    const slots: number[] = []
    for (let j = 0; j < this.k; j++) {
      const home = refPoint(this.spec, this.m, id, name, j)
      let found = -1
      for (let t = 0; t < this.m && found < 0; t++) {
        const s = (home + (this.probe === 'linear' ? t : t * t)) % this.m
        if (!taken.has(s)) found = s
      }
      if (found < 0) return 'full'
      taken.add(found)
      slots.push(found)
    }
    if (commit) {
      this.members.push({ name, id, slots })
      for (const s of slots) this.occupied.set(s, name)
    }
    return slots
  }
  remove(name: string): void {
    const x = this.members.find((x) => x.name === name)!
    for (const s of x.slots) this.occupied.delete(s)
    this.members = this.members.filter((y) => y !== x)
  }
  /** Owner of `slot`: the occupied slot at the smallest clockwise distance. */
  owner(slot: number): string | undefined {
    let best: string | undefined
    let bestDist = Infinity
    for (const [s, name] of this.occupied) {
      const dist = (s - slot + this.m) % this.m
      if (dist < bestDist) [best, bestDist] = [name, dist]
    }
    return best
  }
}

/** Owner of every slot, by name, from the ring's table. */
function owners(ring: HashRing<unknown>): string[] {
  const names = ring.names()
  return Array.from(ring.ownerTable(), (i) => names[i]!)
}

function rng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0
    let x = Math.imul(seed ^ (seed >>> 15), 1 | seed)
    x ^= x + Math.imul(x ^ (x >>> 7), 61 | x)
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296
  }
}

// ---- construction ----------------------------------------------------------------------

t.test('options: defaults and validation', async (t) => {
  const r = new HashRing<number>()
  t.match(r, { slots: 512, vnodes: 9, probe: 'linear', hash: { kind: 'mixed', name: 'default' } })
  t.equal(r.ownerTable().length, 512)
  t.ok(r.ownerTable() instanceof Uint16Array)
  t.equal(new HashRing({ slots: 65536 }).vnodes, 16, 'K defaults to log2(M)')
  t.equal(new HashRing({ slots: 7 }).vnodes, 2)
  t.equal(new HashRing({ slots: 1 }).vnodes, 1)
  t.match(new HashRing({ hash: 'assignment' }).hash, { kind: 'formula', name: 'assignment' })
  t.throws(() => new HashRing({ slots: 0 }), { name: 'RangeError', message: /slots \(M\) must be an integer from 1 to 65536/ })
  t.throws(() => new HashRing({ slots: 65537 }), /slots/)
  t.throws(() => new HashRing({ slots: 2.5 }), /slots/)
  t.throws(() => new HashRing({ slots: 16, vnodes: 0 }), /vnodes \(K\) must be an integer from 1 to slots \(16\)/)
  t.throws(() => new HashRing({ slots: 16, vnodes: 17 }), /vnodes/)
  t.throws(() => new HashRing({ probe: 'cubic' as Probe }), /probe must be "linear" or "quadratic"/)
  t.throws(() => new HashRing({ hash: 'nope' }), /Unknown hash "nope"/)
})

t.test('empty ring and unknown names', async (t) => {
  const r = new HashRing<string>({ hash: 'assignment' })
  t.equal(r.size, 0)
  t.equal(r.pick(5), undefined)
  t.equal(r.next(5, () => t.fail('nobody to offer') as never), undefined)
  t.same(r.names(), [])
  t.equal(r.get('x'), undefined)
  t.equal(r.has('x'), false)
  t.equal(r.serverIdOf('x'), undefined)
  t.same(r.slotsOf('x'), [])
  t.equal(r.remove('x'), false)
  t.same(r.shares(), new Map())
  for (const bad of [-1, 1.5, NaN, Infinity, 2 ** 53]) {
    t.throws(() => r.slotOf(bad), { name: 'RangeError' }, `slotOf(${bad})`)
  }
})

// ---- exact placements, computed by hand ------------------------------------------------

function ringOf(hash: string | HashSpec, probe: Probe, names: string[], slots = 512, vnodes = 9) {
  const r = new HashRing<string>({ hash, probe, slots, vnodes })
  for (const n of names) r.add(n, `value of ${n}`)
  return r
}

t.test('assignment preset, M=512, K=9: Φ(i, j) = i² + j² + 2j + 25', async (t) => {
  for (const probe of ['linear', 'quadratic'] as const) {
    const r = ringOf('assignment', probe, ['S1', 'S2', 'S3', 'S4'])
    t.same([1, 2, 3, 4].map((n) => r.serverIdOf(`S${n}`)), [1, 2, 3, 4], 'ids 1, 2, 3, 4 in join order')
    // S1 (i=1): 1 + j² + 2j + 25 = 26, 29, 34, 41, 50, 61, 74, 89, 106 -- no collisions.
    t.same(r.slotsOf('S1'), [26, 29, 34, 41, 50, 61, 74, 89, 106], `${probe}: S1`)
    // S2 (i=2): 4 + j² + 2j + 25 = 29*, 32, 37, 44, 53, 64, 77, 92, 109; 29 is S1's -> 29+1 = 30
    // (the first step is the same for both probes: +1 = +1²).
    t.same(r.slotsOf('S2'), [30, 32, 37, 44, 53, 64, 77, 92, 109], `${probe}: S2`)
    // S3 (i=3): 9 + j² + 2j + 25 = 34*, 37*, 42, 49, 58, 69, 82, 97, 114;
    // 34 is S1's -> 35, 37 is S2's -> 38.
    t.same(r.slotsOf('S3'), [35, 38, 42, 49, 58, 69, 82, 97, 114], `${probe}: S3`)
  }
  // S4 (i=4): 16 + j² + 2j + 25 = 41, 44, 49, 56, 65, 76, 89, 104, 121. Here the probes differ:
  // linear:    41 (S1) 42 (S3) -> 43;  44 (S2) -> 45;  49 (S3) 50 (S1) -> 51;  56;  65;  76;
  //            89 (S1) -> 90;  104;  121
  t.same(ringOf('assignment', 'linear', ['S1', 'S2', 'S3', 'S4']).slotsOf('S4'), [43, 45, 51, 56, 65, 76, 90, 104, 121])
  // quadratic: 41 (S1) 41+1 (S3) -> 41+4 = 45;  44 (S2) 45 (own) -> 44+4 = 48;
  //            49 (S3) 50 (S1) 53 (S2) 58 (S3) -> 49+16 = 65;  56;  65 (own) -> 66;  76;
  //            89 (S1) -> 90;  104;  121
  t.same(ringOf('assignment', 'quadratic', ['S1', 'S2', 'S3', 'S4']).slotsOf('S4'), [45, 48, 65, 56, 66, 76, 90, 104, 121])
})

t.test('quadratic preset, M=512, K=9: Φ(i, j) = i + j + 2j² + 25', async (t) => {
  const names = ['S1', 'S2', 'S3', 'S4']
  const lin = ringOf('quadratic', 'linear', names)
  // S1: 26 + j + 2j²; S2: 27 + ...; S3: 28 + ... -- interleaved, no collisions.
  t.same(lin.slotsOf('S1'), [26, 29, 36, 47, 62, 81, 104, 131, 162])
  t.same(lin.slotsOf('S2'), [27, 30, 37, 48, 63, 82, 105, 132, 163])
  t.same(lin.slotsOf('S3'), [28, 31, 38, 49, 64, 83, 106, 133, 164])
  // S4: 29 + j + 2j² = 29*, 32, 39, 50, 65, 84, 107, 134, 165.
  // linear: 29 (S1) 30 (S2) 31 (S3) -> 32; then j=1 wants 32 (own) -> 33.
  t.same(lin.slotsOf('S4'), [32, 33, 39, 50, 65, 84, 107, 134, 165])
  // quadratic: 29 (S1) 29+1 (S2) -> 29+4 = 33; then 32 is free.
  t.same(ringOf('quadratic', 'quadratic', names).slotsOf('S4'), [33, 32, 39, 50, 65, 84, 107, 134, 165])
})

t.test('linear preset, M=512, K=9: Φ(i, j) = i + 3j + 25', async (t) => {
  const names = ['S1', 'S2', 'S3', 'S4']
  const lin = ringOf('linear', 'linear', names)
  // S1: 26 + 3j, S2: 27 + 3j, S3: 28 + 3j: together exactly slots 26..52.
  t.same(lin.slotsOf('S1'), [26, 29, 32, 35, 38, 41, 44, 47, 50])
  t.same(lin.slotsOf('S2'), [27, 30, 33, 36, 39, 42, 45, 48, 51])
  t.same(lin.slotsOf('S3'), [28, 31, 34, 37, 40, 43, 46, 49, 52])
  // S4: 29 + 3j all fall in 26..52 (or on its own earlier points), so linear probing walks
  // to the end of the cluster: 29 -> 53, 32 -> 54, ..., 50 -> 60, 53 (own) -> 61.
  t.same(lin.slotsOf('S4'), [53, 54, 55, 56, 57, 58, 59, 60, 61])
  // quadratic: j=0 29: +1 +4 +9 +16 taken (30 33 38 45) -> 29+25 = 54;  j=1 32 -> 33 36 41 48 taken -> 57;
  // j=2 35 -> 36 39 44 51 taken -> 60;  j=3 38 -> 39 42 47 54(own) taken -> 63;
  // j=4 41 -> 42 45 50 57(own) taken -> 66;  j=5 44 -> 45 48 taken -> 44+9 = 53;
  // j=6 47 -> 48 51 taken -> 56;  j=7 50 -> 51 54(own) taken -> 59;  j=8 53(own) -> 54 57(own) -> 62.
  t.same(ringOf('linear', 'quadratic', names).slotsOf('S4'), [54, 57, 60, 63, 66, 53, 56, 59, 62])
})

t.test('default preset: points from the hostname, then probing', async (t) => {
  const r = ringOf('default', 'linear', ['Server 1'])
  const want = [0, 1, 2, 3, 4, 5, 6, 7, 8].map((j) => fmix32(fnv1a32(`Server 1#${j}`)) % 512)
  t.equal(new Set(want).size, 9, 'precondition: the nine points are distinct')
  t.same(r.slotsOf('Server 1'), want)
  // Same names in the same order, but different server ids (a member came and went first
  // in one ring): the default preset routes alike, the id-based formulas do not. (Probing
  // depends on who was there first, so the precondition is that no points collide.)
  const names = ['gone', 'alpha', 'beta', 'gamma']
  const points = names.flatMap((n) => [0, 1, 2, 3, 4, 5, 6, 7, 8].map((j) => fmix32(fnv1a32(`${n}#${j}`)) % 512))
  t.equal(new Set(points).size, 36, 'precondition: 36 distinct points')
  const history = (hash: string, withExtra: boolean) => {
    const ring = new HashRing<string>({ hash })
    if (withExtra) ring.add('gone', 'x')
    for (const n of ['alpha', 'beta', 'gamma']) ring.add(n, n)
    ring.remove('gone')
    return ring
  }
  t.same(history('default', true).serverIdOf('alpha'), 2)
  t.same(owners(history('default', true)), owners(history('default', false)), 'default: same table')
  t.not(owners(history('assignment', true)).join(), owners(history('assignment', false)).join(), 'assignment: differs')
})
