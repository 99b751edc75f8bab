import t, { type Test } from 'tap'
import { RingFullError } from '../../src/ring/errors.js'
import { HashRing, type Probe } from '../../src/ring/ring.js'
import { customHash, type HashSpec } from '../../src/ring/hashes.js'
import { fmix32, fnv1a32, mixId } from '../../src/ring/mix.js'
import { rng } from '../fixtures/rng.js'

// ---- independent oracle ---------------------------------------------------------------
// A deliberately naive model: BigInt formulas, a Map of occupied slots, and a brute-force
// clockwise search. The ring must agree with it after every step of random histories.

function refPoint(spec: HashSpec, m: number, id: number, name: string, j: number): number {
  if (spec.kind === 'table') throw new Error('the oracle models the vnode rings only (test/ring/table.ts covers the table)')
  if (spec.kind === 'mixed') return fmix32(fnv1a32(`${name}#${j}`)) % m
  const [a, b, c, d, e] = spec.phi.map(BigInt) as [bigint, bigint, bigint, bigint, bigint]
  const i = BigInt(id)
  const k = BigInt(j)
  return Number((a * i * i + b * i + c * k * k + d * k + e) % BigInt(m))
}
function refSlot(spec: HashSpec, m: number, id: number): number {
  if (spec.kind !== 'formula') return mixId(id) % m
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
    return this.owners()[slot]
  }
  /** owner() of every slot, by brute force: O(M · occupied), no cleverness to get wrong. */
  owners(): (string | undefined)[] {
    const at = [...this.occupied.keys()]
    const names = [...this.occupied.values()]
    const out: (string | undefined)[] = []
    for (let slot = 0; slot < this.m; slot++) {
      let best = -1
      let bestDist = Infinity
      for (let n = 0; n < at.length; n++) {
        const dist = (at[n]! - slot + this.m) % this.m
        if (dist < bestDist) [best, bestDist] = [n, dist]
      }
      out.push(best < 0 ? undefined : names[best])
    }
    return out
  }
}

/** Owner of every slot, by name, from the ring's table. */
function owners(ring: HashRing<unknown>): string[] {
  const names = ring.names()
  return Array.from(ring.ownerTable(), (i) => names[i]!)
}

// ---- construction ----------------------------------------------------------------------

