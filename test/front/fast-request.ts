// The fast front's request reader on its own: what it takes (plain, complete HTTP/1.1 GET and
// HEAD heads) and everything it must leave to node:http (returns undefined).
import t from 'tap'
import type { Socket } from 'node:net'
import { MAX_FAST_HEAD, parseFastRequest } from '../../src/front/fast-request.js'

// The parser only stores the socket on the request (for the key extractor's remoteAddress).
const socket = { remoteAddress: '192.0.2.7' } as Socket

/** Bytes of `text`, one byte per char code (so '\xe9' is the single byte 0xe9). */
function bytes(text: string): Buffer {
  return Buffer.from(text, 'latin1')
}

function parse(text: string | Buffer, start = 0, unique: Iterable<string> = []) {
  return parseFastRequest(typeof text === 'string' ? bytes(text) : text, start, socket, new Set(unique))
}

/** A GET for `/` with Host and the given extra header lines (each without its CRLF). */
function get(...lines: string[]): string {
  return `GET / HTTP/1.1\r\nHost: x\r\n${lines.map((l) => `${l}\r\n`).join('')}\r\n`
}

t.test('a plain GET: method, url with query, headers as received and lower-cased', async (t) => {
  const text = 'GET /a/b?x=1&y=%20z HTTP/1.1\r\nHost: example.com:8080\r\nUser-Agent: curl/8\r\nX-Mixed-CASE: Val Ue\r\nAccept: */*\r\n\r\n'
  const p = parse(text)
  if (!p) return t.fail('not parsed')
  const r = p.request
  t.equal(r.method, 'GET')
  t.equal(r.url, '/a/b?x=1&y=%20z')
  t.same(r.rawHeaders, ['Host', 'example.com:8080', 'User-Agent', 'curl/8', 'X-Mixed-CASE', 'Val Ue', 'Accept', '*/*'])
  t.same({ ...r.headers }, { host: 'example.com:8080', 'user-agent': 'curl/8', 'x-mixed-case': 'Val Ue', accept: '*/*' })
  t.equal(r.close, false)
  t.equal(r.socket, socket, 'the socket is the one given')
  t.equal(p.end, Buffer.byteLength(text))
})

t.test('a plain HEAD', async (t) => {
  const p = parse('HEAD /status HTTP/1.1\r\nhost: x\r\n\r\n')
  if (!p) return t.fail('not parsed')
  t.equal(p.request.method, 'HEAD')
  t.equal(p.request.url, '/status')
  t.same(p.request.rawHeaders, ['host', 'x'])
  t.equal(p.request.headers.host, 'x')
})

t.test('every request-target character llhttp accepts everywhere', async (t) => {
  const url = "/AZaz09-._~:/?#[]@!$&'()*+,;=%41"
  t.equal(parse(`GET ${url} HTTP/1.1\r\nHost: x\r\n\r\n`)?.request.url, url)
})

t.test('Connection: close, in any position and case', async (t) => {
  const closes = (line?: string) => parse(line === undefined ? get() : get(line))?.request.close
  t.equal(closes(), false, 'no Connection header')
  t.equal(closes('Connection: close'), true)
  t.equal(closes('Connection: Close'), true)
  t.equal(closes('connection: CLOSE'), true)
  t.equal(closes('Connection: keep-alive, close'), true)
  t.equal(closes('Connection: keep-alive,close'), true)
  t.equal(closes('Connection: close, x-thing'), true)
  t.equal(closes('Connection: keep-alive'), false)
  t.equal(closes('Connection: closed-thing'), false)
  t.equal(closes('Connection: not-close'), false)
  t.equal(closes('Connection: keep-alive, closer'), false)
})

t.test('OWS around values is trimmed, inner whitespace kept', async (t) => {
  const p = parse(get('X-A: \t v \t ', 'X-B:v', 'X-C:   ', 'X-D: a  \tb ', 'X-E:'))
  if (!p) return t.fail('not parsed')
  t.same(p.request.rawHeaders.slice(2), ['X-A', 'v', 'X-B', 'v', 'X-C', '', 'X-D', 'a  \tb', 'X-E', ''])
  t.equal(p.request.headers['x-a'], 'v')
  t.equal(p.request.headers['x-c'], '')
  t.equal(p.request.headers['x-d'], 'a  \tb')
})

