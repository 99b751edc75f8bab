// Typed transport errors: a socket error is classified once, with its code kept (the 502
// message shows it), and the two facts the retry policy reads.
import t from 'tap'
import {
  ConnectError,
  ConnectionLostError,
  OtherSocketError,
  PipelineAbortedError,
  PipelineStalledError,
  PoolClosedError,
  UpstreamError,
  UpstreamProtocolError,
  UpstreamTimeoutError,
  fromSocketError,
  hangUp,
} from '../../src/upstream/errors.js'

const errno = (code: string): NodeJS.ErrnoException => Object.assign(new Error(`${code} 127.0.0.1:1`), { code })

t.test('socket errors: connect failures never sent anything; broken connections may have', async (t) => {
  for (const code of ['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'EADDRNOTAVAIL', 'ENOTFOUND', 'EAI_AGAIN']) {
    const err = fromSocketError(errno(code))
    t.ok(err instanceof ConnectError, `${code} is a ConnectError`)
    t.match(err, { code, requestSent: false, replicaFault: true, message: `${code} 127.0.0.1:1` })
  }
  for (const code of ['ECONNRESET', 'EPIPE', 'ECONNABORTED']) {
    const err = fromSocketError(errno(code))
    t.ok(err instanceof ConnectionLostError, `${code} is a ConnectionLostError`)
    t.match(err, { code, requestSent: true, replicaFault: true })
  }
  const other = fromSocketError(errno('EMFILE'))
  t.ok(other instanceof OtherSocketError)
  t.match(other, { code: 'EMFILE', requestSent: true, replicaFault: false }, "not the replica's fault")
  t.equal(fromSocketError(new Error('no code')).code, '', 'no code: an empty one, the message stands in')
})

t.test('typed errors pass through unchanged; each class has its stable code', async (t) => {
  const timeout = new UpstreamTimeoutError()
  t.equal(fromSocketError(timeout), timeout)
  const cases: Array<[UpstreamError, string, boolean, boolean]> = [
    [timeout, 'ETIMEDOUT_UPSTREAM', true, false],
    [new UpstreamProtocolError('bad status line'), 'HPE_UPSTREAM', true, false],
    [new PoolClosedError(), 'ERR_POOL_CLOSED', false, false],
    [new PipelineAbortedError('x'), 'ERR_PIPELINE_ABORTED', true, false],
    [new PipelineStalledError('x'), 'ERR_PIPELINE_STALLED', true, false],
    [hangUp(), 'ECONNRESET', true, true],
  ]
  for (const [err, code, requestSent, replicaFault] of cases) {
    t.ok(err instanceof UpstreamError && err instanceof Error, `${err.name} is an UpstreamError`)
    t.match(err, { code, requestSent, replicaFault, reused: false }, err.name)
  }
})
