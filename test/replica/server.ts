// The replica (SPEC 2), run as a real process from its built file.
import t, { type Test } from 'tap'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { replicaEntry } from '../../src/paths.js'
import { call } from '../fixtures/http.js'
import { startTestApp } from '../fixtures/app.js'

async function startReplica(t: Test, env: Record<string, string>): Promise<{ url: string; child: ReturnType<typeof spawn> }> {
  const child = spawn(process.execPath, [replicaEntry], { env: { PATH: process.env.PATH ?? '', PORT: '0', HOST: '127.0.0.1', ...env }, stdio: ['ignore', 'pipe', 'inherit', 'ipc'] })
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
  })
  const [message] = (await once(child, 'message')) as [{ type: string; port: number }]
  t.equal(message.type, 'listening')
  return { url: `http://127.0.0.1:${message.port}`, child }
}

t.test('GET /home answers with its SERVER_ID, /heartbeat with an empty 200, the rest 404', async (t) => {
  const { url } = await startReplica(t, { SERVER_ID: 'Server 7' })
  const home = await call(`${url}/home`)
  t.equal(home.status, 200)
  t.equal(home.body, '{"message":"Hello from Server: Server 7","status":"successful"}')
  const hb = await call(`${url}/heartbeat`)
  t.equal(hb.status, 200)
  t.equal(hb.body, '')
  t.equal((await call(`${url}/other`)).status, 404)
  t.equal((await call(`${url}/home`, 'POST', 'x')).status, 405, 'only GET/HEAD on /home')
  t.equal((await call(`${url}/home?x=1`)).status, 200, 'query strings are ignored')
})

t.test('SERVER_ID defaults to the hostname', async (t) => {
  const { hostname } = await import('node:os')
  const { url } = await startReplica(t, {})
  t.same((await call(`${url}/home`)).json, { message: `Hello from Server: ${hostname()}`, status: 'successful' })
})

t.test('SIGTERM stops it cleanly; a bad PORT is refused', async (t) => {
  const { child } = await startReplica(t, { SERVER_ID: 'x' })
  child.kill('SIGTERM')
  const [code] = await once(child, 'exit')
  t.equal(code, 0)
  const bad = spawn(process.execPath, [replicaEntry], { env: { PORT: 'nope' }, stdio: ['ignore', 'ignore', 'pipe'] })
  let err = ''
  bad.stderr!.on('data', (d) => (err += d))
  const [badCode] = await once(bad, 'exit')
  t.equal(badCode, 2)
  t.match(err, /PORT must be an integer from 0 to 65535, got "nope"/)
})

t.test('a known path with a method it does not serve: 405 with Allow; OPTIONS: 204 with Allow', async (t) => {
  const { url } = await startReplica(t, { SERVER_ID: 'x' })
  for (const [method, path, allow] of [
    ['POST', '/home', 'GET, HEAD, OPTIONS'],
    ['DELETE', '/home', 'GET, HEAD, OPTIONS'],
    ['PUT', '/heartbeat', 'GET, HEAD, OPTIONS'],
    ['POST', '/ws', 'GET, OPTIONS'],
  ] as const) {
    const r = await call(`${url}${path}`, method, 'body')
    t.equal(r.status, 405, `${method} ${path}`)
    t.equal(r.headers.allow, allow)
    t.same(r.json, { message: `Method ${method} not allowed on ${path}; use ${allow}`, status: 'failure' })
  }
  const options = await call(`${url}/home`, 'OPTIONS')
  t.equal(options.status, 204)
  t.equal(options.headers.allow, 'GET, HEAD, OPTIONS')
  const ws = await call(`${url}/ws`)
  t.equal(ws.status, 426, 'GET /ws without Upgrade')
  t.equal(ws.headers.upgrade, 'websocket')
  for (const path of ['/other', '/__proto__', '/constructor', '/home/']) t.equal((await call(`${url}${path}`, 'POST', 'x')).status, 404, `POST ${path}: unknown path`)
})

t.test('through the balancer: 405 and Allow are relayed; only a real 404 becomes the SPEC message', async (t) => {
  for (const fastFront of ['true', 'false']) {
    const app = await startTestApp(t, ['--replicas', '2', `--fast-front=${fastFront}`])
    const post = await call(`${app.url}/home`, 'POST', '{}')
    t.equal(post.status, 405, `POST /home (fast front ${fastFront})`)
    t.equal(post.headers.allow, 'GET, HEAD, OPTIONS')
    t.same(post.json, { message: 'Method POST not allowed on /home; use GET, HEAD, OPTIONS', status: 'failure' })
    const head = await call(`${app.url}/home`, 'PATCH')
    t.equal(head.status, 405)
    const missing = await call(`${app.url}/other`, 'POST', '{}')
    t.equal(missing.status, 400)
    t.same(missing.json, { message: "<Error> '/other' endpoint does not exist in server replicas", status: 'failure' })
  }
})