t.test('pipelined requests: end points at the next one', async (t) => {
  const first = 'GET /one HTTP/1.1\r\nHost: x\r\n\r\n'
  const second = 'HEAD /two?q HTTP/1.1\r\nHost: y\r\nConnection: close\r\n\r\n'
  const partial = 'GET /three HTTP/1.1\r\nHost: z\r\n'
  const buf = bytes(first + second + partial)
  const a = parse(buf)
  if (!a) return t.fail('first not parsed')
  t.equal(a.end, first.length)
  t.equal(a.request.url, '/one')
  t.equal(a.request.close, false)
  const b = parse(buf, a.end)
  if (!b) return t.fail('second not parsed')
  t.equal(b.end, first.length + second.length)
  t.equal(b.request.method, 'HEAD')
  t.equal(b.request.url, '/two?q')
  t.equal(b.request.headers.host, 'y')
  t.equal(b.request.close, true)
  t.equal(parse(buf, b.end), undefined, 'the third is not complete yet')
  t.equal(parse(bytes(first + second + partial + '\r\n'), b.end)?.request.url, '/three', 'until its blank line arrives')
})

t.test('bytes before start are not looked at', async (t) => {
  const p = parse(bytes('garbage\r\n\r\nGET /x HTTP/1.1\r\nHost: x\r\n\r\n'), 11)
  t.equal(p?.request.url, '/x')
  t.equal(p?.end, 11 + 'GET /x HTTP/1.1\r\nHost: x\r\n\r\n'.length)
})

t.test('a repeated header: unique names leave it to node:http, others keep the first value', async (t) => {
  const twice = get('X-User: a', 'x-user: b')
  t.equal(parse(twice, 0, ['x-user']), undefined, 'x-user is in the unique set')
  const p = parse(twice, 0, ['x-other'])
  if (!p) return t.fail('not parsed')
  t.equal(p.request.headers['x-user'], 'a', 'first value kept')
  t.same(p.request.rawHeaders, ['Host', 'x', 'X-User', 'a', 'x-user', 'b'], 'both stay in rawHeaders')
  t.equal(parse(get('X-User: a'), 0, ['x-user'])?.request.headers['x-user'], 'a', 'once is fine')
})

t.test('header count and head size limits', async (t) => {
  const lines = (n: number) => Array.from({ length: n }, (_, i) => `X-H${i}: ${i}`)
  t.equal(parse(get(...lines(63)))?.request.rawHeaders.length, 128, '64 headers (with Host) taken')
  t.equal(parse(get(...lines(64))), undefined, '65 headers left alone')

  // The head up to (not including) its final CRLFCRLF is exactly MAX_FAST_HEAD bytes, then one more.
  const sized = (n: number) => {
    const base = 'GET / HTTP/1.1\r\nHost: x\r\nX-Pad: '
    return `${base}${'a'.repeat(n - base.length)}\r\n\r\n`
  }
  t.ok(parse(sized(MAX_FAST_HEAD)), 'at the limit')
  t.equal(parse(sized(MAX_FAST_HEAD + 1)), undefined, 'over the limit')
  t.equal(parse(sized(MAX_FAST_HEAD * 2)), undefined, 'well over the limit')
})

t.test('an incomplete head is never taken', async (t) => {
  const full = get('X-A: b')
  for (let n = 0; n < full.length; n++) t.equal(parse(full.slice(0, n)), undefined, `first ${n} bytes`)
  t.ok(parse(full))
})

t.test('a Constructor header keeps its value (as node:http headers do)', async (t) => {
  // With a plain {} for headers, Object.prototype's `constructor` would hide the header.
  const p = parse(get('Constructor: a'))
  t.equal(p?.request.headers['constructor'], 'a', 'a header called constructor is a header')
})

