// The command line as users run it: the built entry in a real process.
import t from 'tap'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { projectRoot } from '../src/paths.js'
import { alive, call, waitFor } from './fixtures/http.js'

const entry = join(projectRoot, 'dist', 'src', 'main.js')

/** Pids whose parent is `pid` (from /proc). */
function childrenOf(pid: number): number[] {
  const out: number[] = []
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue
    try {
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8')
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1])
      if (ppid === pid) out.push(Number(d))
    } catch {
      // the process ended while we looked
    }
  }
  return out
}

function run(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [entry, ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (d) => (stdout += d))
  child.stderr.on('data', (d) => (stderr += d))
  return once(child, 'exit').then(([code]) => ({ code: code as number | null, stdout, stderr }))
}

t.test('--help prints the flags and exits 0', async (t) => {
  const r = await run(['--help'])
  t.equal(r.code, 0)
  t.match(r.stdout, /Usage: ring-balancer/)
  for (const flag of ['--port', '--replicas', '--slots', '--vnodes', '--hash', '--probe', '--key']) t.match(r.stdout, flag)
})

t.test('a bad value exits 2 with a clear message and starts nothing', async (t) => {
  for (const [args, message] of [
    [['--slots', '0'], 'error: --slots must be an integer from 1 to 65536, got "0"'],
    [['--hash', 'nope'], 'error: --hash:'],
    [['--key', 'header:'], 'error: --key: header: needs a name'],
  ] as const) {
    const r = await run([...args])
    t.equal(r.code, 2, args.join(' '))
    t.ok(r.stderr.startsWith(message), r.stderr)
  }
})

t.test('starts 3 replicas, serves /home, and SIGTERM stops every child', async (t) => {
  const child = spawn(process.execPath, [entry, '--port', '0', '--admin-port', '0', '--host', '127.0.0.1'], { stdio: ['ignore', 'pipe', 'inherit'] })
  t.teardown(() => {
    if (child.exitCode === null) child.kill('SIGKILL')
  })
  let stdout = ''
  child.stdout.on('data', (d) => (stdout += d))
  await waitFor('the listening line', () => /listening on (http:\/\/\S+)/.test(stdout), 20_000)
  const url = /listening on (http:\/\/\S+)/.exec(stdout)![1]!
  t.match(stdout, /with 3 replicas: Server 1, Server 2, Server 3/)
  const replicas = childrenOf(child.pid!)
  t.equal(replicas.length, 3, 'three replica processes')
  const seen = new Set<string>()
  for (let i = 0; i < 60; i++) {
    const reply = await call(`${url}/home`)
    t.equal(reply.status, 200)
    seen.add((reply.json as { message: string }).message)
  }
  t.same([...seen].sort(), ['Hello from Server: Server 1', 'Hello from Server: Server 2', 'Hello from Server: Server 3'], 'random keys reach every replica')
  child.kill('SIGTERM')
  const [code] = await once(child, 'exit')
  t.equal(code, 0)
  t.match(stdout, /SIGTERM: draining and stopping replicas/)
  t.notOk(replicas.some(alive), 'no replica outlives the balancer')
})

t.test('replicas do not outlive a SIGKILLed balancer either', async (t) => {
  const child = spawn(process.execPath, [entry, '--port', '0', '--admin-port', '0', '--host', '127.0.0.1', '--replicas', '2'], { stdio: ['ignore', 'pipe', 'inherit'] })
  let stdout = ''
  child.stdout.on('data', (d) => (stdout += d))
  await waitFor('the listening line', () => /listening on/.test(stdout), 20_000)
  const replicas = childrenOf(child.pid!)
  t.equal(replicas.length, 2)
  child.kill('SIGKILL')
  await once(child, 'exit')
  await waitFor('orphaned replicas to exit', () => !replicas.some(alive), 5000)
  t.pass('replicas exit when their IPC channel closes')
})