t.test('options: defaults and validation', async (t) => {
  const r = new HashRing<number>()
  t.match(r, { slots: 512, vnodes: 9, probe: 'linear', hash: { kind: 'table', name: 'default' } })
  t.equal(r.ownerTable().length, 512)
  t.ok(r.ownerTable() instanceof Uint16Array)
  t.equal(new HashRing({ slots: 65536 }).vnodes, 16, 'K defaults to log2(M)')
  t.equal(new HashRing({ slots: 7 }).vnodes, 3, 'round(log2(7)) = round(2.81), as the config does')
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

t.test('ring preset: points from the hostname, then probing', async (t) => {
  const r = ringOf('ring', 'linear', ['Server 1'])
  const want = [0, 1, 2, 3, 4, 5, 6, 7, 8].map((j) => fmix32(fnv1a32(`Server 1#${j}`)) % 512)
  t.equal(new Set(want).size, 9, 'precondition: the nine points are distinct')
  t.same(r.slotsOf('Server 1'), want)
  // Same names in the same order, but different server ids (a member came and went first
  // in one ring): the ring preset routes alike, the id-based formulas do not. (Probing
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
  t.same(history('ring', true).serverIdOf('alpha'), 2)
  t.same(owners(history('ring', true)), owners(history('ring', false)), 'ring: same table')
  t.not(owners(history('assignment', true)).join(), owners(history('assignment', false)).join(), 'assignment: differs')
})

// ---- removal ----------------------------------------------------------------------------

t.test('removal frees the probed slots, not recomputed ones', async (t) => {
  const r = ringOf('assignment', 'linear', ['S1', 'S2', 'S3'])
  // S2 sits at 30 because Φ(2, 0) = 29 belonged to S1. Recomputing would free 29 (S1's).
  t.equal(r.remove('S2'), true)
  t.notOk(r.has('S2'))
  t.same(r.names(), ['S1', 'S3'])
  const own = owners(r)
  t.equal(own[29], 'S1', '29 still occupied by S1')
  t.equal(own[30], 'S1', '30 is free: owned by the next occupied slot, 34 (S1)')
  t.equal(own[36], 'S3', '37 (S2) is free: 36 goes to 38 (S3)')
  t.equal(own[35], 'S3')
  // A newcomer takes the smallest free id, 2, and lands exactly where S2 was.
  r.add('S2b', 'v')
  t.equal(r.serverIdOf('S2b'), 2)
  t.same(r.slotsOf('S2b'), [30, 32, 37, 44, 53, 64, 77, 92, 109])

  // Removing S1 frees 26, 29, 34, ... while S3 keeps its probed 35 and 38.
  r.remove('S1')
  t.same(r.slotsOf('S3'), [35, 38, 42, 49, 58, 69, 82, 97, 114])
  t.equal(owners(r)[34], 'S3', '34 is free, next is 35 (S3)')
  t.equal(owners(r)[29], 'S2b', '29 is free, next is 30 (S2b)')
  r.add('S1b', 'v')
  t.equal(r.serverIdOf('S1b'), 1)
  t.same(r.slotsOf('S1b'), [26, 29, 34, 41, 50, 61, 74, 89, 106], 'its home slots were all free again')
  t.same(r.names(), ['S3', 'S2b', 'S1b'], 'join order')
})

t.test('only the removed member\'s slots change owner', async (t) => {
  for (const hash of ['ring', 'assignment', 'linear']) {
    const r = ringOf(hash, 'linear', ['a', 'b', 'c', 'd', 'e'])
    for (const gone of ['c', 'a', 'e']) {
      const before = owners(r)
      r.remove(gone)
      const after = owners(r)
      let moved = 0
      before.forEach((owner, s) => {
        if (owner === gone) moved++
        else if (after[s] !== owner) t.fail(`${hash}: slot ${s} moved from ${owner} to ${after[s]}`)
      })
      t.ok(moved > 0 && after.every((o) => o !== gone), `${hash}: ${moved} slots of ${gone} moved, no others`)
    }
  }
})

// ---- the whole ring against the oracle -------------------------------------------------

function checkAgainstModel(t: Test, r: HashRing<string>, model: Model, ids: number[], label: string): void {
  t.same(r.names(), model.members.map((x) => x.name), `${label}: names`)
  for (const x of model.members) {
    t.same(r.slotsOf(x.name), x.slots, `${label}: slots of ${x.name}`)
    t.equal(r.serverIdOf(x.name), x.id)
  }
  const want = model.owners()
  const own = owners(r)
  let bad = 0
  for (let s = 0; s < model.m; s++) if (own[s] !== want[s]) bad++
  t.equal(bad, 0, `${label}: every slot's owner matches a brute-force clockwise walk`)
  const empty = model.members.length === 0
  for (const id of ids) {
    const slot = refSlot(model.spec, model.m, id)
    if (r.slotOf(id) !== slot || r.pick(id) !== (empty ? undefined : `v:${want[slot]}`)) bad++
  }
  t.equal(bad, 0, `${label}: slotOf and pick match for ${ids.length} ids`)
  // next(): the distinct owners met walking clockwise from the request's slot, in order.
  for (const id of ids.slice(0, 12)) {
    const slot = refSlot(model.spec, model.m, id)
    const order: string[] = []
    for (let step = 0; step < model.m; step++) {
      const name = model.occupied.get((slot + step) % model.m)
      if (name !== undefined && !order.includes(name)) order.push(name)
    }
    const offered: string[] = []
    r.next(id, (_v, name) => (offered.push(name), false))
    if (offered.join() !== order.join()) bad++
  }
  t.equal(bad, 0, `${label}: next offers the distinct owners in clockwise order`)
  const counts = new Map(model.members.map((x) => [x.name, 0]))
  if (!empty) for (const name of want) counts.set(name!, counts.get(name!)! + 1)
  t.same(r.shares(), counts, `${label}: shares`)
}

t.test('random histories match the oracle', async (t) => {
  const specs: (string | HashSpec)[] = ['ring', 'assignment', 'quadratic', 'linear', customHash([7, 3, 1], [5, 11, 2, 9, 4])]
  const cases = [
    { m: 512, steps: 40 },
    { m: 7, steps: 40 },
    { m: 16, steps: 40 },
    { m: 65536, steps: 8 },
  ]
  const random = rng(42)
  const big = Number.MAX_SAFE_INTEGER
  const ids = [0, 1, 2, 6, 7, 511, 512, 65535, 65536, 123456, 2 ** 32 + 9, 2 ** 45, big - 1, big]
  for (let n = 0; n < 40; n++) ids.push(Math.floor(random() * 1e6), Math.floor(random() * big))
  for (const hash of specs) {
    for (const probe of ['linear', 'quadratic'] as const) {
      for (const { m, steps } of cases) {
        const r = new HashRing<string>({ slots: m, hash, probe })
        const model = new Model(r.hash, m, r.vnodes, probe)
        let serial = 0
        for (let step = 0; step < steps; step++) {
          const label = `${r.hash.name}/${probe}/M=${m} step ${step}`
          if (r.size > 0 && random() < 0.4) {
            const victim = model.members[Math.floor(random() * model.members.length)]!.name
            t.equal(r.remove(victim), true)
            model.remove(victim)
          } else {
            const name = `S${++serial}`
            const expected = model.add(name, false)
            t.equal(r.fits([name]), expected !== 'full', `${label}: fits`)
            if (expected === 'full') {
              const before = owners(r)
              t.throws(() => r.add(name, `v:${name}`), RingFullError, `${label}: full`)
              t.same(owners(r), before, `${label}: a failed add changes nothing`)
            } else {
              r.add(name, `v:${name}`)
              model.add(name)
            }
          }
          checkAgainstModel(t, r, model, ids, label)
        }
      }
    }
  }
})

// ---- a full ring ------------------------------------------------------------------------

t.test('full ring: M=16, K=4, the 5th server has no room', async (t) => {
  const r = ringOf('assignment', 'linear', ['S1', 'S2', 'S3', 'S4'], 16, 4)
  // S1: Φ(1, j) = 26 + j² + 2j = 26, 29, 34, 41 -> mod 16: 10, 13, 2, 9
  t.same(r.slotsOf('S1'), [10, 13, 2, 9])
  // S2: 29 + j² + 2j = 29, 32, 37, 44 -> 13 (S1) -> 14, 0, 5, 12
  t.same(r.slotsOf('S2'), [14, 0, 5, 12])
  t.equal(r.shares().get('S1')! + r.shares().get('S2')! + r.shares().get('S3')! + r.shares().get('S4')!, 16)
  t.notOk(r.fits(['S5']))
  const before = { names: r.names(), owners: owners(r), shares: r.shares() }
  const err = t.throws(() => r.add('S5', 'v')) as RingFullError
  t.ok(err instanceof RingFullError)
  t.match(err, { code: 'RING_FULL', message: /no room/ })
  t.same({ names: r.names(), owners: owners(r), shares: r.shares() }, before, 'nothing changed')
  t.notOk(r.has('S5'))
  r.remove('S3')
  r.add('S5', 'v')
  t.equal(r.serverIdOf('S5'), 3, 'after a removal there is room, and id 3 is free again')
})

t.test('a failure part-way through a member leaves no trace', async (t) => {
  // M=16, K=5, Φ(i, j) = i² + j² + 2j + 25 mod 16, linear probing:
  // S1: 26, 29, 34, 41, 50 -> 10, 13, 2, 9, 2 (own) -> 3
  // S2: 29, 32, 37, 44, 53 -> 13 (S1) -> 14, 0, 5, 12, 5 (own) -> 6
  // S3: 34, 37, 42, 49, 58 -> 2 3 -> 4;  5 6 -> 7;  10 -> 11;  1;  10 11 12 13 14 -> 15
  // Fifteen slots taken, 8 is free. S4: Φ(4, 0) = 41 -> 9, walks 9..15, 0..7 -> 8; then
  // Φ(4, 1) = 44 -> 12 finds nothing: the ring is full at virtual server 1.
  const r = ringOf('assignment', 'linear', ['S1', 'S2', 'S3'], 16, 5)
  t.same(r.slotsOf('S1'), [10, 13, 2, 9, 3])
  t.same(r.slotsOf('S2'), [14, 0, 5, 12, 6])
  t.same(r.slotsOf('S3'), [4, 7, 11, 1, 15])
  const before = owners(r)
  t.equal(before[8], 'S1', 'slot 8 is free: its owner is 9 (S1)')
  t.throws(() => r.add('S4', 'v'), { name: 'RingFullError', message: /virtual server 1 of "S4"/ })
  t.same(owners(r), before, 'slot 8, which vnode 0 took, is free again')
  t.equal(r.size, 3)
  t.ok(Math.max(...r.ownerTable()) < r.size, 'no table entry points past the members')
  r.remove('S1')
  r.add('S4', 'v')
  t.equal(r.serverIdOf('S4'), 1)
  t.same(r.slotsOf('S4'), [10, 13, 2, 9, 3], 'id 1 again: exactly where S1 was')
})

t.test('quadratic probing: a free slot it cannot reach is no room', async (t) => {
  // Φ ≡ 0: every virtual server wants slot 0. Squares mod 16 are only 0, 1, 4, 9.
  const spec = customHash([0, 0, 0], [0, 0, 0, 0, 0])
  const q = ringOf(spec, 'quadratic', ['A'], 16, 4)
  t.same(q.slotsOf('A'), [0, 1, 4, 9], '0, 0+1², 0+2², 0+3²')
  t.notOk(q.fits(['B']), 'twelve slots are free, none reachable')
  t.throws(() => q.add('B', 'v'), RingFullError)
  t.same(q.names(), ['A'])
  const l = ringOf(spec, 'linear', ['A', 'B'], 16, 4)
  t.same(l.slotsOf('B'), [4, 5, 6, 7], 'linear probing reaches every slot')
})

// ---- membership bookkeeping --------------------------------------------------------------

t.test('names, ids, values, duplicates', async (t) => {
  const r = new HashRing<{ pool: number }>({ hash: 'assignment' })
  const pool = { pool: 1 }
  r.add('Server 1', pool)
  r.add('Server 2', { pool: 2 })
  r.add('Server 3', { pool: 3 })
  t.equal(r.get('Server 1'), pool, 'the very payload object')
  t.same(r.names(), ['Server 1', 'Server 2', 'Server 3'])
  t.equal(r.size, 3)
  const before = owners(r)
  t.throws(() => r.add('Server 2', { pool: 9 }), /already exists/)
  t.same(owners(r), before)
  t.equal(r.get('Server 2')!.pool, 2)
  r.remove('Server 2')
  r.add('Server 4', { pool: 4 })
  r.add('Server 5', { pool: 5 })
  t.same(['Server 1', 'Server 3', 'Server 4', 'Server 5'].map((n) => r.serverIdOf(n)), [1, 3, 2, 4], 'smallest free id')
  t.throws(() => (r.slotsOf('Server 1') as number[]).push(1), TypeError, 'slotsOf is read-only')
})

t.test('fits / checkRoom validate a whole batch without changing the ring', async (t) => {
  const r = ringOf('assignment', 'linear', ['S1', 'S2'], 16, 4) // 8 of 16 slots used
  const before = owners(r)
  t.ok(r.fits([]))
  t.ok(r.fits(['a']))
  t.ok(r.fits(['a', 'b']))
  t.notOk(r.fits(['a', 'b', 'c']))
  t.throws(() => r.checkRoom(['a', 'b', 'c']), RingFullError)
  t.doesNotThrow(() => r.checkRoom(['a', 'b']))
  t.throws(() => r.checkRoom(['S1']), /already exists or is repeated/)
  t.throws(() => r.fits(['a', 'a']), /already exists or is repeated/)
  t.same(owners(r), before)
  t.same(r.names(), ['S1', 'S2'])
  r.add('a', 'v')
  r.add('b', 'v')
  t.equal(r.size, 4, 'what fits said would fit did')
})

// ---- failover walk and distribution ----------------------------------------------------------

t.test('next walks clockwise to the next distinct member', async (t) => {
  const r = ringOf('assignment', 'linear', ['S1', 'S2', 'S3'])
  // Occupied: S1 26 29 34 41 ..., S2 30 32 37 ..., S3 35 38 42 ... (see above).
  // id 0: H = 17 -> first occupied clockwise is 26 (S1); then 29 (S1), 30 (S2), 32, 34, 35 (S3).
  t.equal(r.slotOf(0), 17)
  const offered: string[] = []
  const all = (_v: string, name: string) => (offered.push(name), false)
  t.equal(r.next(0, all), undefined, 'nobody accepted')
  t.same(offered, ['S1', 'S2', 'S3'], 'each member offered once, in clockwise order')
  t.equal(r.next(0, () => true), 'value of S1', 'first choice is pick()')
  t.equal(r.pick(0), 'value of S1')
  t.equal(r.next(0, (_v, n) => n !== 'S1'), 'value of S2')
  t.equal(r.next(0, (_v, n) => n === 'S3'), 'value of S3')
  // id 10: H = 100 + 20 + 17 = 137, past the last occupied slot (114): wraps to 26 (S1).
  t.equal(r.slotOf(10), 137)
  t.equal(r.pick(10), 'value of S1')
  t.equal(r.next(10, (_v, n) => n !== 'S1'), 'value of S2', 'wraps, then 29 (S1) is skipped, 30 is S2')
  // id 3: H = 9 + 6 + 17 = 32 -> S2 owns 32 itself; the next distinct is 34 (S1).
  offered.length = 0
  r.next(3, all)
  t.same(offered, ['S2', 'S1', 'S3'])
  const one = ringOf('assignment', 'linear', ['solo'])
  let calls = 0
  t.equal(one.next(0, () => (calls++, false)), undefined)
  t.equal(calls, 1, 'a single member is offered once')
})

t.test('default spreads 10,000 random ids evenly; assignment is exact but skewed', async (t) => {
  const random = rng(7)
  const ids = Array.from({ length: 10000 }, () => 100000 + Math.floor(random() * 900000)) // 6 digits
  const names = ['Server 1', 'Server 2', 'Server 3']
  const count = (r: HashRing<string>) => {
    const c = new Map(names.map((n) => [n, 0]))
    for (const id of ids) {
      const v = r.pick(id)!
      const name = v.slice('value of '.length)
      c.set(name, c.get(name)! + 1)
    }
    return c
  }
  const d = count(ringOf('default', 'linear', names))
  for (const [name, n] of d) t.ok(n < 6000 && n > 1000, `default: ${name} got ${n} of 10000`)

  // The assignment preset: each request lands where the formula says, however uneven.
  const ar = ringOf('assignment', 'linear', names)
  const model = new Model(ar.hash, 512, 9, 'linear')
  for (const n of names) model.add(n)
  const want = new Map(names.map((n) => [n, 0]))
  const table = model.owners()
  for (const id of ids) {
    const owner = table[refSlot(ar.hash, 512, id)]!
    want.set(owner, want.get(owner)! + 1)
  }
  const a = count(ar)
  t.same(a, want, 'assignment: counts equal the oracle\'s')
  const max = Math.max(...a.values())
  t.ok(max > 6000, `assignment is skewed: one server takes ${max} of 10000`)
  t.comment(`default ${JSON.stringify([...d])}; assignment ${JSON.stringify([...a])}`)
})

// ---- weights ---------------------------------------------------------------------------------

t.test('weights on a ring preset: K·w virtual servers, validated, freed on removal', async (t) => {
  const r = new HashRing<string>({ hash: 'assignment', probe: 'linear' })
  r.add('S1', 'v1', 2)
  // Φ(1, j) = 1 + j² + 2j + 25 for j = 0..17; mod 512 the first nine are 26, 29, ..., 106 and
  // j = 9..17 give 125, 146, 169, 194, 221, 250, 281, 314, 349 -- all distinct, no probing.
  t.same(r.slotsOf('S1'), [26, 29, 34, 41, 50, 61, 74, 89, 106, 125, 146, 169, 194, 221, 250, 281, 314, 349])
  r.add('S2', 'v2')
  t.equal(r.slotsOf('S2').length, 9)
  t.equal(r.weightOf('S1'), 2)
  t.equal(r.weightOf('S2'), 1)
  t.equal(r.weightOf('nope'), undefined)
  t.same(r.weights(), [2, 1])
  t.same(r.valueList(), ['v1', 'v2'])
  t.equal(r.totalWeight, 3)
  for (const bad of [0, -1, 1.5, 257, NaN]) {
    t.throws(() => r.add('S3', 'v3', bad), { name: 'RangeError', message: /weight must be an integer from 1 to 256/ }, `weight ${bad}`)
    t.throws(() => r.checkRoom(['S3'], [bad]), RangeError)
  }
  t.same(r.names(), ['S1', 'S2'], 'a bad weight changes nothing')
  r.remove('S1')
  t.same(r.weights(), [1])
  t.equal(r.totalWeight, 1)
  t.equal(owners(r).every((o) => o === 'S2'), true, 'all 18 slots of S1 are free again')
  // Room counts weight: M = 16, K = 4 leaves room for weight 4 in all.
  const small = new HashRing<string>({ hash: 'linear', slots: 16, vnodes: 4 })
  t.ok(small.fits(['a'], [4]))
  t.notOk(small.fits(['a'], [5]))
  t.notOk(small.fits(['a', 'b'], [3, 2]))
  t.ok(small.fits(['a', 'b'], [3, 1]))
  small.add('a', 'a', 3)
  t.throws(() => small.add('b', 'b', 2), RingFullError)
  t.same(small.names(), ['a'])
})

t.test('next: a nested walk (accept walking the ring again) still offers each member once', async (t) => {
  const r = ringOf('assignment', 'linear', ['S1', 'S2', 'S3'])
  const outer: string[] = []
  const inner: string[][] = []
  r.next(0, (_v, name) => {
    outer.push(name)
    const seen: string[] = []
    r.next(10, (_w, n) => (seen.push(n), false))
    inner.push(seen)
    return false
  })
  t.same(outer, ['S1', 'S2', 'S3'])
  for (const seen of inner) t.same(seen, ['S1', 'S2', 'S3'])
  // Weights reach accept as its third argument.
  const w = new HashRing<string>({ hash: 'assignment' })
  w.add('a', 'a', 3)
  w.add('b', 'b')
  const got: [string, number][] = []
  w.next(0, (_v, name, weight) => (got.push([name, weight]), false))
  t.same(got.sort(), [['a', 3], ['b', 1]])
})
