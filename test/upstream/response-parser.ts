// The upstream response parser on its own: framing, splits at every byte, keep-alive rules.
import t from 'tap'
import { ResponseParser, responseRawHeaders, type ResponseHandler } from '../../src/upstream/response-parser.js'

interface Seen {
  heads: Array<{ status: number; message: string; raw: string[] }>
  body: string
  lasts: number
  chunks: number
}

function parser(): { p: ResponseParser; seen: Seen } {
  const seen: Seen = { heads: [], body: '', lasts: 0, chunks: 0 }
  const handler: ResponseHandler = {
    onHead: (status, message, text) => seen.heads.push({ status, message, raw: responseRawHeaders(text) }),
    onData: (chunk, last) => {
      seen.body += chunk.toString('latin1')
      seen.chunks++
      if (last) seen.lasts++
    },
  }
  return { p: new ResponseParser(handler), seen }
}

/** Feed `text` in pieces of `size` bytes (Infinity: all at once). */
function feed(p: ResponseParser, text: string, size: number): void {
  const buf = Buffer.from(text, 'latin1')
  const step = Number.isFinite(size) ? size : buf.length
  for (let i = 0; i < buf.length; i += step) p.execute(buf.subarray(i, i + step))
}

const SPLITS = [Infinity, 1, 2, 3, 7]

t.test('content-length body, any split', async (t) => {
  for (const size of SPLITS) {
    const { p, seen } = parser()
    p.expect(false)
    feed(p, 'HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 11\r\nX-Two: a\r\nx-two: b\r\n\r\nhello world', size)
    t.equal(seen.heads.length, 1, `split ${size}`)
    t.same(seen.heads[0], { status: 200, message: 'OK', raw: ['Content-Type', 'text/plain', 'Content-Length', '11', 'X-Two', 'a', 'x-two', 'b'] })
    t.equal(seen.body, 'hello world')
    t.equal(seen.lasts, 1)
    t.ok(p.done)
    t.equal(p.keepAlive, true)
  }
})

t.test('head and whole body in one read: one onData call, flagged last', async (t) => {
  const { p, seen } = parser()
  p.expect(false)
  feed(p, 'HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok', Infinity)
  t.equal(seen.chunks, 1)
  t.equal(seen.lasts, 1)
  t.equal(seen.heads[0]!.message, 'Created')
})

