// The bound on /add's n: decided from numbers before anything is made up or started.
import t from 'tap'
import { assertAddRoom } from '../../src/membership/capacity.js'

const room = { present: 3, maxReplicas: 100, slots: 512, vnodes: 9, usedUnits: 3 }

t.test('n within both bounds passes', async (t) => {
  t.doesNotThrow(() => assertAddRoom(1, room))
  // floor(512 / 9) = 56 units fit, 3 are used.
  t.doesNotThrow(() => assertAddRoom(53, room))
  t.doesNotThrow(() => assertAddRoom(97, { ...room, slots: 65536 }), 'exactly up to --max-replicas')
})

t.test('more than --max-replicas allows is TOO_MANY_REPLICAS', async (t) => {
  const refused = (n: number) => ({ code: 'TOO_MANY_REPLICAS', status: 400, message: `Cannot add ${n} replica(s): 3 present, at most 100 allowed (--max-replicas)` })
  for (const n of [98, 1e5, 1e9, 1e300, Infinity]) t.throws(() => assertAddRoom(n, { ...room, slots: 65536 }), refused(n), `n = ${n}`)
  t.throws(() => assertAddRoom(NaN, room), { code: 'TOO_MANY_REPLICAS' }, 'NaN is refused, not let through by a false comparison')
})

t.test('more than the ring holds is RING_FULL', async (t) => {
  t.throws(() => assertAddRoom(54, room), { code: 'RING_FULL', status: 400, message: 'The ring has no room for 54 more server(s): 512 slots, 9 virtual servers each, 3 present' })
  t.throws(() => assertAddRoom(1, { ...room, slots: 30, vnodes: 8 }), { code: 'RING_FULL' }, '30 slots hold 3 units of 8')
  t.throws(() => assertAddRoom(2, { ...room, usedUnits: 55 }), { code: 'RING_FULL' }, 'weights already on the ring count')
  t.doesNotThrow(() => assertAddRoom(1, { ...room, usedUnits: 55 }))
})