t.test('left to node:http', async (t) => {
  const cases: Array<[string, string | Buffer]> = [
    // Methods and versions.
    ['POST', 'POST / HTTP/1.1\r\nHost: x\r\n\r\n'],
    ['PUT', 'PUT / HTTP/1.1\r\nHost: x\r\n\r\n'],
    ['OPTIONS', 'OPTIONS / HTTP/1.1\r\nHost: x\r\n\r\n'],
    ['OPTIONS *', 'OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n'],
    ['DELETE', 'DELETE / HTTP/1.1\r\nHost: x\r\n\r\n'],
    ['lower-case get', 'get / HTTP/1.1\r\nHost: x\r\n\r\n'],
    ['lower-case head', 'head / HTTP/1.1\r\nHost: x\r\n\r\n'],
    ['HTTP/1.0', 'GET / HTTP/1.0\r\nHost: x\r\n\r\n'],
    ['HTTP/1.0 HEAD', 'HEAD / HTTP/1.0\r\nHost: x\r\n\r\n'],
    ['lower-case version', 'GET / http/1.1\r\nHost: x\r\n\r\n'],
    ['HTTP/2 preface', 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'],
    ['leading empty line', '\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n'],
    ['space after version', 'GET / HTTP/1.1 \r\nHost: x\r\n\r\n'],
    ['two spaces before version', 'GET /  HTTP/1.1\r\nHost: x\r\n\r\n'],
    ['no version', 'GET /\r\nHost: x\r\n\r\n'],
    // Request targets.
    ['absolute-form', 'GET http://x/ HTTP/1.1\r\nHost: x\r\n\r\n'],
    ['asterisk', 'GET * HTTP/1.1\r\nHost: x\r\n\r\n'],
    ['authority-form', 'GET x:80 HTTP/1.1\r\nHost: x\r\n\r\n'],
    ['space in target', 'GET /a b HTTP/1.1\r\nHost: x\r\n\r\n'],
    ['tab in target', 'GET /a\tb HTTP/1.1\r\nHost: x\r\n\r\n'],
    ['control char in target', 'GET /a\x01b HTTP/1.1\r\nHost: x\r\n\r\n'],
    ['NUL in target', 'GET /a\x00b HTTP/1.1\r\nHost: x\r\n\r\n'],
    ['DEL in target', 'GET /a\x7fb HTTP/1.1\r\nHost: x\r\n\r\n'],
    ['latin1 byte in target', 'GET /caf\xe9 HTTP/1.1\r\nHost: x\r\n\r\n'],
    ['UTF-8 in target', Buffer.from('GET /café HTTP/1.1\r\nHost: x\r\n\r\n', 'utf8')],
    ['" in target', 'GET /a"b HTTP/1.1\r\nHost: x\r\n\r\n'],
    ['< in target', 'GET /a<b HTTP/1.1\r\nHost: x\r\n\r\n'],
    ['> in target', 'GET /a>b HTTP/1.1\r\nHost: x\r\n\r\n'],
    ['\\ in target', 'GET /a\\b HTTP/1.1\r\nHost: x\r\n\r\n'],
    ['{ in target', 'GET /a{b HTTP/1.1\r\nHost: x\r\n\r\n'],
    ['| in target', 'GET /a|b HTTP/1.1\r\nHost: x\r\n\r\n'],
    ['^ in target', 'GET /a^b HTTP/1.1\r\nHost: x\r\n\r\n'],
    ['` in target', 'GET /a`b HTTP/1.1\r\nHost: x\r\n\r\n'],
    // Host.
    ['missing Host', 'GET / HTTP/1.1\r\nX-A: b\r\n\r\n'],
    ['no headers at all', 'GET / HTTP/1.1\r\n\r\n'],
    ['two Host headers', get('Host: y')],
    ['two Host headers, different case', get('host: x')],
    // A body, a protocol switch or an interim answer.
    ['Content-Length: 0', get('Content-Length: 0')],
    ['content-length: 5', 'GET / HTTP/1.1\r\nHost: x\r\ncontent-length: 5\r\n\r\nhello'],
    ['Transfer-Encoding', get('Transfer-Encoding: chunked')],
    ['Transfer-Encoding, odd case', get('TRANSFER-encoding: chunked')],
    ['Upgrade', get('Upgrade: websocket')],
    ['Expect', get('Expect: 100-continue')],
    ['HTTP2-Settings', get('HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA')],
    ['Connection: Upgrade', get('Connection: Upgrade')],
    ['Connection: keep-alive, upgrade', get('Connection: keep-alive, upgrade')],
    // Header line syntax.
    ['header line without colon', get('NoColon')],
    ['header line without colon, colon later', get('NoColon', 'X-A: b')],
    ['empty header name', get(': v')],
    ['space before colon', get('X-A : v')],
    ['space before colon on Host', 'GET / HTTP/1.1\r\nHost : x\r\n\r\n'],
    ['tab before colon', get('X-A\t: v')],
    ['space in header name', get('X A: v')],
    ['separator in header name', get('X(A): v')],
    ['non-ASCII header name', get('X-\xe9: v')],
    ['obs-fold with space', get('X-A: a', ' b')],
    ['obs-fold with tab', get('X-A: a', '\tb')],
    ['obs-fold with a colon', get('X-A: a', ' b: c')],
    // Header values.
    ['control char in value', get('X-A: a\x01b')],
    ['NUL in value', get('X-A: a\x00b')],
    ['bare CR in value', get('X-A: a\rb')],
    ['CR ending a value', get('X-A: a\r')],
    ['ESC in value', get('X-A: \x1b[0m')],
    ['DEL in value', get('X-A: a\x7fb')],
    ['0x80 in value', get('X-A: a\x80b')],
    ['0xff in value', get('X-A: a\xffb')],
    ['UTF-8 in value', Buffer.from(get('X-A: café'), 'utf8')],
    ['control char in Host', 'GET / HTTP/1.1\r\nHost: x\x01\r\n\r\n'],
    // Line endings.
    ['bare LF everywhere', 'GET / HTTP/1.1\nHost: x\n\n'],
    ['bare LF after the request line', 'GET / HTTP/1.1\nHost: x\r\n\r\n'],
    ['bare LF between headers', 'GET / HTTP/1.1\r\nHost: x\nX-A: b\r\n\r\n'],
    ['bare LF ending the head', 'GET / HTTP/1.1\r\nHost: x\r\n\n'],
  ]
  for (const [name, text] of cases) t.equal(parse(text), undefined, name)
})

t.test('plainHead: the head as received when it forwards unchanged, hop-by-hop lines cut out', async (t) => {
  const plainOf = (text: string) => parse(text)?.request.plainHead
  const base = 'GET /a?b=1 HTTP/1.1\r\nHost: x\r\nAccept: */*\r\n'
  t.equal(plainOf(`${base}\r\n`), base)
  t.equal(plainOf(`${base}Connection: keep-alive\r\n\r\n`), base, 'Connection: keep-alive (last)')
  t.equal(plainOf(`GET /a?b=1 HTTP/1.1\r\nconnection: Keep-Alive\r\nHost: x\r\nKEEP-ALIVE: 5\r\nAccept: */*\r\nTE: trailers\r\n\r\n`), base, 'hop-by-hop lines anywhere')
  t.equal(plainOf('HEAD / HTTP/1.1\r\nHost: x\r\nX-Empty: \r\n\r\n'), 'HEAD / HTTP/1.1\r\nHost: x\r\nX-Empty: \r\n', 'an empty value after one space')
  t.equal(parse(`${base}\r\n`)?.request.host, 'x')
  // Lines forwarding writes differently, and headers it rewrites: the general path (rawHeaders).
  for (const line of ['X-A:v', 'X-A:  v', 'X-A: v ', 'X-A:\tv', 'X-Empty:', 'X-Forwarded-For: 1.2.3.4', 'x-forwarded-proto: https', 'X-Forwarded-Host: h', 'Connection: close', 'Connection: keep-alive, X-A']) {
    const p = parse(`${base}${line}\r\n\r\n`)
    t.ok(p, `${line}: still a fast request`)
    t.equal(p?.request.plainHead, undefined, line)
  }
})

t.test('rawHeaders and headers are built when read, and stay the same objects', async (t) => {
  const p = parse(get('X-A:  v \t', 'x-a: second', 'Cookie: c=1'))
  if (!p) return t.fail('not parsed')
  t.equal(p.request.headerCount, 4)
  t.same(p.request.rawHeaders, ['Host', 'x', 'X-A', 'v', 'x-a', 'second', 'Cookie', 'c=1'])
  t.equal(p.request.rawHeaders, p.request.rawHeaders, 'built once')
  t.equal(p.request.headers['x-a'], 'v', 'first value kept')
  t.equal(p.request.headers, p.request.headers, 'built once')
})
