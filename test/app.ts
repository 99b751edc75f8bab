// Wiring: a start that cannot listen undoes itself; close is idempotent and stops everything.
import t from 'tap'
import { createServer } from 'node:net'
import { once } from 'node:events'
import type { AddressInfo } from 'node:net'
import { loadConfig } from '../src/config.js'
import { startApp } from '../src/app.js'
import { ProcessProvider } from '../src/replicas/process.js'
import { alive, call } from './fixtures/http.js'

t.test('a port already in use fails the start before any replica starts', async (t) => {
  const blocker = createServer().listen(0, '127.0.0.1')
  await once(blocker, 'listening')
  t.teardown(() => blocker.close())
  const port = (blocker.address() as AddressInfo).port
  const provider = new ProcessProvider({ startTimeoutMs: 10_000 })
  const pids: number[] = []
  const start = provider.start.bind(provider)
  provider.start = async (name) => {
    const h = await start(name)
    pids.push(Number(h.id))
    return h
  }
  await t.rejects(startApp(loadConfig(['--port', String(port), '--admin-port', '0', '--host', '127.0.0.1', '--quiet']), { provider }), {
    code: 'EADDRINUSE',
    message: `the HTTP port is in use: 127.0.0.1:${port} (EADDRINUSE); choose another port with --port or LB_PORT`,
  })
  t.equal(pids.length, 0, 'no replica was started')
  t.same(provider.list(), [])
})

t.test('close is idempotent and stops the front and the replicas', async (t) => {
  const provider = new ProcessProvider({ startTimeoutMs: 10_000 })
  const app = await startApp(loadConfig(['--port', '0', '--admin-port', '0', '--host', '127.0.0.1', '--quiet']), { provider })
  t.match(app.url, /^http:\/\/127\.0\.0\.1:\d+$/)
  t.equal((await call(`${app.url}/home`)).status, 200)
  const pids = app.balancer.membership().replicas.map((n) => provider.pidOf(n)!)
  await Promise.all([app.close(), app.close()])
  await app.close()
  t.notOk(pids.some(alive))
  t.equal(app.server.listening, false)
  await t.rejects(call(`${app.url}/home`), { code: 'ECONNREFUSED' })
})
