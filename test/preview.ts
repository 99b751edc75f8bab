// Previews of client input in error messages: bounded, escaped, never recursive.
import t from 'tap'
import { clip, preview, quote, PREVIEW_CHARS } from '../src/preview.js'

t.test('clip escapes control characters and clips long text', async (t) => {
  t.equal(clip('plain name'), 'plain name')
  t.equal(clip('a\nb\r\tc\u0000d\u007fe\u001b[31m'), 'a\\nb\\r\\tc\\u0000d\\u007fe\\u001b[31m', 'no raw control character survives')
  t.equal(clip('line\u2028sep'), 'line\\u2028sep')
  t.equal(clip('say "hi"\\'), 'say "hi"\\', 'quotes and backslashes are left alone outside JSON quoting')
  t.equal(clip('x'.repeat(PREVIEW_CHARS)), 'x'.repeat(PREVIEW_CHARS), 'the longest valid hostname and one more fit whole')
  t.equal(clip('x'.repeat(100_000)), `${'x'.repeat(PREVIEW_CHARS)}…`)
  t.equal(clip('abcdef', 3), 'abc…')
  t.equal(clip('ümlaut ok'), 'ümlaut ok', 'non-ASCII letters are kept')
})

t.test('clip never splits a surrogate pair and escapes lone ones', async (t) => {
  const emoji = '\u{1F600}'
  t.equal(clip(`ab${emoji}`, 3), 'ab…', 'the pair is dropped whole at the cut')
  t.equal(clip(`ab${emoji}`, 4), `ab${emoji}`)
  t.equal(clip('a\ud800b'), 'a\\ud800b')
  t.equal(clip('a\udc00b'), 'a\\udc00b')
})

t.test('quote makes a JSON string literal', async (t) => {
  t.equal(quote('say "hi"\\'), '"say \\"hi\\"\\\\"')
  t.same(JSON.parse(quote('a\nb"c')), 'a\nb"c', 'short values round-trip through JSON')
  t.equal(quote('y'.repeat(1000)), `"${'y'.repeat(PREVIEW_CHARS)}…"`)
})

t.test('preview shows one level of a JSON value, bounded', async (t) => {
  t.equal(preview(undefined), 'nothing')
  t.equal(preview(null), 'null')
  t.equal(preview(2), '2')
  t.equal(preview(1.5), '1.5')
  t.equal(preview(JSON.parse('1e400')), 'Infinity', 'what JSON.parse makes of 1e400 is named, not null')
  t.equal(preview(JSON.parse('-1e400')), '-Infinity')
  t.equal(preview(1e300), '1e+300')
  t.equal(preview(true), 'true')
  t.equal(preview('2'), '"2"')
  t.equal(preview({ a: 1 }), '{…}')
  t.equal(preview([0]), '[0]')
  t.equal(preview(['2', null, [1], { a: 1 }]), '["2",null,[…],{…}]')
  t.equal(preview([1, 2, 3, 4, 5, 6, 7]), '[1,2,3,4,5,… 7 items]')
  // A value nested 100,000 deep: JSON.stringify overflows the stack on it, preview does not look.
  let deep: unknown = 1
  for (let i = 0; i < 100_000; i++) deep = [deep]
  t.throws(() => JSON.stringify(deep), RangeError, 'the hazard is real')
  t.equal(preview(deep), '[[…]]')
  t.ok(preview(['z'.repeat(1_000_000), 'z'.repeat(1_000_000)]).length < 200, 'long strings inside arrays are clipped')
})
