// The Prometheus text format and the counters under it, without a balancer: escaping, number
// formatting, histogram buckets and the reason mapping, and the quantile estimate /stats uses.
import t from 'tap'
import { TextWriter, escapeLabelValue, formatValue } from '../../src/observe/exposition.js'
import { DURATION_BUCKETS, ERROR_REASONS, ReplicaStats, reasonIndex } from '../../src/observe/replica-stats.js'
import { quantileMs } from '../../src/observe/sampler.js'
import { parseMetrics } from '../fixtures/observe.js'

t.test('label values are escaped as the format requires', async (t) => {
  t.equal(escapeLabelValue('Server 1'), 'Server 1')
  t.equal(escapeLabelValue('a"b\\c\nd'), 'a\\"b\\\\c\\nd')
  const w = new TextWriter().family('x_total', 'counter', 'help with \\ and\nnewline').sample('x_total', 3, 'replica', 'we"ird\\ name\n')
  const text = w.text()
  t.equal(text, '# HELP x_total help with \\\\ and\\nnewline\n# TYPE x_total counter\nx_total{replica="we\\"ird\\\\ name\\n"} 3\n')
  t.same(parseMetrics(text), [{ name: 'x_total', labels: { replica: 'we"ird\\ name\n' }, value: 3 }], 'a parser gets the name back')
})

t.test('numbers', async (t) => {
  t.equal(formatValue(0), '0')
  t.equal(formatValue(12345678), '12345678')
  t.equal(formatValue(0.25), '0.25')
  t.equal(formatValue(Infinity), '+Inf')
  t.equal(formatValue(-Infinity), '-Inf')
  t.equal(formatValue(NaN), 'NaN')
})

t.test('answers land in their status class and bucket', async (t) => {
  const s = new ReplicaStats('r')
  s.answered(200, 0.2) // <= 0.5 ms
  s.answered(204, 0.5) // on the bound: that bucket (le is inclusive)
  s.answered(301, 0.6)
  s.answered(404, 30)
  s.answered(503, 20_000) // above 10 s: +Inf only
  t.same(Array.from(s.requests), [0, 2, 1, 1, 1])
  t.equal(s.total, 5)
  t.equal(s.buckets[0], 2)
  t.equal(s.buckets[1], 1, '0.6 ms <= 1 ms')
  t.equal(s.buckets[DURATION_BUCKETS.indexOf(0.05)], 1, '30 ms <= 50 ms')
  t.equal(s.buckets[DURATION_BUCKETS.length], 1, '+Inf')
  t.equal(s.buckets.reduce((a, b) => a + b, 0), 5)
  t.ok(Math.abs(s.durationSeconds - 20.0313) < 1e-9)
})

t.test('transport error codes map to the documented reasons', async (t) => {
  const reason = (code: string | undefined): string => ERROR_REASONS[reasonIndex(code)]!
  t.equal(reason('ECONNREFUSED'), 'refused')
  t.equal(reason('ECONNRESET'), 'reset')
  t.equal(reason('EPIPE'), 'reset')
  t.equal(reason('ETIMEDOUT_UPSTREAM'), 'timeout')
  t.equal(reason('ETIMEDOUT'), 'timeout')
  t.equal(reason('ERR_PIPELINE_STALLED'), 'stalled')
  t.equal(reason('HPE_UPSTREAM'), 'protocol')
  t.equal(reason('HPE_INVALID_CHUNK_SIZE'), 'protocol')
  t.equal(reason('EHOSTUNREACH'), 'unreachable')
  t.equal(reason('ERR_PIPELINE_ABORTED'), 'aborted')
  t.equal(reason('EMFILE'), 'other')
  t.equal(reason(undefined), 'other')
  const s = new ReplicaStats('r')
  s.failed('ECONNREFUSED')
  s.failed('ECONNRESET')
  s.failed('ECONNRESET')
  t.equal(s.errorTotal, 3)
})

t.test('quantiles interpolate inside a bucket, as histogram_quantile does', async (t) => {
  const b = new Float64Array(DURATION_BUCKETS.length + 1)
  t.equal(quantileMs(b, 0.5), null, 'no observation: no quantile')
  b[0] = 100 // all in (0, 0.5 ms]
  t.equal(quantileMs(b, 0.5), 0.25)
  b[0] = 0
  b[DURATION_BUCKETS.indexOf(0.01)] = 100 // (5 ms, 10 ms]
  t.equal(quantileMs(b, 0.5), 7.5)
  t.ok(Math.abs(quantileMs(b, 0.99)! - 9.95) < 1e-9, 'p99 near the top of the bucket')
  b[DURATION_BUCKETS.length] = 10000 // mostly above 10 s: the top bound is all that is known
  t.equal(quantileMs(b, 0.99), 10_000)
})
