// Stopping the balancer the ways a new user does: `kill <pid of npm start>` and Ctrl-C in a
// terminal (SIGINT to the whole foreground process group). Both must leave no balancer, no
// replica and no bound port behind, and Ctrl-C must not look like a crash ("replacing").
import t, { type Test } from 'tap'
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { projectRoot } from '../src/paths.js'
import { alive, waitFor } from './fixtures/http.js'
import { commandOf, descendantsOf, freePort, killAll, portIsFree, processGroupOf } from './fixtures/procs.js'

const pkg = JSON.parse(readFileSync(join(projectRoot, 'package.json'), 'utf8')) as { scripts: Record<string, string> }

t.test('every npm script that starts a long-running node process execs it (signals reach it)', async (t) => {
  for (const name of ['start', 'bench', 'profile', 'analysis', 'chaos']) {
    const script = pkg.scripts[name] ?? ''
    t.match(script, /(^|&& )exec node /, `${name}: ${script}`)
    t.notMatch(script.replace(/(^|&& )exec node [^&|;]*$/, ''), /\bnode /, `${name}: no other node process after the build`)
  }
})

interface Started {
  npm: ChildProcess
  port: number
  out: () => string
  /** The balancer and its replicas (every process below npm), as seen once it listened. */
  tree: number[]
}

/**
 * `npm start -- --port P` exactly as package.json says, from a copy of package.json whose only
 * change is a no-op `build` (the test suite already built dist/, and rebuilding it while other
 * test files run would race them). `group`: npm leads a process group of its own, as a
 * terminal's foreground job does.
 */
async function npmStart(t: Test, group: boolean): Promise<Started> {
  const dir = mkdtempSync(join(tmpdir(), 'rb-npm-start-'))
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ ...pkg, scripts: { ...pkg.scripts, build: 'true' } }, null, 2))
  symlinkSync(join(projectRoot, 'dist'), join(dir, 'dist'))
  symlinkSync(join(projectRoot, 'node_modules'), join(dir, 'node_modules'))
  const port = await freePort()
  const npm = spawn('npm', ['start', '--', '--port', String(port), '--host', '127.0.0.1', '--health-interval', '200'], {
    cwd: dir,
    detached: group,
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let out = ''
  npm.stdout!.on('data', (d) => (out += d))
  npm.stderr!.on('data', (d) => (out += d))
  const started: Started = { npm, port, out: () => out, tree: [] }
  t.teardown(() => {
    killAll([npm.pid!, ...started.tree, ...descendantsOf(npm.pid!)])
    rmSync(dir, { recursive: true, force: true })
  })
  await waitFor('the listening line', () => /listening on http:\/\//.test(out) || npm.exitCode !== null, 60_000)
  t.match(out, /listening on http:\/\/127\.0\.0\.1:\d+ with 3 replicas/, 'started')
  started.tree = descendantsOf(npm.pid!)
  return started
}

/** Nothing of it is left: npm exited, every process below it ended, its port can be bound. */
async function nothingLeft(t: Test, s: Started): Promise<void> {
  if (s.npm.exitCode === null && s.npm.signalCode === null) await once(s.npm, 'exit')
  await waitFor('the balancer and every replica to end', () => !s.tree.some(alive), 15_000).catch(() => {})
  t.same(
    s.tree.filter(alive).map((pid) => `${pid} ${commandOf(pid)}`),
    [],
    'no balancer or replica process left',
  )
  t.ok(await portIsFree(s.port), `port ${s.port} is free again`)
}

t.test('kill <pid of npm start> (SIGTERM) stops the balancer and every replica', async (t) => {
  const s = await npmStart(t, false)
  const balancers = s.tree.filter((pid) => commandOf(pid).includes('dist/src/main.js'))
  t.equal(balancers.length, 1, 'one balancer below npm')
  t.equal(s.tree.filter((pid) => commandOf(pid).includes('dist/replica/server.js')).length, 3, 'three replicas below it')
  s.npm.kill('SIGTERM')
  await nothingLeft(t, s)
  t.match(s.out(), /SIGTERM: draining and stopping replicas/)
  t.match(s.out(), /\nstopped\n/, 'the balancer drained and stopped')
})

t.test('Ctrl-C (SIGINT to the process group): replicas are not hit, nothing is replaced, nothing is left', async (t) => {
  const s = await npmStart(t, true)
  const group = s.npm.pid!
  const replicas = s.tree.filter((pid) => commandOf(pid).includes('dist/replica/server.js'))
  t.equal(replicas.length, 3)
  for (const pid of replicas) t.not(processGroupOf(pid), group, `replica ${pid} is outside the terminal's process group`)
  process.kill(-group, 'SIGINT')
  await nothingLeft(t, s)
  t.notMatch(s.out(), /replacing/, 'no replica was replaced during shutdown')
  t.notMatch(s.out(), /again: exiting now/, "npm's forwarded copy of the signal is not taken for a second Ctrl-C")
  t.match(s.out(), /\nstopped\n/, 'the balancer drained and stopped')
})
