// The process provider with real child processes: start, stop, exit notices, failures, close.
import t from 'tap'
import { writeFileSync, mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ProcessProvider } from '../../src/replicas/process.js'
import { alive, call, waitFor } from '../fixtures/http.js'

t.test('start resolves once the heartbeat answers; stop ends the process', async (t) => {
  const p = new ProcessProvider({ startTimeoutMs: 10_000 })
  t.teardown(() => p.close())
  t.same(await p.init(), [], 'nothing to adopt')
  const h = await p.start('Server 1')
  t.equal(h.name, 'Server 1')
  t.equal(h.host, '127.0.0.1')
  t.equal((await call(`http://${h.host}:${h.port}/heartbeat`)).status, 200)
  t.same((await call(`http://${h.host}:${h.port}/home`)).json, { message: 'Hello from Server: Server 1', status: 'successful' })
  const pid = p.pidOf('Server 1')!
  t.equal(String(pid), h.id)
  await t.rejects(p.start('Server 1'), /already running/)
  t.same(p.list().map((x) => x.name), ['Server 1'])
  await p.stop('Server 1')
  t.notOk(alive(pid), 'process gone when stop resolves')
  t.same(p.list(), [])
  await p.stop('Server 1')
  t.pass('stopping an unknown name is a no-op')
})

t.test('a replica that dies on its own is reported once; one stopped on purpose is not', async (t) => {
  const p = new ProcessProvider({ startTimeoutMs: 10_000 })
  t.teardown(() => p.close())
  const exits: string[] = []
  p.onExit((name) => exits.push(name))
  await p.start('a')
  await p.start('b')
  process.kill(p.pidOf('a')!, 'SIGKILL')
  await waitFor('exit notice for a', () => exits.length === 1)
  t.same(exits, ['a'])
  await p.stop('b')
  t.same(exits, ['a'], 'no notice for a deliberate stop')
  t.same(p.list(), [])
})

t.test('a replica that cannot start rejects with the reason and leaves no process', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'rb-'))
  const crash = join(dir, 'crash.mjs')
  writeFileSync(crash, "console.error('boom: no config'); process.exit(4)\n")
  const p = new ProcessProvider({ entry: crash, startTimeoutMs: 5000 })
  await t.rejects(p.start('x'), /^replica "x" exited during start \(code 4\): boom: no config$/)
  t.same(p.list(), [])

  const silent = join(dir, 'silent.mjs')
  writeFileSync(silent, 'setInterval(() => {}, 1000)\n')
  const q = new ProcessProvider({ entry: silent, startTimeoutMs: 300 })
  await t.rejects(q.start('y'), /did not start listening within 300 ms/)
  t.same(q.list(), [])

  await t.rejects(new ProcessProvider({ entry: join(dir, 'missing.js'), startTimeoutMs: 100 }).init(), /replica server not built/)
})

t.test('close stops every replica', async (t) => {
  const p = new ProcessProvider({ startTimeoutMs: 10_000 })
  await Promise.all(['a', 'b', 'c'].map((n) => p.start(n)))
  const pids = ['a', 'b', 'c'].map((n) => p.pidOf(n)!)
  t.ok(pids.every(alive))
  await p.close()
  t.notOk(pids.some(alive))
})

t.test('a frozen replica stops at once, not after the SIGKILL grace period', async (t) => {
  const p = new ProcessProvider({ startTimeoutMs: 10_000, stopTimeoutMs: 20_000 })
  t.teardown(() => p.close())
  await p.start('frozen')
  const pid = p.pidOf('frozen')!
  process.kill(pid, 'SIGSTOP')
  const started = Date.now()
  await p.stop('frozen')
  t.notOk(alive(pid))
  t.ok(Date.now() - started < 10_000, `stopped in ${Date.now() - started} ms, well before the 20 s grace`)
})
