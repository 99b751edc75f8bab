/**
 * The health checker as users run it: the built CLI (dist/src/main.js) in its own process,
 * with no TypeScript loader anywhere (NODE_OPTIONS cleared), so the worker must load
 * dist/src/health/worker.js. A frozen replica can only be found by that worker.
 */
import t from 'tap'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { projectRoot } from '../../src/paths.js'
import { call } from '../fixtures/http.js'
import { alive, freeze, signal, waitFor } from '../fixtures/health.js'

const entry = join(projectRoot, 'dist', 'src', 'main.js')

/** Child pids of `pid`, by the SERVER_ID in their environment. */
function replicaPids(pid: number): Map<string, number> {
  const out = new Map<string, number>()
  const children = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number)
  for (const child of children) {
    try {
      const env = readFileSync(`/proc/${child}/environ`, 'utf8').split('\0')
      const id = env.find((e) => e.startsWith('SERVER_ID='))
      if (id) out.set(id.slice('SERVER_ID='.length), child)
    } catch {
      // ended while we looked
    }
  }
  return out
}

t.test('the built balancer finds a frozen replica from its dist worker, replaces it, and drains on SIGTERM', { skip: process.platform !== 'linux' && 'needs /proc' }, async (t) => {
  const env = { ...process.env, NODE_OPTIONS: '' }
  const args = ['--port', '0', '--admin-port', '0', '--host', '127.0.0.1', '--replicas', '3', '--health-interval', '100', '--health-timeout', '300', '--drain-timeout', '2000']
  const child = spawn(process.execPath, [entry, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] })
  const pids: number[] = []
  t.teardown(() => {
    for (const pid of pids) signal(pid, 'SIGCONT')
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
    for (const pid of pids) signal(pid, 'SIGKILL')
  })
  let stdout = ''
  let stderr = ''
  child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d))
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d))
  const exited = once(child, 'exit')
  await waitFor('the balancer to listen', () => /listening on http:\/\/\S+/.test(stdout) || child.exitCode !== null, 30_000)
  const url = /listening on (http:\/\/\S+)/.exec(stdout)?.[1]
  t.ok(url, `started: ${stderr}`)

  const before = replicaPids(child.pid!)
  t.same([...before.keys()].sort(), ['Server 1', 'Server 2', 'Server 3'])
  pids.push(...before.values())
  freeze(t, before.get('Server 2')!)
  let replicas: string[] = []
  await waitFor(
    'the frozen replica to be replaced',
    async () => {
      replicas = ((await call(`${url}/rep`)).json as { message: { replicas: string[] } }).message.replicas
      return replicas.length === 3 && !replicas.includes('Server 2')
    },
    15_000,
    50,
  )
  t.match(stdout, /replica Server 2 is dead \(timeout after 300 ms; \d+ ms after the first failure\); replacing it/, 'the worker reported it')
  const fresh = replicas[2]!
  t.match(fresh, /^replica-[0-9a-f]{6}$/)
  const after = replicaPids(child.pid!)
  pids.push(after.get(fresh)!)
  for (let i = 0; i < 20; i++) t.equal((await call(`${url}/home`)).status, 200)

  const termAt = Date.now()
  child.kill('SIGTERM')
  const [code] = await exited
  t.equal(code, 0, 'exits 0 after SIGTERM')
  t.match(stdout, /SIGTERM: draining and stopping replicas[\s\S]*stopped/)
  t.ok(Date.now() - termAt < 10_000, `stopped ${Date.now() - termAt} ms after SIGTERM`)
  await waitFor('every replica to be gone, the frozen one too', () => pids.every((pid) => !alive(pid)), 10_000)
})