t.test('chunked body with extensions and trailers, any split', async (t) => {
  for (const size of SPLITS) {
    const { p, seen } = parser()
    p.expect(false)
    feed(p, 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n1\r\n \r\nA\r\n0123456789\r\n0\r\nX-Trailer: t\r\n\r\n', size)
    t.equal(seen.body, 'hello 0123456789', `split ${size}`)
    t.equal(seen.lasts, 1)
    t.ok(p.done)
    t.equal(p.keepAlive, true)
  }
})

t.test('no body: HEAD, 204, 304, content-length 0', async (t) => {
  for (const [text, head] of [
    ['HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n', true],
    ['HTTP/1.1 204 No Content\r\n\r\n', false],
    ['HTTP/1.1 304 Not Modified\r\nETag: "x"\r\n\r\n', false],
    ['HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n', false],
  ] as const) {
    const { p, seen } = parser()
    p.expect(head)
    feed(p, text, Infinity)
    t.equal(seen.lasts, 1, text.split('\r\n')[0]!)
    t.equal(seen.body, '')
    t.ok(p.done)
    t.equal(p.keepAlive, true)
  }
})

t.test('interim 100 Continue is skipped', async (t) => {
  const { p, seen } = parser()
  p.expect(false)
  feed(p, 'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx', 3)
  t.equal(seen.heads.length, 1)
  t.equal(seen.heads[0]!.status, 200)
  t.equal(seen.body, 'x')
})

t.test('a body delimited by the close ends at EOF and is never reused', async (t) => {
  const { p, seen } = parser()
  p.expect(false)
  feed(p, 'HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nsome ', Infinity)
  feed(p, 'more', Infinity)
  t.equal(seen.lasts, 0)
  t.equal(p.eof(), true, 'EOF completes it')
  t.equal(seen.body, 'some more')
  t.equal(seen.lasts, 1)
  t.equal(p.keepAlive, false)
})

t.test('EOF in the middle of a framed body is a cut-short response', async (t) => {
  const { p } = parser()
  p.expect(false)
  feed(p, 'HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc', Infinity)
  t.equal(p.eof(), false)
  const q = parser()
  q.p.expect(false)
  t.equal(q.p.eof(), false, 'EOF before any byte')
})

t.test('keep-alive rules', async (t) => {
  const cases: Array<[string, boolean]> = [
    ['HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n', false],
    ['HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n', false],
    ['HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n', true],
    // Names and values are read in place: any case, any whitespace around, tokens among others.
    ['HTTP/1.1 200 OK\r\nCONNECTION:  Upgrade, CLOSE\t\r\nContent-Length: 0\r\n\r\n', false],
    ['HTTP/1.1 200 OK\r\nconnection:clOse\r\nContent-Length: 0\r\n\r\n', false],
    ['HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n', true],
    ['HTTP/1.1 200 OK\r\nConnections: close\r\nContent-Length: 0\r\n\r\n', true],
    ['HTTP/1.1 200 OK\r\nX-Connection: close\r\nContent-Length: 0\r\n\r\n', true],
    ['HTTP/1.0 200 OK\r\nconnection: KEEP-ALIVE\r\nContent-Length: 0\r\n\r\n', true],
    ['HTTP/1.0 200 OK\r\nConnection: keep-alive, close\r\nContent-Length: 0\r\n\r\n', false],
  ]
  for (const [text, keepAlive] of cases) {
    const { p } = parser()
    p.expect(false)
    feed(p, text, Infinity)
    t.ok(p.done, text.split('\r\n').slice(0, 2).join(' | '))
    t.equal(p.keepAlive, keepAlive)
    t.equal(p.trailing, false)
  }
  // Bytes after a complete answer: the connection's owner decides (a pipelined answer, or junk).
  const { p } = parser()
  p.expect(false)
  feed(p, 'HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nxEXTRA', Infinity)
  t.ok(p.done)
  t.equal(p.trailing, true, 'trailing bytes are reported')
})

t.test('pipelined answers in one read: expect() during the last body call goes on parsing', async (t) => {
  const bodies: string[] = []
  const heads: number[] = []
  let body = ''
  const queue = [false, true, false]
  const p: ResponseParser = new ResponseParser({
    onHead: (status) => heads.push(status),
    onData: (chunk, last) => {
      body += chunk.toString('latin1')
      if (!last) return
      bodies.push(body)
      body = ''
      const next = queue.shift()
      if (next !== undefined) p.expect(next)
    },
  })
  p.expect(false)
  p.execute(
    Buffer.from(
      'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nab' +
        'HTTP/1.1 201 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\ncde\r\n0\r\n\r\n' +
        'HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n' + // the answer to a HEAD: no body
        'HTTP/1.1 204 No Content\r\n\r\n',
    ),
  )
  t.same(heads, [200, 201, 200, 204])
  t.same(bodies, ['ab', 'cde', '', ''])
  t.ok(p.done)
  t.equal(p.trailing, false)
})

t.test('obsolete line folding joins the previous value', async (t) => {
  const { p, seen } = parser()
  p.expect(false)
  feed(p, 'HTTP/1.1 200 OK\r\nX-Long: a\r\n  b\r\nContent-Length: 0\r\n\r\n', Infinity)
  t.same(seen.heads[0]!.raw, ['X-Long', 'a b', 'Content-Length', '0'])
})

t.test('Content-Length is read in place: whitespace around it, any case of the name, 15 digits at most', async (t) => {
  const bodyOf = (head: string, body: string) => {
    const { p, seen } = parser()
    p.expect(false)
    feed(p, `HTTP/1.1 200 OK\r\n${head}\r\n\r\n${body}`, Infinity)
    return { done: p.done, body: seen.body, trailing: p.trailing }
  }
  t.same(bodyOf('content-LENGTH:\t 3 \xa0', 'abcdef'), { done: true, body: 'abc', trailing: true })
  t.same(bodyOf('Content-Length: 0003', 'abc'), { done: true, body: 'abc', trailing: false })
  t.same(bodyOf('Content-Length: 3\r\nContent-Length: 3', 'abc'), { done: true, body: 'abc', trailing: false }, 'the same length twice is one length')
  t.same(bodyOf('Content-Lengths: 3', 'abc'), { done: false, body: 'abc', trailing: false }, 'another name: read until close')
  t.same(bodyOf('Content-Length: 999999999999999', 'ab'), { done: false, body: 'ab', trailing: false }, '15 digits are a length')
  for (const value of ['', ' ', '1 2', '+1', '1.0', '0x1', '1,1', '9999999999999999', '\x85' + '1']) {
    const { p } = parser()
    p.expect(false)
    t.throws(() => feed(p, `HTTP/1.1 200 OK\r\nContent-Length: ${value}\r\n\r\n`, Infinity), { code: 'HPE_UPSTREAM' }, JSON.stringify(value))
  }
})

t.test('header values lose exactly the whitespace trim() removes (tab, VT, FF, space, no-break space)', async (t) => {
  const { p, seen } = parser()
  p.expect(false)
  const values = [' plain ', '\t\x0b\x0c\xa0x y\xa0 \t', '\x85kept\x85', '   ', '', 'a\tb']
  const head = values.map((v, i) => `X-V${i}:${v}\r\n`).join('')
  feed(p, `HTTP/1.1 200 OK\r\n${head}Content-Length: 0\r\n\r\n`, Infinity)
  t.same(seen.heads[0]!.raw, [...values.flatMap((v, i) => [`X-V${i}`, v.trim()]), 'Content-Length', '0'])
  t.equal(seen.heads[0]!.raw[3], 'x y', 'no-break space and VT/FF trimmed as trim() does')
  t.equal(seen.heads[0]!.raw[5], '\x85kept\x85', 'NEL (0x85) is not whitespace to trim()')
})

t.test('malformed responses throw a protocol error', async (t) => {
  for (const text of [
    'HTTP/2 200 OK\r\n\r\n',
    'HTTP/1.1 2x0 OK\r\n\r\n',
    'garbage\r\n\r\n',
    'HTTP/1.1 200 OK\r\nno colon here\r\n\r\n',
    'HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n',
    'HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n',
    'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n',
    'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nxY',
    // Issue 14: both framings, NUL, bare CR or LF inside a line (response splitting).
    'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n0\r\n\r\n',
    'HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
    'HTTP/1.1 200 OK\r\nX-A: a\x00b\r\nContent-Length: 0\r\n\r\n',
    'HTTP/1.1 200 OK\r\nX-A: a\rSet-Cookie: evil=1\r\nContent-Length: 0\r\n\r\n',
    'HTTP/1.1 200 OK\r\nX-A: a\nSet-Cookie: evil=1\r\nContent-Length: 0\r\n\r\n',
    'HTTP/1.1 200 OK\nContent-Length: 0\r\n\r\n',
    'HTTP/1.1 200 OK\r\n folded: before any header\r\nContent-Length: 0\r\n\r\n',
    'HTTP/1.1 200 OK\r\n: no name\r\nContent-Length: 0\r\n\r\n',
  ]) {
    const { p } = parser()
    p.expect(false)
    t.throws(() => feed(p, text, Infinity), { code: 'HPE_UPSTREAM' }, JSON.stringify(text.slice(0, 40)))
  }
  const { p } = parser()
  p.expect(false)
  t.throws(() => feed(p, 'HTTP/1.1 200 OK\r\n' + 'X: y\r\n'.repeat(20_000), 4096), { code: 'HPE_UPSTREAM' }, 'a head without end is bounded')
})

t.test('abort stops all callbacks', async (t) => {
  const { p, seen } = parser()
  p.expect(false)
  feed(p, 'HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc', Infinity)
  p.abort()
  feed(p, 'defghij', Infinity)
  t.equal(seen.body, 'abc')
  t.equal(seen.lasts, 0)
})
