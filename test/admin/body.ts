// Reading admin JSON bodies over a real socket: limits (declared and streamed) and parse errors.
import t, { type Test } from 'tap'
import { createServer, request } from 'node:http'
import { once } from 'node:events'
import type { AddressInfo } from 'node:net'
import { readJson } from '../../src/admin/body.js'
import { BalancerError } from '../../src/errors.js'

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
