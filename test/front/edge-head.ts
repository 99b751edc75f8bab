// The strict request-head reader on its own: incomplete heads wait, limits answer early, and
// what it accepts it describes (framing, close, upgrade, the rewrite for node:http).
import t from 'tap'
import { readHead, validHost, type HeadLimits } from '../../src/front/edge-head.js'

const LIMITS: HeadLimits = { maxHeaderSize: 1024, maxHeaders: 5, maxRequestBody: 100 }
const read = (text: string, limits = LIMITS) => readHead(Buffer.from(text, 'latin1'), limits)

t.test('an incomplete head waits; past the limits it is refused at once', async (t) => {
  t.equal(read('GET /a HTTP/1.1\r\nHost: t\r\n'), undefined)
  t.equal(read('GET /a'), undefined)
  t.match(read(`GET /${'a'.repeat(1100)}`), { ok: false, status: 414 }, 'a request line over the limit, before its end arrives')
  t.match(read(`GET /a HTTP/1.1\r\nX: ${'b'.repeat(1100)}`), { ok: false, status: 431 }, 'a head over the limit, before its end arrives')
  t.match(read('GET /a HTTP/1.1\nHost: t\n'), { ok: false, status: 400 }, 'bare LF known from the first line')
})

t.test('what an accepted head says', async (t) => {
  t.match(read('GET /a HTTP/1.1\r\nHost: t\r\n\r\nNEXT'), { ok: true, end: 28, bodyLength: 0, close: false, upgrade: false, rewritten: undefined })
  t.match(read('POST /a HTTP/1.1\r\nHost: t\r\nContent-Length: 7\r\n\r\n'), { ok: true, bodyLength: 7 })
  t.match(read('POST /a HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip, chunked\r\n\r\n'), { ok: true, bodyLength: -1 })
  t.match(read('GET /a HTTP/1.1\r\nHost: t\r\nConnection: keep-alive, close\r\n\r\n'), { ok: true, close: true })
  t.match(read('GET /a HTTP/1.0\r\n\r\n'), { ok: true, close: true })
  t.match(read('GET /a HTTP/1.0\r\nConnection: keep-alive\r\n\r\n'), { ok: true, close: false })
  t.match(read('GET /ws HTTP/1.1\r\nHost: t\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n'), { ok: true, upgrade: true })
  const abs = read('GET http://a.example:81?q HTTP/1.1\r\nHost: other\r\nX-A: 1\r\n\r\n')
  t.equal(abs?.ok && abs.rewritten?.toString('latin1'), 'GET /?q HTTP/1.1\r\nX-A: 1\r\nHost: a.example:81\r\n\r\n', 'absolute-form: origin-form, Host from the authority')
  const v12 = read('GET /a HTTP/1.2\r\nHost: t\r\n\r\n')
  t.equal(v12?.ok && v12.rewritten?.toString('latin1'), 'GET /a HTTP/1.1\r\nHost: t\r\n\r\n', 'HTTP/1.2 as 1.1')
})

t.test('limits and refusals', async (t) => {
  t.match(read('GET /a HTTP/1.1\r\nHost: t\r\n' + 'X: 1\r\n'.repeat(5) + '\r\n'), { ok: false, status: 431 }, 'six header lines, limit five')
  t.match(read('POST /a HTTP/1.1\r\nHost: t\r\nContent-Length: 101\r\n\r\n'), { ok: false, status: 413 })
  t.match(read('POST /a HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\n'), { ok: true, bodyLength: 100 })
  t.match(read('CONNECT a:443 HTTP/1.1\r\nHost: a\r\n\r\n'), { ok: false, status: 405, headers: { allow: /GET/ } })
  t.match(read('BREW /pot HTTP/1.1\r\nHost: t\r\n\r\n'), { ok: false, status: 501 })
  t.match(read('GET /a HTTP/3.0\r\nHost: t\r\n\r\n'), { ok: false, status: 505 })
  t.match(read('GET /a HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\n\r\n'), { ok: true })
  t.match(read('GET /a HTTP/1.1\r\nHost: t\r\nExpect: 200-ok\r\n\r\n'), { ok: false, status: 417 })
  t.match(read('GET http://user@a/ HTTP/1.1\r\n\r\n'), { ok: false, status: 400 }, 'userinfo in an absolute-form target')
})

t.test('validHost', async (t) => {
  for (const ok of ['a', 'a.example', 'a.example:8080', '127.0.0.1:1', '[::1]', '[::1]:80', '', 'xn--bcher-kva.example', 'a%20b']) t.ok(validHost(ok), JSON.stringify(ok))
  for (const bad of ['a b', 'a/b', 'a:b', '[::1', '[]', 'a@b', 'a\\b', 'é']) t.notOk(validHost(bad), JSON.stringify(bad))
})
