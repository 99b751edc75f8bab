import t from 'tap'
import { RingFullError } from '../../src/ring/errors.js'
import { HashRing } from '../../src/ring/ring.js'
import { SlotPermutation, buildTable, memberKey } from '../../src/ring/table.js'
import { fmix32, fnv1a32, mixId } from '../../src/ring/mix.js'
import { rng, shuffled } from '../fixtures/rng.js'

// The `default` preset: a capacity-capped rendezvous table. The two promises are
// checked here from the owner table alone -- fair shares and moved slots are counted by this
// file, never taken from the ring's own statistics -- over many random hostname sets.

/** A hostname in one of the shapes a balancer sees: `Server 12`, `replica-3f9a2c`, free-form. */
function randomName(r: () => number): string {
  const shape = r()
  if (shape < 0.3) return `Server ${1 + Math.floor(r() * 100_000)}`
  if (shape < 0.6) return `replica-${Math.floor(r() * 0x1000000).toString(16).padStart(6, '0')}`
  const chars = 'abcdefghijklmnopqrstuvwxyz0123456789-'
  let name = 'abcdefghijklmnopqrstuvwxyz'[Math.floor(r() * 26)]!
  for (let i = 2 + Math.floor(r() * 14); i > 0; i--) name += chars[Math.floor(r() * chars.length)]!
  return name + 'x'
}

function randomSet(r: () => number, size: number): string[] {
  const set = new Set<string>()
  while (set.size < size) set.add(randomName(r))
  return [...set]
}

/** Owner of every slot, by name, from the ring's table. */
function owners(ring: HashRing<unknown>): string[] {
  const names = ring.names()
  return Array.from(ring.ownerTable(), (i) => names[i]!)
}

function tableOf(names: readonly string[], slots = 512, weights: readonly number[] = []): string[] {
  const ring = new HashRing<null>({ slots })
  names.forEach((name, k) => ring.add(name, null, weights[k] ?? 1))
  return owners(ring)
}

function countOf(table: readonly string[]): Map<string, number> {
  const counts = new Map<string, number>()
  for (const owner of table) counts.set(owner, (counts.get(owner) ?? 0) + 1)
  return counts
}

function moved(a: readonly string[], b: readonly string[]): number {
  let n = 0
  for (let s = 0; s < a.length; s++) if (a[s] !== b[s]) n++
  return n
}

const SETS = 100

t.test('the busiest server owns at most 1.05x its fair share, N = 2..20, M = 512', async (t) => {
  const r = rng(2024)
  let worst = 0
  for (let n = 2; n <= 20; n++) {
    const fair = 512 / n
    let busiest = 0
    const sets = [Array.from({ length: n }, (_, i) => `Server ${i + 1}`), ...Array.from({ length: SETS }, () => randomSet(r, n))]
    for (const names of sets) {
      const table = tableOf(names)
      const counts = countOf(table)
      if (table.some((o) => !names.includes(o))) t.fail(`N=${n}: a slot owned by a non-member`)
      if (counts.size !== n) t.fail(`N=${n}: ${n - counts.size} members own nothing`)
      busiest = Math.max(busiest, ...counts.values())
    }
    worst = Math.max(worst, busiest / fair)
    t.ok(busiest <= 1.05 * fair, `N=${n}: busiest owns ${busiest} slots, fair share ${fair.toFixed(1)} (${(busiest / fair).toFixed(3)}x) over ${sets.length} sets`)
  }
  t.comment(`worst busiest/fair: ${worst.toFixed(3)}`)
})

