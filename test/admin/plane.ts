// The admin listener (--admin-port, --admin-host, --admin-on-main): which routes each port
// serves, /healthz, 404s, off, and a start that fails when the admin port is taken.
import t from 'tap'
import { createServer } from 'node:net'
import { once } from 'node:events'
import { startTestApp } from '../fixtures/app.js'
import { call } from '../fixtures/http.js'
import { DEFAULT, fail, ok } from '../fixtures/admin.js'
import { loadConfig } from '../../src/config.js'
import { startApp } from '../../src/app.js'
import { ProcessProvider } from '../../src/replicas/process.js'

t.test('the admin listener serves /rep, /add, /rm and /healthz; other paths are 404 there', async (t) => {
  const app = await startTestApp(t)
  t.match(app.adminUrl, /^http:\/\/127\.0\.0\.1:\d+$/)
  t.not(app.adminUrl, app.url)
  const health = await call(`${app.adminUrl}/healthz`)
  t.equal(health.status, 200)
  t.same(health.json, { message: { healthy: true, N: 3, inRing: 3 }, status: 'successful' })
  t.equal((await call(`${app.adminUrl}/healthz`, 'HEAD')).status, 200)
  t.same((await call(`${app.adminUrl}/rep`)).json, ok(DEFAULT))
  t.same((await call(`${app.adminUrl}/add`, 'POST', '{"n": 1, "hostnames": ["A"]}')).json, ok([...DEFAULT, 'A']))
  t.same((await call(`${app.adminUrl}/rm`, 'DELETE', '{"n": 1, "hostnames": ["A"]}')).json, ok(DEFAULT))
  const missing = await call(`${app.adminUrl}/home?x=1`)
  t.equal(missing.status, 404)
  t.same(missing.json, fail("No admin endpoint '/home' (this listener serves /rep, /add, /rm, /healthz, /metrics, /stats, /dashboard)"))
  t.equal((await call(`${app.adminUrl}/healthz`, 'POST', '{}')).status, 405)
  // /healthz is not the main port's: there it is a path like any other, for the replicas.
  t.same((await call(`${app.url}/healthz`)).json, fail("'/healthz' endpoint does not exist in server replicas"))
  // With every replica gone the balancer cannot route: /healthz says so.
  t.same((await call(`${app.adminUrl}/rm`, 'DELETE', '{"n": 3}')).json, ok([]))
  const empty = await call(`${app.adminUrl}/healthz`)
  t.equal(empty.status, 503)
  t.same(empty.json, fail('No server replicas available'))
})

t.test('--admin-on-main=false: /add and /rm only on the admin listener; the main port proxies them', async (t) => {
  for (const fast of ['true', 'false']) {
    const app = await startTestApp(t, ['--admin-on-main=false', `--fast-front=${fast}`])
    t.same((await call(`${app.url}/add`, 'POST', '{"n": 1}')).json, fail("'/add' endpoint does not exist in server replicas"), `fast front ${fast}: POST /add reaches a replica`)
    t.same((await call(`${app.url}/rm`, 'DELETE', '{"n": 1}')).json, fail("'/rm' endpoint does not exist in server replicas"))
    t.same((await call(`${app.url}/add`)).json, fail("'/add' endpoint does not exist in server replicas"), 'GET /add too (no 405: the path is not the balancer\'s here)')
    t.same((await call(`${app.url}/rep`)).json, ok(DEFAULT), 'GET /rep stays on the main port (SPEC 4.1)')
    t.same(app.balancer.membership(), { N: 3, replicas: DEFAULT })
    t.same((await call(`${app.adminUrl}/add`, 'POST', '{"n": 1, "hostnames": ["B"]}')).json, ok([...DEFAULT, 'B']))
  }
})

t.test('--admin-port off: no admin listener', async (t) => {
  const app = await startTestApp(t, ['--admin-port', 'off'])
  t.equal(app.adminUrl, undefined)
  t.equal(app.adminServer, undefined)
  t.same((await call(`${app.url}/add`, 'POST', '{"n": 1, "hostnames": ["C"]}')).json, ok([...DEFAULT, 'C']), 'the main port still serves /add')
})

t.test('a taken admin port fails the start and leaves nothing running', async (t) => {
  const blocker = createServer()
  blocker.listen(0, '127.0.0.1')
  await once(blocker, 'listening')
  t.teardown(() => blocker.close())
  const port = (blocker.address() as { port: number }).port
  const config = loadConfig(['--port', '0', '--admin-port', String(port), '--host', '127.0.0.1', '--quiet', '--replicas', '1'])
  const provider = new ProcessProvider({ startTimeoutMs: 10_000 })
  t.teardown(() => provider.close())
  await t.rejects(startApp(config, { provider, audit: () => {}, log: () => {} }), { code: 'EADDRINUSE' })
  t.same(provider.list(), [], 'the replica it started is stopped again')
})
