import t from 'tap'
import { HashRing } from '../../src/ring/ring.js'
import { parseHashSpec } from '../../src/ring/hashes.js'
import { tableDigest } from '../../src/ring/digest.js'
import { rng, shuffled } from '../fixtures/rng.js'

// The routing-table digest: equal exactly when two rings send every request id to the same
// owner first. Checked against the rings' own picks over every slot, in random join orders.

function ringOf(preset: string, names: readonly string[], weights: ReadonlyMap<string, number> = new Map()): HashRing<string> {
  const ring = new HashRing<string>({ slots: 512, vnodes: 9, hash: parseHashSpec(preset) })
  for (const name of names) ring.add(name, name, weights.get(name) ?? 1)
  return ring
}

/** Owner of every request id 0..9999, by name. */
function picks(ring: HashRing<string>): string[] {
  return Array.from({ length: 10_000 }, (_, id) => ring.pick(id) ?? '')
}

/** Request ids 0..9999 the two rings send to different owners (counted here: tap's deep compare of 10,000 entries takes seconds). */
function differing(a: HashRing<string>, b: HashRing<string>): number {
  const pa = picks(a)
  return picks(b).filter((owner, id) => owner !== pa[id]).length
}

t.test('default preset: same members in any join order, same digest and same picks', async (t) => {
  const r = rng(18)
  const names = Array.from({ length: 7 }, (_, i) => `replica-${(i * 7919 + 4051).toString(16)}`)
  const weights = new Map([[names[2]!, 3]])
  const first = ringOf('default', names, weights)
  for (let trial = 0; trial < 20; trial++) {
    const other = ringOf('default', shuffled(names, r), weights)
    t.equal(tableDigest(other), tableDigest(first))
    if (trial < 3) t.equal(differing(other, first), 0, 'and the same owner for 10,000 request ids')
  }
  t.match(tableDigest(first), /^[0-9a-f]{16}$/)
})

t.test('a history of joins and leaves ending in the same members gives the same digest', async (t) => {
  const a = ringOf('default', ['a', 'b', 'c'])
  const b = ringOf('default', ['c', 'x', 'a', 'y'])
  b.remove('x')
  b.add('b', 'b')
  b.remove('y')
  t.equal(tableDigest(b), tableDigest(a))
})

t.test('different tables, different digests', async (t) => {
  const base = ringOf('default', ['a', 'b', 'c'])
  t.not(tableDigest(ringOf('default', ['a', 'b', 'd'])), tableDigest(base), 'another member')
  t.not(tableDigest(ringOf('default', ['a', 'b', 'c'], new Map([['a', 2]]))), tableDigest(base), 'another weight')
  t.not(tableDigest(ringOf('ring', ['a', 'b', 'c'])), tableDigest(base), 'another preset')
  const suspect = ringOf('default', ['a', 'b', 'c'])
  suspect.remove('b')
  t.not(tableDigest(suspect), tableDigest(base), 'a member out of the ring')
  t.equal(tableDigest(ringOf('default', [])), tableDigest(ringOf('default', [])), 'empty rings agree')
  t.not(tableDigest(ringOf('default', [])), tableDigest(base))
})

t.test('the formula presets depend on join order (why followers need --hash default)', async (t) => {
  const names = ['Server 1', 'Server 2', 'Server 3']
  const forward = ringOf('assignment', names)
  const backward = ringOf('assignment', [...names].reverse())
  t.not(tableDigest(backward), tableDigest(forward), 'server ids follow join order')
  t.ok(differing(backward, forward) > 0, 'and so do the picks: the digest tells')
})
