// Heartbeat probes against real servers: healthy, wrong status, silent, closed port, deadline.
import t, { type Test } from 'tap'
import { createServer, type Server } from 'node:http'
import { once } from 'node:events'
import type { AddressInfo } from 'node:net'
import { heartbeatReason, probeHeartbeat, waitForHeartbeat } from '../../src/replicas/heartbeat.js'
import { Agent } from 'node:http'
import { createServer as createNetServer } from 'node:net'

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

t.test('probe: 200 is healthy; other statuses, silence and refusal are not, each with its reason', async (t) => {
  const ok = await serve(t, (req, res) => res.end(req.url === '/heartbeat' ? '' : 'x'))
  const sick = await serve(t, (_req, res) => res.writeHead(500).end())
  const silent = await serve(t, () => {})
  t.same(await probeHeartbeat('127.0.0.1', ok, { timeoutMs: 500 }), { ok: true, reason: 'ok' })
  t.same(await probeHeartbeat('127.0.0.1', sick, { timeoutMs: 500 }), { ok: false, reason: 'status 500' })
  const started = Date.now()
  t.same(await probeHeartbeat('127.0.0.1', silent, { timeoutMs: 200 }), { ok: false, reason: 'timeout after 200 ms' })
  t.ok(Date.now() - started < 2000, 'the timeout bounds a silent replica')
  const closed = createServer().listen(0, '127.0.0.1')
  await once(closed, 'listening')
  const port = (closed.address() as AddressInfo).port
  await new Promise<void>((r) => closed.close(() => r()))
  t.same(await probeHeartbeat('127.0.0.1', port, { timeoutMs: 500 }), { ok: false, reason: 'ECONNREFUSED' })
  t.equal(await heartbeatReason('127.0.0.1', port, 500), `ECONNREFUSED (127.0.0.1:${port})`, 'the providers\' reason names the address')
  t.equal(await heartbeatReason('127.0.0.1', ok, 500), true)
})

t.test('probe on a keep-alive agent: one socket reused; a reset on a reused socket is tried once on a fresh one', async (t) => {
  // The replica resets a connection when a second request arrives on it (as one closing an
  // idle socket just as we reuse it), and answers every first request.
  let connections = 0
  const server = createNetServer((socket) => {
    connections++
    let requests = 0
    socket.on('error', () => {})
    socket.on('data', () => {
      if (++requests === 1) socket.write('HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n')
      else socket.resetAndDestroy()
    })
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.teardown(() => server.close())
  const port = (server.address() as AddressInfo).port
  const agent = new Agent({ keepAlive: true, maxSockets: 1, maxFreeSockets: 1 })
  t.teardown(() => agent.destroy())
  t.same(await probeHeartbeat('127.0.0.1', port, { timeoutMs: 1000, agent }), { ok: true, reason: 'ok' })
  t.same(await probeHeartbeat('127.0.0.1', port, { timeoutMs: 1000, agent }), { ok: true, reason: 'ok' }, 'the stale socket does not count as a failure')
  t.equal(connections, 2, 'the retry opened a fresh connection')
  // Without an agent nothing is reused, so nothing is retried: a reset is a failure.
  const resetting = createNetServer((socket) => socket.on('data', () => socket.resetAndDestroy()).on('error', () => {}))
  resetting.listen(0, '127.0.0.1')
  await once(resetting, 'listening')
  t.teardown(() => resetting.close())
  t.same(await probeHeartbeat('127.0.0.1', (resetting.address() as AddressInfo).port, { timeoutMs: 1000 }), { ok: false, reason: 'ECONNRESET' })
})

t.test('probe: an abort ends it at once as failed', async (t) => {
  const silent = await serve(t, () => {})
  const ac = new AbortController()
  const probe = probeHeartbeat('127.0.0.1', silent, { timeoutMs: 10_000, signal: ac.signal })
  const started = Date.now()
  setImmediate(() => ac.abort())
  t.same(await probe, { ok: false, reason: 'aborted' })
  t.ok(Date.now() - started < 5000, 'long before its timeout')
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