t.test('adding or removing one server moves at most 1.5x the ideal on average, never 2x', async (t) => {
  const r = rng(77)
  for (let n = 2; n <= 20; n++) {
    let addSum = 0
    let addMax = 0
    let rmSum = 0
    let rmMax = 0
    for (let k = 0; k < SETS; k++) {
      const all = randomSet(r, n + 1)
      const before = tableOf(all.slice(0, n))
      const after = tableOf(all)
      // Ideal on add: the newcomer's fair share, M/(N+1).
      const add = moved(before, after) / (512 / (n + 1))
      addSum += add
      addMax = Math.max(addMax, add)
      // Remove one of the N+1 again (a random one, not necessarily the newest). Ideal: the
      // slots it owned.
      const victim = all[Math.floor(r() * all.length)]!
      const own = after.filter((o) => o === victim).length
      const rest = tableOf(all.filter((x) => x !== victim))
      const rm = moved(after, rest) / own
      rmSum += rm
      rmMax = Math.max(rmMax, rm)
    }
    const addMean = addSum / SETS
    const rmMean = rmSum / SETS
    const line = `N=${n}: add ${addMean.toFixed(2)}x mean, ${addMax.toFixed(2)}x worst; remove ${rmMean.toFixed(2)}x mean, ${rmMax.toFixed(2)}x worst`
    t.ok(addMean <= 1.5 && rmMean <= 1.5 && addMax <= 2 && rmMax <= 2, line)
  }
})

t.test('the same replicas build the same table in any join order, whatever came and went', async (t) => {
  const r = rng(5)
  for (const n of [2, 3, 7, 20]) {
    const names = randomSet(r, n)
    const want = tableOf(names)
    for (let k = 0; k < 5; k++) t.same(tableOf(shuffled(names, r)), want, `N=${n}: shuffled join order ${k}`)
    // A history: extra members joined and left, members left and came back.
    const ring = new HashRing<null>()
    const extra = randomSet(r, 4).filter((x) => !names.includes(x))
    for (const name of [...extra.slice(0, 2), ...names.slice(0, 1), ...extra.slice(2), ...names.slice(1)]) ring.add(name, null)
    for (const name of extra) ring.remove(name)
    ring.remove(names[0]!)
    ring.add(names[0]!, null)
    t.same(owners(ring), want, `N=${n}: after a history`)
  }
  // Weights are part of the set: same names, different weight -> a different table.
  t.not(tableOf(['a', 'b', 'c'], 512, [1, 2, 1]).join(), tableOf(['a', 'b', 'c']).join())
  t.same(tableOf(['c', 'b', 'a'], 512, [1, 2, 1]), tableOf(['a', 'b', 'c'], 512, [1, 2, 1]))
})

t.test('weights: a replica of weight 2 owns about twice the slots', async (t) => {
  const r = rng(11)
  for (const n of [2, 4, 9]) {
    for (let k = 0; k < 20; k++) {
      const names = randomSet(r, n)
      const weights = names.map((_, i) => (i === 0 ? 2 : 1))
      const counts = countOf(tableOf(names, 512, weights))
      const heavy = counts.get(names[0]!)!
      const total = n + 1
      for (const [name, c] of counts) {
        const fair = (512 * (name === names[0] ? 2 : 1)) / total
        if (c > Math.max(Math.ceil(fair), 1.05 * fair)) t.fail(`N=${n}: ${name} owns ${c}, fair ${fair.toFixed(1)}`)
      }
      const light = (512 - heavy) / (n - 1)
      if (heavy / light < 1.8 || heavy / light > 2.2) t.fail(`N=${n}: weight 2 owns ${heavy}, weight 1 ${light.toFixed(1)} on average`)
    }
    t.pass(`N=${n}: weight 2 owns 1.8-2.2x a weight-1 replica, everyone within 1.05x of the weighted fair share (20 sets)`)
  }
  const counts = countOf(tableOf(['a', 'b', 'c'], 512, [3, 1, 1]))
  t.ok(counts.get('a')! >= 300 && counts.get('a')! <= 323, `weight 3 of 5: ${counts.get('a')} of 512 (fair 307.2)`)
})

