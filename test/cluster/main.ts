// The command line with --workers 2, as users run it: the primary prints its workers, serves
// through them, and SIGTERM (or a SIGKILLed primary) leaves no worker, spare or replica behind.
import t, { type Test } from 'tap'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { join } from 'node:path'
import { projectRoot } from '../../src/paths.js'
import { alive, call, waitFor } from '../fixtures/http.js'
import { childrenOf, commandOf, killAll } from '../fixtures/procs.js'

const entry = join(projectRoot, 'dist', 'src', 'main.js')

function start(t: Test): { child: ReturnType<typeof spawn>; out: () => string } {
  const child = spawn(process.execPath, [entry, '--port', '0', '--admin-port', '0', '--host', '127.0.0.1', '--workers', '2'], { stdio: ['ignore', 'pipe', 'inherit'] })
  let stdout = ''
  child.stdout!.on('data', (d) => (stdout += d))
  t.teardown(() => {
    const left = childrenOf(child.pid!)
    if (child.exitCode === null) child.kill('SIGKILL')
    killAll(left)
  })
  return { child, out: () => stdout }
}

/** The primary's children: replicas (dist/replica) and workers and the spare (worker-main). */
function kinds(pid: number): { replicas: number[]; workers: number[] } {
  const children = childrenOf(pid)
  return { replicas: children.filter((c) => commandOf(c).includes('replica')), workers: children.filter((c) => commandOf(c).includes('worker-main')) }
}

t.test('--workers 2: serves through its workers; SIGTERM stops every worker and replica', async (t) => {
  const { child, out } = start(t)
  await waitFor('the listening line', () => /listening on (http:\/\/\S+)/.test(out()), 30_000)
  const url = /listening on (http:\/\/\S+)/.exec(out())![1]!
  const printed = /and 2 workers \(pids (\d+), (\d+)\)/.exec(out())
  t.ok(printed, `the listening line names the workers: ${out()}`)
  for (let i = 0; i < 20; i++) t.equal((await call(`${url}/home`)).status, 200)
  // Two workers and, once it is up, the spare.
  await waitFor('the spare worker', () => kinds(child.pid!).workers.length === 3, 15_000)
  const { replicas, workers } = kinds(child.pid!)
  t.equal(replicas.length, 3, 'three replicas')
  t.ok([printed![1], printed![2]].every((pid) => workers.includes(Number(pid))), 'the printed workers are children of the primary')
  child.kill('SIGTERM')
  const [code] = await once(child, 'exit')
  t.equal(code, 0)
  t.notOk([...replicas, ...workers].some(alive), 'no worker, spare or replica outlives the primary')
})

t.test('--workers 2: a SIGKILLed primary leaves nothing behind either', async (t) => {
  const { child, out } = start(t)
  await waitFor('the listening line', () => /listening on/.test(out()), 30_000)
  await waitFor('the spare worker', () => kinds(child.pid!).workers.length === 3, 15_000)
  const { replicas, workers } = kinds(child.pid!)
  child.kill('SIGKILL')
  await once(child, 'exit')
  // Workers exit when their IPC channel closes; replicas do too (their own channel).
  await waitFor('every child to exit', () => ![...replicas, ...workers].some(alive), 10_000)
  t.pass('workers, spare and replicas exited')
})
