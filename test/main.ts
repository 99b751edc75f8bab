// The command line as users run it: the built entry in a real process.
import t from 'tap'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { createServer } from 'node:net'
import { join } from 'node:path'
import { projectRoot } from '../src/paths.js'
import { alive, call, waitFor } from './fixtures/http.js'
import { childrenOf } from './fixtures/procs.js'

const entry = join(projectRoot, 'dist', 'src', 'main.js')

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

t.test('every listener is logged with its real bound address', async (t) => {
  const child = spawn(process.execPath, [entry, '--port', '0', '--tcp-port', '0', '--host', '127.0.0.1', '--replicas', '1'], { stdio: ['ignore', 'pipe', 'inherit'] })
  t.teardown(() => {
    if (child.exitCode === null) child.kill('SIGKILL')
  })
  let stdout = ''
  child.stdout.on('data', (d) => (stdout += d))
  await waitFor('the try line', () => /try: curl/.test(stdout), 20_000)
  const http = /^ {2}HTTP +127\.0\.0\.1:(\d+)$/m.exec(stdout)
  const tcp = /^ {2}TCP mode +127\.0\.0\.1:(\d+)$/m.exec(stdout)
  t.ok(http, 'the HTTP listener line')
  t.ok(tcp, 'the TCP mode listener line')
  t.not(http?.[1], '0', 'the bound port, not the configured 0')
  t.equal((await call(`http://127.0.0.1:${http?.[1]}/home`)).status, 200, 'the logged HTTP address answers')
  const viaTcp = await call(`http://127.0.0.1:${tcp?.[1]}/home`)
  t.equal(viaTcp.status, 200, 'the logged TCP mode address answers')
  child.kill('SIGTERM')
  await once(child, 'exit')
})

t.test('a port in use: the error names the flag and env variable, before any replica starts', async (t) => {
  const blocker = createServer()
  await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve))
  t.teardown(() => blocker.close())
  const port = (blocker.address() as { port: number }).port
  const started = Date.now()
  const http = await run(['--port', String(port), '--host', '127.0.0.1'])
  t.equal(http.code, 1)
  t.equal(http.stderr.trim(), `error: could not start the balancer: the HTTP port is in use: 127.0.0.1:${port} (EADDRINUSE); choose another port with --port or LB_PORT`)
  t.notMatch(http.stdout, /replica/, 'no replica was started')
  t.ok(Date.now() - started < 10_000, 'fails at once, without waiting for replicas')
  const tcp = await run(['--port', '0', '--tcp-port', String(port), '--host', '127.0.0.1'])
  t.equal(tcp.code, 1)
  t.match(tcp.stderr, `the TCP mode port is in use: 127.0.0.1:${port} (EADDRINUSE); choose another port with --tcp-port or LB_TCP_PORT`)
  t.notMatch(tcp.stdout, /replica/, 'no replica was started')
})

t.test('LB_PORT=abc is reported as LB_PORT', async (t) => {
  const child = spawn(process.execPath, [entry], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, LB_PORT: 'abc' } })
  let stderr = ''
  child.stderr.on('data', (d) => (stderr += d))
  const [code] = await once(child, 'exit')
  t.equal(code, 2)
  t.equal(stderr.trim(), 'error: LB_PORT must be an integer from 0 to 65535, got "abc"')
})
