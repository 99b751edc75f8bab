// HashRing.placements() and restore(): a ring rebuilt from another's placements routes every
// request id exactly as that one does (same digest, same owner and same failover walk), for
// every preset, after random histories of joins and leaves — which replaying the joins in
// order would not promise for the formula presets. An invalid placement changes nothing.
import t from 'tap'
import { HashRing } from '../../src/ring/ring.js'
import { tableDigest } from '../../src/ring/digest.js'
import { rng } from '../fixtures/rng.js'

const PRESETS = ['default', 'ring', 'assignment', 'quadratic', 'linear']

/** A ring after `steps` random joins (weights 1..3) and leaves. */
function history(preset: string, seed: number, steps: number): HashRing<string> {
  const r = rng(seed)
  const ring = new HashRing<string>({ slots: 512, vnodes: 9, hash: preset })
  let next = 0
  for (let s = 0; s < steps; s++) {
    const names = ring.names()
    if (names.length > 2 && r() < 0.4) ring.remove(names[Math.floor(r() * names.length)]!)
    else {
      const name = `replica-${next++}`
      const weight = 1 + Math.floor(r() * 3)
      if (ring.fits([name], [weight])) ring.add(name, name, weight)
    }
  }
  return ring
}

function copyOf(ring: HashRing<string>, preset: string): HashRing<string> {
  const copy = new HashRing<string>({ slots: 512, vnodes: 9, hash: preset })
  copy.restore(ring.placements().map((p) => ({ ...p, value: p.name })))
  return copy
}

for (const preset of PRESETS) {
  t.test(`restore(placements()) routes as the original (${preset})`, async (t) => {
    for (let seed = 1; seed <= 5; seed++) {
      const ring = history(preset, seed, 30)
      const copy = copyOf(ring, preset)
      t.equal(tableDigest(copy), tableDigest(ring), `seed ${seed}: same digest`)
      let differ = 0
      for (let id = 0; id < 5000; id++) {
        if (copy.pick(id) !== ring.pick(id)) differ++
        // The failover walk too: the second replica offered.
        let seen = 0
        const second = (r: HashRing<string>): string | undefined => (seen = 0, r.next(id, () => ++seen === 2))
        if (second(copy) !== second(ring)) differ++
      }
      t.equal(differ, 0, `seed ${seed}: every id picks and fails over alike`)
      t.same(copy.names(), ring.names(), 'same join order')
      // A copy of the copy after more history on a restored ring stays exact.
      copy.remove(copy.names()[0]!)
      copy.add('late', 'late', 1)
      t.equal(tableDigest(copyOf(copy, preset)), tableDigest(copy), `seed ${seed}: a restored ring keeps changing consistently`)
    }
  })
}

t.test('replaying the joins would not do for a formula preset (why restore exists)', async (t) => {
  const ring = history('assignment', 3, 40)
  const replay = new HashRing<string>({ slots: 512, vnodes: 9, hash: 'assignment' })
  for (const p of ring.placements()) replay.add(p.name, p.name, p.weight)
  t.not(tableDigest(replay), tableDigest(ring), 'a replay in join order routes differently')
  t.equal(tableDigest(copyOf(ring, 'assignment')), tableDigest(ring))
})

t.test('an invalid placement is refused whole', async (t) => {
  const ring = history('ring', 7, 10)
  const target = new HashRing<string>({ slots: 512, vnodes: 9, hash: 'ring' })
  target.add('keep', 'keep', 1)
  const before = tableDigest(target)
  const good = ring.placements().map((p) => ({ ...p, value: p.name }))
  const bad = [
    [...good, { ...good[0]!, name: 'twin' }], // a slot taken twice (and a server id)
    good.map((p, i) => (i === 0 ? { ...p, slots: p.slots.slice(1) } : p)), // too few slots
    good.map((p, i) => (i === 0 ? { ...p, slots: [512, ...p.slots.slice(1)] } : p)), // out of range
    [...good, { ...good[0]! }], // a name twice
    good.map((p, i) => (i === 0 ? { ...p, weight: 0 } : p)),
  ]
  for (const entries of bad) {
    t.throws(() => target.restore(entries), RangeError)
    t.equal(tableDigest(target), before, 'nothing changed')
    t.same(target.names(), ['keep'])
  }
  const balanced = new HashRing<string>({ slots: 18, vnodes: 9, hash: 'default' })
  t.throws(() => balanced.restore([{ name: 'a', serverId: 1, weight: 3, slots: [], value: 'a' }]), RangeError, 'the balanced table checks room')
})