t.test('lookups, failover walk, shares and slotsOf read the table', async (t) => {
  const ring = new HashRing<string>()
  for (const name of ['Server 1', 'Server 2', 'Server 3', 'Server 4']) ring.add(name, `v:${name}`)
  const own = owners(ring)
  const random = rng(3)
  for (let k = 0; k < 200; k++) {
    const id = Math.floor(random() * 1e6)
    const slot = mixId(id) % 512
    t.equal(ring.slotOf(id), slot)
    if (ring.pick(id) !== `v:${own[slot]}`) t.fail(`pick(${id})`)
    // next(): distinct owners met walking the table clockwise from the slot.
    const order: string[] = []
    for (let step = 0; step < 512; step++) {
      const name = own[(slot + step) % 512]!
      if (!order.includes(name)) order.push(name)
    }
    const offered: string[] = []
    ring.next(id, (_v, name) => (offered.push(name), false))
    if (offered.join() !== order.join()) t.fail(`next(${id}): ${offered} vs ${order}`)
  }
  t.pass('pick and next agree with the table for 200 ids')
  const counts = countOf(own)
  t.same(ring.shares(), new Map(ring.names().map((n) => [n, counts.get(n)!])))
  const s2 = ring.slotsOf('Server 2')
  t.same(s2, own.flatMap((o, s) => (o === 'Server 2' ? [s] : [])), 'slotsOf: the owned slots, ascending')
  t.equal(ring.next(5, (_v, name) => name === 'Server 3'), 'v:Server 3')
})

t.test('room: each unit of weight reserves K slots', async (t) => {
  const ring = new HashRing<null>() // M = 512, K = 9: 56 units
  for (let i = 1; i <= 56; i++) ring.add(`S${i}`, null)
  t.notOk(ring.fits(['S57']))
  const before = owners(ring)
  t.throws(() => ring.add('S57', null), { name: 'RingFullError', message: /no room/ })
  t.same(owners(ring), before, 'a full ring is unchanged')
  t.equal(Math.max(...countOf(before).values()), 10, '56 members: 512/56 = 9.1 each, at most 10')
  ring.remove('S1')
  ring.remove('S2')
  t.ok(ring.fits(['x'], [2]))
  t.notOk(ring.fits(['x'], [3]))
  t.throws(() => ring.checkRoom(['x', 'y'], [1, 2]), RingFullError)
  ring.add('x', null, 2)
  t.equal(ring.size, 55)
})

t.test('other table sizes: M = 1, 7, 1000 and 65536', async (t) => {
  const one = new HashRing<string>({ slots: 1 })
  one.add('a', 'a')
  t.equal(one.pick(123), 'a')
  t.notOk(one.fits(['b']), 'M = 1, K = 1: one member')
  for (const m of [7, 1000, 65536]) {
    const ring = new HashRing<null>({ slots: m, vnodes: 1 })
    const names = ['alpha', 'beta', 'gamma']
    for (const name of names) ring.add(name, null)
    const counts = countOf(owners(ring))
    const fair = m / 3
    t.same([...counts.keys()].sort(), names, `M=${m}: everyone owns slots`)
    t.ok(Math.max(...counts.values()) <= Math.max(Math.ceil(fair), 1.05 * fair), `M=${m}: ${[...counts.values()]}`)
  }
})

// ---- the algorithm against a naive restatement ----------------------------------------------
// The same four steps written the plain way (all pairs sorted, no shortcuts), so a refactor of
// table.ts that changes any table is caught.

