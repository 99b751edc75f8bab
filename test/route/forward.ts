// Header rules, on raw header arrays: hop-by-hop removal, X-Forwarded-*, body and idempotency.
import t from 'tap'
import type { IncomingMessage } from 'node:http'
import { endToEnd, hasBody, isIdempotent, upstreamRequestHeaders } from '../../src/route/forward.js'

const req = (rawHeaders: string[], remoteAddress = '::1') => {
  const headers: Record<string, string> = {}
  for (let i = 0; i < rawHeaders.length; i += 2) headers[rawHeaders[i]!.toLowerCase()] = rawHeaders[i + 1]!
  return { rawHeaders, headers, socket: { remoteAddress } } as unknown as IncomingMessage
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
  t.same(upstreamRequestHeaders(req(['Host', 'site:5000'], '127.0.0.9')), ['Host', 'site:5000', 'X-Forwarded-For', '127.0.0.9', 'X-Forwarded-Proto', 'http', 'X-Forwarded-Host', 'site:5000'])
  t.same(
    upstreamRequestHeaders(req(['X-Forwarded-For', '1.1.1.1', 'x-forwarded-for', '2.2.2.2', 'X-Forwarded-Proto', 'https', 'X-Forwarded-Host', 'outer'], '127.0.0.9')),
    ['X-Forwarded-For', '1.1.1.1', 'x-forwarded-for', '2.2.2.2, 127.0.0.9', 'X-Forwarded-Proto', 'https', 'X-Forwarded-Host', 'outer'],
  )
  t.same(upstreamRequestHeaders(req([], '::1')), ['X-Forwarded-For', '::1', 'X-Forwarded-Proto', 'http'], 'no Host: no X-Forwarded-Host')
})

t.test('hasBody and isIdempotent', async (t) => {
  t.equal(hasBody(req([])), false)
  t.equal(hasBody(req(['Content-Length', '0'])), false)
  t.equal(hasBody(req(['Content-Length', '12'])), true)
  t.equal(hasBody(req(['Transfer-Encoding', 'chunked'])), true)
  for (const m of ['GET', 'HEAD', 'OPTIONS', 'TRACE', 'PUT', 'DELETE']) t.equal(isIdempotent(m), true, m)
  for (const m of ['POST', 'PATCH', 'CONNECT']) t.equal(isIdempotent(m), false, m)
})
