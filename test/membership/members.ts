// The member table below the balancer: who is a member, who is in the ring, weights and
// health kept while a member is out, and the ring's own error turned into the SPEC's.
import t from 'tap'
import { Members } from '../../src/membership/members.js'
import { Upstream } from '../../src/upstream/upstream.js'

const upstream = (name: string, port = 1): Upstream => new Upstream({ id: name, name, host: '127.0.0.1', port })

t.test('join keeps join order, weights and the ring in step', async (t) => {
  const m = new Members({ slots: 64, vnodes: 4 })
  const a = upstream('a')
  const b = upstream('b')
  m.join('a', a, 1)
  m.join('b', b, 3)
  t.same(m.names(), ['a', 'b'])
  t.equal(m.size, 2)
  t.equal(m.weightOf('b'), 3)
  t.equal(m.ring.weightOf('b'), 3)
  t.ok(m.holds(a))
  t.notOk(m.holds(upstream('a')), 'another transport under the same name is not the member')
  t.equal(m.stateOf(a), 'up')
})

t.test('a member taken out of the ring stays a member and goes back with its weight', async (t) => {
  const m = new Members({ slots: 64, vnodes: 4 })
  const a = upstream('a')
  m.join('a', a, 2)
  m.join('b', upstream('b'), 1)
  const before = m.digest()
  m.setState(a, 'suspect')
  m.takeOut('a')
  t.notOk(m.ring.has('a'))
  t.ok(m.has('a'))
  t.equal(m.stateOf(a), 'suspect')
  t.not(m.digest(), before, 'the table changed')
  t.equal(m.putBack(a), true)
  t.equal(m.ring.weightOf('a'), 2)
  t.equal(m.digest(), before, 'back in, the same table as before')
})

t.test('putBack answers false when the slots were taken meanwhile', async (t) => {
  const m = new Members({ slots: 8, vnodes: 4 })
  const a = upstream('a')
  m.join('a', a, 1)
  m.join('b', upstream('b'), 1)
  m.takeOut('a')
  m.join('c', upstream('c'), 1)
  t.equal(m.putBack(a), false)
  t.notOk(m.ring.has('a'))
})

t.test('forget removes from ring and members and returns the weight it had', async (t) => {
  const m = new Members({ slots: 64, vnodes: 4 })
  m.join('a', upstream('a'), 5)
  t.equal(m.forget('a'), 5)
  t.equal(m.size, 0)
  t.equal(m.ring.size, 0)
  t.equal(m.weightOf('a'), undefined)
})

t.test('swap puts a new transport under the same name and slots', async (t) => {
  const m = new Members({ slots: 64, vnodes: 4 })
  m.join('a', upstream('a', 1), 1)
  m.join('b', upstream('b'), 1)
  const before = m.digest()
  const moved = upstream('a', 2)
  m.swap('a', moved)
  t.equal(m.get('a'), moved)
  t.equal(m.ring.get('a'), moved)
  t.equal(m.digest(), before)
  // A suspect (out of the ring) goes back in at its new address.
  m.takeOut('a')
  const again = upstream('a', 3)
  m.swap('a', again)
  t.equal(m.ring.get('a'), again)
  t.equal(m.digest(), before)
})

t.test('a full ring is the SPEC error RING_FULL, and nothing joins', async (t) => {
  const m = new Members({ slots: 8, vnodes: 4 })
  m.join('a', upstream('a'), 1)
  m.join('b', upstream('b'), 1)
  t.equal(m.fits(['c'], []), false)
  t.throws(() => m.join('c', upstream('c'), 1), { name: 'BalancerError', code: 'RING_FULL' })
  t.same(m.names(), ['a', 'b'])
})
