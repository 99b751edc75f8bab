// The requests pipelined behind the one being answered: order kept, a departed client's place
// kept (its answer must still be read), and the stall rescue telling only those still waiting.
import t from 'tap'
import { DROPPED, PipelineQueue } from '../../src/upstream/pipeline-queue.js'
import { PipelineStalledError, type UpstreamError } from '../../src/upstream/errors.js'
import type { ConnectionUser, UpstreamConnection } from '../../src/upstream/request.js'

function user(log: string[], name: string): ConnectionUser {
  return { onStart() {}, onConnected() {}, onHead() {}, onData() {}, onFailure: (err: UpstreamError) => void log.push(`${name} ${err.code}`) }
}
const conn = {} as UpstreamConnection

t.test('answers come in the order written; a dropped one keeps its place', async (t) => {
  const q = new PipelineQueue()
  const log: string[] = []
  const [a, b, c] = [user(log, 'a'), user(log, 'b'), user(log, 'c')]
  q.push(a, false, 1)
  q.push(b, true, 2)
  q.push(c, false, 3)
  q.drop(b)
  t.equal(q.length, 3, 'the dropped one is still in line')
  t.equal(q.oldestWaiting()?.user, a)
  t.equal(q.shift()?.user, a)
  t.equal(q.oldestWaiting()?.user, c, 'the oldest still waiting skips the dropped one')
  const next = q.shift()!
  t.equal(next.user, DROPPED)
  t.equal(next.isHead, true, 'its answer is still parsed as a HEAD answer')
  q.putBack(next)
  t.same(q.takeAll().map((e) => e.seq), [2, 3])
  t.equal(q.length, 0)
})

t.test('the stall rescue fails each waiting request once, and never a dropped one', async (t) => {
  const q = new PipelineQueue()
  const log: string[] = []
  const [a, b, c] = [user(log, 'a'), user(log, 'b'), user(log, 'c')]
  q.push(a, false, 1)
  q.push(b, false, 2)
  q.push(c, false, 3)
  q.drop(b)
  q.failWaiting(new PipelineStalledError('stuck'), conn)
  t.same(log, ['a ERR_PIPELINE_STALLED', 'c ERR_PIPELINE_STALLED'])
  t.equal(q.oldestWaiting(), undefined, 'nobody waits any more')
  q.failWaiting(new PipelineStalledError('again'), conn)
  t.equal(log.length, 2, 'told once')
  t.equal(q.length, 3, 'their answers will still be read off the connection and dropped')
})
