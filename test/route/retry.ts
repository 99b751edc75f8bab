// The retry policy: one decision table for HTTP, upgrades and TCP, read from typed errors.
import t from 'tap'
import { giveUpAnswer, mayRetry } from '../../src/route/retry.js'
import { ConnectError, ConnectionLostError, OtherSocketError, PipelineAbortedError, PoolClosedError, UpstreamProtocolError, UpstreamTimeoutError } from '../../src/upstream/errors.js'

const replayable = { replayable: true, bodySent: false }
const once = { replayable: false, bodySent: false }
const bodyGone = { replayable: true, bodySent: true }

t.test('nothing sent: any method may move on; a body that left never does', async (t) => {
  for (const err of [new ConnectError('ECONNREFUSED', 'refused'), new PoolClosedError()]) {
    t.equal(mayRetry(err, once), true, `${err.code}, POST`)
    t.equal(mayRetry(err, replayable), true, `${err.code}, GET`)
    t.equal(mayRetry(err, bodyGone), false, `${err.code}, body already sent`)
  }
})

t.test('a broken connection: only a request that may be sent twice moves on', async (t) => {
  const reset = new ConnectionLostError('ECONNRESET', 'reset')
  t.equal(mayRetry(reset, replayable), true)
  t.equal(mayRetry(reset, once), false)
  const aborted = new PipelineAbortedError('the answer before it failed')
  t.equal(mayRetry(aborted, replayable), true)
  t.equal(mayRetry(aborted, once), false)
})

t.test('a timeout is never retried; other failures only on a reused connection', async (t) => {
  t.equal(mayRetry(new UpstreamTimeoutError(), replayable), false)
  const late = new UpstreamTimeoutError()
  late.reused = true
  t.equal(mayRetry(late, replayable), false, 'not even on a reused connection: the replica may be working on it')
  const bad = new UpstreamProtocolError('bad status line')
  t.equal(mayRetry(bad, replayable), false, 'a malformed answer on a fresh connection')
  bad.reused = true
  t.equal(mayRetry(bad, replayable), true, 'on a reused keep-alive connection it may just have gone stale')
  t.equal(mayRetry(bad, once), false)
  const odd = new OtherSocketError('EMFILE', 'too many open files')
  odd.reused = true
  t.equal(mayRetry(odd, replayable), true)
})

t.test('the SPEC answer when no replica can take it: 504 after a timeout, else 502 with the code', async (t) => {
  t.match(giveUpAnswer('Server 1', new UpstreamTimeoutError(), 2000), { code: 'UPSTREAM_TIMEOUT', status: 504, message: "Server replica 'Server 1' did not answer within 2000 ms" })
  t.match(giveUpAnswer('Server 1', new ConnectError('ECONNREFUSED', 'x'), 2000), { code: 'UPSTREAM_UNREACHABLE', status: 502, message: "Server replica 'Server 1' could not be reached (ECONNREFUSED)" })
  t.match(giveUpAnswer('a', new OtherSocketError('', 'strange'), 1), { status: 502, message: "Server replica 'a' could not be reached (strange)" })
})
