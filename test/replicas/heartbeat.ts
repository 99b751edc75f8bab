// Heartbeat probes against real servers: healthy, wrong status, silent, closed port, deadline.
import t, { type Test } from 'tap'
import { createServer, type Server } from 'node:http'
import { once } from 'node:events'
import type { AddressInfo } from 'node:net'
import { probeHeartbeat, waitForHeartbeat } from '../../src/replicas/heartbeat.js'

async function serve(t: Test, handler: Parameters<typeof createServer>[1]): Promise<number> {
  const server: Server = createServer(handler)
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.teardown(() => {
    server.closeAllConnections()
    server.close()
  })
  return (server.address() as AddressInfo).port
}

t.test('probe: 200 is healthy; other statuses, silence and refusal are not', async (t) => {
  const ok = await serve(t, (req, res) => res.end(req.url === '/heartbeat' ? '' : 'x'))
  const sick = await serve(t, (_req, res) => res.writeHead(500).end())
  const silent = await serve(t, () => {})
  t.equal(await probeHeartbeat('127.0.0.1', ok, 500), true)
  t.equal(await probeHeartbeat('127.0.0.1', sick, 500), false)
  const started = Date.now()
  t.equal(await probeHeartbeat('127.0.0.1', silent, 200), false)
  t.ok(Date.now() - started < 2000, 'the timeout bounds a silent replica')
  const closed = createServer().listen(0, '127.0.0.1')
  await once(closed, 'listening')
  const port = (closed.address() as AddressInfo).port
  await new Promise<void>((r) => closed.close(() => r()))
  t.equal(await probeHeartbeat('127.0.0.1', port, 500), false)
})

t.test('wait: resolves once the replica answers, rejects at the deadline or on abort', async (t) => {
  let calls = 0
  const late = await serve(t, (_req, res) => res.writeHead(++calls < 4 ? 503 : 200).end())
  await waitForHeartbeat('127.0.0.1', late, { timeoutMs: 5000, intervalMs: 10 })
  t.equal(calls, 4, 'kept probing until the fourth answered 200')
  const never = await serve(t, (_req, res) => res.writeHead(503).end())
  await t.rejects(waitForHeartbeat('127.0.0.1', never, { timeoutMs: 200, intervalMs: 10 }), { message: `no heartbeat from 127.0.0.1:${never} within 200 ms` })
  const ac = new AbortController()
  ac.abort(new Error('process exited'))
  await t.rejects(waitForHeartbeat('127.0.0.1', never, { timeoutMs: 5000, signal: ac.signal }), { message: 'process exited' })
})
