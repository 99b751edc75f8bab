// The replica (SPEC 2), run as a real process from its built file.
import t, { type Test } from 'tap'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { replicaEntry } from '../../src/paths.js'
import { call } from '../fixtures/http.js'

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
  t.equal((await call(`${url}/home`, 'POST', 'x')).status, 404, 'only GET/HEAD on /home')
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
