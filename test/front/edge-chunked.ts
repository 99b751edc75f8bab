// Where a chunked body ends, at every split of the input; what is refused.
import t from 'tap'
import { ChunkedScanner } from '../../src/front/edge-chunked.js'

/** Feed `text` in pieces of `size`; the index (in the whole text) just past the body, or -1. */
function endOf(text: string, size: number): { end: number; data: number } {
  const s = new ChunkedScanner()
  const buf = Buffer.from(text, 'latin1')
  for (let i = 0; i < buf.length; i += size) {
    const piece = buf.subarray(i, Math.min(buf.length, i + size))
    const end = s.scan(piece, 0)
    if (end !== -1) return { end: i + end, data: s.dataBytes }
  }
  return { end: -1, data: s.dataBytes }
}

const BODY = '5;ext="v"\r\nhello\r\nA\r\n0123456789\r\n0\r\nX-Trailer: 1\r\n\r\n'

t.test('the body ends where it ends, however it is split', async (t) => {
  for (const size of [1, 2, 3, 5, 7, 64]) {
    t.same(endOf(BODY + 'GET / HTTP/1.1\r\n', size), { end: BODY.length, data: 15 }, `pieces of ${size}`)
  }
  t.same(endOf('5\r\nhel', 2), { end: -1, data: 5 }, 'incomplete')
  t.same(endOf('0\r\n\r\n', 1), { end: 5, data: 0 })
})

t.test('framing errors are refused', async (t) => {
  for (const bad of ['zz\r\n', '0x3\r\nabc\r\n', 'ffffffffffffff\r\n', '3;x\nabc\r\n', '3\r\nabcdef\r\n', '3\r\nabc\n0\r\n\r\n', '3 x\r\nabc\r\n', '0\r\nbad trailer\r\n\r\n', `${'1;'.padEnd(5000, 'x')}\r\n`]) {
    t.throws(() => endOf(bad, 64), { name: 'ChunkedError' }, JSON.stringify(bad.slice(0, 20)))
  }
})