function referenceTable(members: { name: string; weight: number }[], m: number): string[] {
  const sorted = [...members].sort((a, b) => (a.name < b.name ? -1 : 1))
  const W = sorted.reduce((s, x) => s + x.weight, 0)
  const key = (name: string) => fmix32(fnv1a32(name))
  const perm = sorted.map((x) => new SlotPermutation(key(x.name), m))
  const score = (c: number, s: number) => Math.log((perm[c]!.at(s) + 0.5) / m) / sorted[c]!.weight
  const tie = (c: number, s: number) => fmix32((key(sorted[c]!.name) ^ Math.imul(s + 1, 0x9e3779b1)) >>> 0)
  const caps = sorted.map((x) => {
    const fair = (m * x.weight) / W
    const hi = Math.max(Math.ceil(fair), Math.floor((105 * m * x.weight) / (100 * W)))
    return Math.min(hi, Math.floor(fair + 0.6 + fmix32((key(x.name) ^ 0x3c6ef372) >>> 0) / 4294967296))
  })
  if (caps.reduce((a, b) => a + b, 0) < m) throw new Error('precondition: the caps need no top-up')
  const owner: number[] = []
  for (let s = 0; s < m; s++) {
    const ranked = sorted.map((_, c) => c).sort((a, b) => score(b, s) - score(a, s) || tie(b, s) - tie(a, s) || a - b)
    owner.push(ranked[0]!)
  }
  const count = sorted.map((_, c) => owner.filter((o) => o === c).length)
  const shed: number[] = []
  sorted.forEach((_, c) => {
    const mine = owner.flatMap((o, s) => (o === c ? [s] : [])).sort((a, b) => score(c, a) - score(c, b))
    for (const s of mine.slice(0, Math.max(0, count[c]! - caps[c]!))) {
      owner[s] = -1
      shed.push(s)
      count[c]!--
    }
  })
  const pairs = shed.flatMap((s) => sorted.flatMap((_, c) => (count[c]! < caps[c]! ? [{ s, c }] : [])))
  pairs.sort((p, q) => score(q.c, q.s) - score(p.c, p.s) || tie(q.c, q.s) - tie(p.c, p.s) || p.c - q.c || p.s - q.s)
  for (const { s, c } of pairs) {
    if (owner[s] === -1 && count[c]! < caps[c]!) {
      owner[s] = c
      count[c]!++
    }
  }
  return owner.map((c) => sorted[c]!.name)
}

t.test('buildTable equals the naive restatement', async (t) => {
  const r = rng(99)
  const cases: { members: { name: string; weight: number }[]; m: number }[] = [
    { members: [{ name: 'Server 1', weight: 1 }, { name: 'Server 2', weight: 1 }, { name: 'Server 3', weight: 1 }], m: 512 },
    { members: randomSet(r, 7).map((name, i) => ({ name, weight: 1 + (i % 3) })), m: 512 },
    { members: randomSet(r, 12).map((name) => ({ name, weight: 1 })), m: 200 },
    { members: randomSet(r, 5).map((name) => ({ name, weight: 1 })), m: 37 },
  ]
  for (const { members, m } of cases) {
    const want = referenceTable(members, m)
    const out = new Uint16Array(m)
    buildTable(members, out)
    t.same(Array.from(out, (i) => members[i]!.name), want, `${members.length} members, M=${m}`)
  }
})

t.test('SlotPermutation is a bijection of [0, M), different per key', async (t) => {
  for (const m of [1, 2, 3, 7, 512, 1000, 65536]) {
    for (const name of ['Server 1', 'Server 2']) {
      const p = new SlotPermutation(memberKey(name), m)
      const seen = new Uint8Array(m)
      for (let x = 0; x < m; x++) seen[p.at(x)]!++
      if (!seen.every((c) => c === 1)) t.fail(`M=${m} ${name}: not a permutation`)
    }
  }
  t.pass('every image hit exactly once for M = 1, 2, 3, 7, 512, 1000, 65536')
  const a = new SlotPermutation(memberKey('Server 1'), 512)
  const b = new SlotPermutation(memberKey('Server 2'), 512)
  let same = 0
  for (let x = 0; x < 512; x++) if (a.at(x) === b.at(x)) same++
  t.ok(same < 6, `two keys agree on ${same} of 512 slots (about 1 expected)`)
  // Ranks of neighbouring slots are unrelated: the top-ranked eighth is spread over the table.
  const top = Array.from({ length: 512 }, (_, s) => s).filter((s) => a.at(s) >= 448)
  const halves = [top.filter((s) => s < 256).length, top.filter((s) => s >= 256).length]
  t.ok(halves[0]! > 16 && halves[1]! > 16, `top ranks in each half of the table: ${halves}`)
})
