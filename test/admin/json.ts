// Admin JSON bodies: nesting measured on the text (iteratively) before JSON.parse; clear 400s.
import t from 'tap'
import { jsonDepth, parseJsonBody, MAX_JSON_DEPTH } from '../../src/admin/json.js'
import { BalancerError } from '../../src/errors.js'

t.test('jsonDepth counts arrays and objects outside strings', async (t) => {
  t.equal(jsonDepth('1'), 0)
  t.equal(jsonDepth('{"n": 1}'), 1)
  t.equal(jsonDepth('{"n": 1, "hostnames": ["a", "b"]}'), 2)
  t.equal(jsonDepth('[[1], [[2]], 3]'), 3)
  t.equal(jsonDepth('{"a": "[[[[{{{{"}'), 1, 'brackets inside strings do not count')
  t.equal(jsonDepth('{"a": "\\"[[[[", "b": ["\\\\"]}'), 2, 'escaped quotes and backslashes are followed')
  t.equal(jsonDepth('[[[', 2), 3, 'stops once past the limit')
  t.equal(jsonDepth(']]]{'), 1, 'malformed text is measured as far as it goes')
  t.equal(jsonDepth('"unterminated [[['), 0)
})

t.test('jsonDepth is iterative: a million levels do not overflow the stack', async (t) => {
  const deep = '['.repeat(1_000_000) + ']'.repeat(1_000_000)
  t.equal(jsonDepth(deep), 1_000_000)
  t.equal(jsonDepth(deep, MAX_JSON_DEPTH), MAX_JSON_DEPTH + 1)
})

t.test('parseJsonBody refuses empty, too deep and malformed bodies with INVALID_JSON', async (t) => {
  t.same(parseJsonBody('{"n": 2, "hostnames": ["a"]}'), { n: 2, hostnames: ['a'] })
  const nested = (depth: number): string => `{"n": ${'['.repeat(depth - 1)}1${']'.repeat(depth - 1)}}`
  t.doesNotThrow(() => parseJsonBody(nested(MAX_JSON_DEPTH)), `${MAX_JSON_DEPTH} levels are fine`)
  const tooDeep = { code: 'INVALID_JSON', status: 400, message: `Invalid JSON payload: nested more than ${MAX_JSON_DEPTH} levels deep` }
  t.throws(() => parseJsonBody(nested(MAX_JSON_DEPTH + 1)), tooDeep)
  t.throws(() => parseJsonBody(nested(10_000)), tooDeep, 'the adversarial run: 10,000 levels in n')
  t.throws(() => parseJsonBody(`{"n": 1, "weights": ${'['.repeat(10_000)}${']'.repeat(10_000)}}`), tooDeep, 'and in weights')
  t.throws(() => parseJsonBody(''), { code: 'INVALID_JSON', message: 'Invalid JSON payload: the body is empty' })
  t.throws(() => parseJsonBody(' \n\t'), { code: 'INVALID_JSON', message: 'Invalid JSON payload: the body is empty' })
  t.throws(() => parseJsonBody('{"n":'), BalancerError)
})

t.test('parse errors quote the input only escaped and bounded', async (t) => {
  const err = t.throws(() => parseJsonBody(`x\u001b[2J${'y'.repeat(100_000)}`)) as BalancerError
  t.equal(err.code, 'INVALID_JSON')
  t.match(err.message, /^Invalid JSON payload: /)
  t.notMatch(err.message, /[\u0000-\u001f]/, 'no raw control character reaches the answer')
  t.ok(err.message.length <= 230, `bounded (${err.message.length} characters)`)
})
