// Reading admin JSON bodies over a real socket: limits (declared and streamed) and parse errors.
import t, { type Test } from 'tap'
import { createServer, request } from 'node:http'
import { once } from 'node:events'
import type { AddressInfo } from 'node:net'
import { readJson } from '../../src/admin/body.js'
import { BalancerError } from '../../src/errors.js'
import { waitFor } from '../fixtures/http.js'

async function parse(t: Test, body: string, limit: number, chunked = false): Promise<unknown> {
  const server = createServer((req, res) => {
    readJson(req, limit).then(
      (v) => res.end(JSON.stringify({ ok: v })),
      (e: BalancerError) => res.end(JSON.stringify({ code: e.code, message: e.message })),
    )
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.teardown(() => server.close())
  const headers: Record<string, string> = chunked ? { 'transfer-encoding': 'chunked' } : { 'content-length': String(Buffer.byteLength(body)) }
  const req = request({ port: (server.address() as AddressInfo).port, host: '127.0.0.1', method: 'POST', headers, agent: false })
  if (chunked) for (const c of body.match(/.{1,10}/gs) ?? []) req.write(c)
  req.end(chunked ? undefined : body)
  const [res] = await once(req, 'response')
  let text = ''
  for await (const c of res) text += c
  return JSON.parse(text)
}

t.test('parses JSON within the limit', async (t) => {
  t.same(await parse(t, '{"n": 2}', 100), { ok: { n: 2 } })
  t.same(await parse(t, '{"n": 2}', 100, true), { ok: { n: 2 } })
})

t.test('refuses too large bodies, declared or streamed', async (t) => {
  t.same(await parse(t, 'x'.repeat(101), 100), { code: 'BODY_TOO_LARGE', message: 'Request body too large: more than 100 bytes' })
  t.same(await parse(t, 'x'.repeat(101), 100, true), { code: 'BODY_TOO_LARGE', message: 'Request body too large: more than 100 bytes' })
})

t.test('refuses empty and malformed bodies', async (t) => {
  t.same(await parse(t, '', 100), { code: 'INVALID_JSON', message: 'Invalid JSON payload: the body is empty' })
  t.same(await parse(t, '  \n', 100), { code: 'INVALID_JSON', message: 'Invalid JSON payload: the body is empty' })
  t.match(await parse(t, '{"n":', 100), { code: 'INVALID_JSON', message: /^Invalid JSON payload: / })
})

t.test('a body too slow to arrive gets REQUEST_TIMEOUT; one that stops early is ClientGone', async (t) => {
  const outcomes: string[] = []
  let requests = 0
  const server = createServer((req, res) => {
    requests++
    readJson(req, 1000, 200).then(
      (v) => res.end(JSON.stringify({ ok: v })),
      (e: Error) => {
        outcomes.push(e instanceof BalancerError ? e.code : e.name)
        if (!res.destroyed) res.end(JSON.stringify({ code: (e as BalancerError).code, message: e.message }))
      },
    )
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.teardown(() => {
    server.closeAllConnections()
    server.close()
  })
  const port = (server.address() as AddressInfo).port

  // One byte of 17, then nothing: answered after the timeout, not whenever the client likes.
  const started = Date.now()
  const slow = request({ port, host: '127.0.0.1', method: 'POST', headers: { 'content-length': '17' }, agent: false })
  slow.write('{')
  const [res] = await once(slow, 'response')
  let text = ''
  for await (const c of res) text += c
  t.same(JSON.parse(text), { code: 'REQUEST_TIMEOUT', message: 'Request body not received within 200 ms' })
  t.ok(Date.now() - started >= 190, 'not before the timeout')
  slow.destroy()

  // A client that goes away mid-body: no answer, nothing left waiting.
  const gone = request({ port, host: '127.0.0.1', method: 'POST', headers: { 'content-length': '17' }, agent: false })
  gone.on('error', () => {})
  gone.write('{"n"')
  await waitFor('the second request to reach the handler', () => requests === 2)
  gone.destroy()
  await waitFor('the second outcome', () => outcomes.length === 2)
  t.same(outcomes, ['REQUEST_TIMEOUT', 'ClientGone'])
})
