// Header rules, on raw header arrays: hop-by-hop removal, X-Forwarded-*, body and idempotency.
import t from 'tap'
import type { IncomingMessage } from 'node:http'
import { END_TO_END, HOP_BY_HOP_HEADER, X_FORWARDED, connectionNamesOthers, endToEnd, forwardingOf, hasBody, isIdempotent, upstreamHead } from '../../src/route/forward.js'

const req = (rawHeaders: string[], remoteAddress = '::1') => {
  const headers: Record<string, string> = {}
  for (let i = 0; i < rawHeaders.length; i += 2) headers[rawHeaders[i]!.toLowerCase()] = rawHeaders[i + 1]!
  return { method: 'GET', url: '/p?q=1', rawHeaders, headers, socket: { remoteAddress } } as unknown as IncomingMessage
}

t.test('endToEnd drops hop-by-hop headers and those named in Connection, keeps case and repeats', async (t) => {
  const raw = ['Host', 'h', 'Connection', 'Keep-Alive, X-Trace', 'Keep-Alive', 'timeout=5', 'X-Trace', '1', 'TE', 'trailers', 'Transfer-Encoding', 'chunked', 'Upgrade', 'h2c', 'Proxy-Connection', 'x', 'Trailer', 'X-Sum', 'Proxy-Authorization', 'Basic eA==', 'Proxy-Authenticate', 'Basic', 'X-Multi', 'a', 'x-multi', 'b']
  t.same(endToEnd(raw), ['Host', 'h', 'X-Multi', 'a', 'x-multi', 'b'])
  t.same(endToEnd([]), [])
})

t.test('endToEnd drops every hop-by-hop header also when Connection names nothing else', async (t) => {
  // The usual replica answer: `Connection: keep-alive` names only a hop-by-hop header itself.
  const hop = ['Keep-Alive', 'TE', 'Trailer', 'Transfer-Encoding', 'Upgrade', 'Proxy-Connection', 'Proxy-Authorization', 'Proxy-Authenticate']
  const raw = ['Content-Type', 'text/plain', ...hop.flatMap((name) => [name, 'v']), 'Content-Length', '2', ...hop.flatMap((name) => [name.toUpperCase(), 'w'])]
  t.same(endToEnd(raw), ['Content-Type', 'text/plain', 'Content-Length', '2'], 'no Connection header')
  t.same(endToEnd(['Connection', 'keep-alive', ...raw]), ['Content-Type', 'text/plain', 'Content-Length', '2'], 'Connection: keep-alive')
  t.same(endToEnd(['Connection', 'close', 'Close', 'x', 'Date', 'd']), ['Date', 'd'], 'a name listed in Connection goes too')
})

t.test('X-Forwarded-For appends the client to the last line; Proto and Host only when absent', async (t) => {
  t.equal(upstreamHead(req(['Host', 'site:5000'], '127.0.0.9')), 'GET /p?q=1 HTTP/1.1\r\nHost: site:5000\r\nX-Forwarded-For: 127.0.0.9\r\nX-Forwarded-Proto: http\r\nX-Forwarded-Host: site:5000\r\n')
  t.equal(
    upstreamHead(req(['X-Forwarded-For', '1.1.1.1', 'x-forwarded-for', '2.2.2.2', 'X-Forwarded-Proto', 'https', 'X-Forwarded-Host', 'outer'], '127.0.0.9')),
    'GET /p?q=1 HTTP/1.1\r\nX-Forwarded-For: 1.1.1.1\r\nx-forwarded-for: 2.2.2.2, 127.0.0.9\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Host: outer\r\n',
  )
  t.equal(upstreamHead(req([], '::1')), 'GET /p?q=1 HTTP/1.1\r\nX-Forwarded-For: ::1\r\nX-Forwarded-Proto: http\r\n', 'no Host: no X-Forwarded-Host')
  t.equal(
    upstreamHead(req(['Host', 'h', 'Connection', 'keep-alive, X-Trace', 'X-Trace', '1', 'Keep-Alive', 'x', 'Accept', '*/*'], '::1')),
    'GET /p?q=1 HTTP/1.1\r\nHost: h\r\nAccept: */*\r\nX-Forwarded-For: ::1\r\nX-Forwarded-Proto: http\r\nX-Forwarded-Host: h\r\n',
    'hop-by-hop headers dropped',
  )
})

t.test('upstreamHead: a plain head is used as it is, the X-Forwarded-* lines after it', async (t) => {
  const plain = { ...req(['Host', 'ignored']), plainHead: 'GET /x HTTP/1.1\r\nHost: h\r\nAccept: */*\r\n', host: 'h' }
  t.equal(upstreamHead(plain), 'GET /x HTTP/1.1\r\nHost: h\r\nAccept: */*\r\nX-Forwarded-For: ::1\r\nX-Forwarded-Proto: http\r\nX-Forwarded-Host: h\r\n')
})

t.test('forwardingOf and connectionNamesOthers: the rules plain heads are checked with', async (t) => {
  const line = 'xx Keep-ALIVE X-Forwarded-Proto connection Accept x-forwarded-forx'
  const role = (name: string) => forwardingOf(line, line.indexOf(name), line.indexOf(name) + name.length)
  t.equal(role('Keep-ALIVE'), HOP_BY_HOP_HEADER)
  t.equal(role('connection'), HOP_BY_HOP_HEADER)
  t.equal(role('X-Forwarded-Proto'), X_FORWARDED)
  t.equal(role('Accept'), END_TO_END)
  t.equal(role('x-forwarded-forx'), END_TO_END, 'a longer name is another name')
  for (const name of ['Connection', 'Keep-Alive', 'Proxy-Connection', 'Proxy-Authenticate', 'Proxy-Authorization', 'TE', 'Trailer', 'Transfer-Encoding', 'Upgrade']) {
    t.equal(forwardingOf(name, 0, name.length), HOP_BY_HOP_HEADER, name)
    t.same(endToEnd([name, 'v']), [], `${name}: endToEnd drops what forwardingOf calls hop-by-hop`)
  }
  t.equal(connectionNamesOthers('keep-alive'), false)
  t.equal(connectionNamesOthers(' keep-alive , te'), false)
  t.equal(connectionNamesOthers('close'), true, 'a header called Close would go too')
  t.equal(connectionNamesOthers('keep-alive, x-trace'), true)
  t.equal(connectionNamesOthers(''), false)
})

t.test('hasBody and isIdempotent', async (t) => {
  t.equal(hasBody(req([])), false)
  t.equal(hasBody(req(['Content-Length', '0'])), false)
  t.equal(hasBody(req(['Content-Length', '12'])), true)
  t.equal(hasBody(req(['Transfer-Encoding', 'chunked'])), true)
  for (const m of ['GET', 'HEAD', 'OPTIONS', 'TRACE', 'PUT', 'DELETE']) t.equal(isIdempotent(m), true, m)
  for (const m of ['POST', 'PATCH', 'CONNECT']) t.equal(isIdempotent(m), false, m)
})
