// The attempt loop over a real ring with a scripted Trip (pure logic: which replica is tried,
// in what order, what is reported, what the client is told).
import t from 'tap'
import { HashRing } from '../../src/ring/ring.js'
import { Upstream } from '../../src/upstream/upstream.js'
import { AttemptLoop, type Trip } from '../../src/route/attempt.js'
import type { BalancerError } from '../../src/errors.js'
import { ConnectError, ConnectionLostError, PoolClosedError, UpstreamTimeoutError, type UpstreamError } from '../../src/upstream/errors.js'

function ringOf(names: string[]): HashRing<Upstream> {
  const ring = new HashRing<Upstream>({ slots: 64, vnodes: 4 })
  for (const name of names) ring.add(name, new Upstream({ name, host: '127.0.0.1', port: 1, id: name }))
  return ring
}

/** A Trip whose every send fails with the next scripted error (then succeeds: undefined). */
function scripted(loop: AttemptLoop, id: number, errors: Array<UpstreamError | undefined>, facts = { replayable: true, bodySent: false }) {
  const sent: string[] = []
  let answer: BalancerError | undefined
  const trip: Trip = {
    id,
    tried: undefined,
    ...facts,
    send(upstream) {
      sent.push(upstream.name)
      const err = errors.shift()
      if (err !== undefined) loop.failed(trip, upstream, err)
    },
    giveUp(err) {
      answer = err
    },
  }
  return { trip, sent, answer: () => answer }
}

t.test('an empty ring: the SPEC 503 and nothing sent', async (t) => {
  const loop = new AttemptLoop({ ring: ringOf([]), upstreamTimeoutMs: 1000 })
  const s = scripted(loop, 7, [])
  loop.start(s.trip)
  t.same(s.sent, [])
  t.match(s.answer(), { code: 'NO_REPLICAS', status: 503 })
})

t.test('failover walks the ring to each distinct replica once, then gives up with 502', async (t) => {
  const ring = ringOf(['a', 'b', 'c'])
  const failures: string[] = []
  const loop = new AttemptLoop({ ring, upstreamTimeoutMs: 1000, onUpstreamFailure: (u, err) => failures.push(`${u.name}:${err.code}`) })
  const refused = (): ConnectError => new ConnectError('ECONNREFUSED', 'refused')
  const s = scripted(loop, 5, [refused(), refused(), refused()])
  loop.start(s.trip)
  t.equal(s.sent[0], ring.pick(5)!.name, 'the ring owner first')
  t.same([...s.sent].sort(), ['a', 'b', 'c'], 'then every other replica once')
  t.same(failures, s.sent.map((n) => `${n}:ECONNREFUSED`), 'each failure counted against its replica')
  t.match(s.answer(), { code: 'UPSTREAM_UNREACHABLE', status: 502, message: `Server replica '${s.sent[2]}' could not be reached (ECONNREFUSED)` })
})

t.test('the policy decides: a timeout stops at once with 504, a reset moves on only when replayable', async (t) => {
  const ring = ringOf(['a', 'b', 'c'])
  const failures: string[] = []
  const loop = new AttemptLoop({ ring, upstreamTimeoutMs: 1234, onUpstreamFailure: (u) => failures.push(u.name) })
  const slow = scripted(loop, 9, [new UpstreamTimeoutError()])
  loop.start(slow.trip)
  t.equal(slow.sent.length, 1)
  t.match(slow.answer(), { code: 'UPSTREAM_TIMEOUT', status: 504, message: /within 1234 ms/ })
  t.same(failures, [], 'a timeout is not a connection failure')

  const post = scripted(loop, 9, [new ConnectionLostError('ECONNRESET', 'reset')], { replayable: false, bodySent: false })
  loop.start(post.trip)
  t.equal(post.sent.length, 1, 'a POST is not sent twice')
  t.match(post.answer(), { status: 502 })
  const get = scripted(loop, 9, [new ConnectionLostError('ECONNRESET', 'reset')])
  loop.start(get.trip)
  t.equal(get.sent.length, 2, 'a GET goes on to the next replica')
  t.equal(get.answer(), undefined, 'and is answered there')
})

t.test('the first choice may be bounded; failover still walks the ring', async (t) => {
  const ring = ringOf(['a', 'b'])
  const loop = new AttemptLoop({ ring, upstreamTimeoutMs: 1000, choose: () => ring.get('b') })
  const s = scripted(loop, 3, [new PoolClosedError()])
  loop.start(s.trip)
  t.same(s.sent, ['b', 'a'], 'chosen first, then the next untried one')
  t.equal(s.answer(), undefined)
})
