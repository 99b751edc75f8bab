// --worker-accept shared: every worker accepts from the one listening socket (node:cluster's
// SCHED_NONE), so the primary does nothing per connection. Through the real command line: the
// primary's coordinator sets the policy (node:cluster fixes it once per process, before the
// first fork), and the spare that replaces a killed worker accepts from the same socket.
import t from 'tap'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { readdirSync, readFileSync, readlinkSync } from 'node:fs'
import { join } from 'node:path'
import { projectRoot } from '../../src/paths.js'
import { alive, call, waitFor } from '../fixtures/http.js'
import { childrenOf, commandOf, killAll } from '../fixtures/procs.js'

const entry = join(projectRoot, 'dist', 'src', 'main.js')

/** Inodes of the sockets listening on `port` (IPv4 and IPv6), from /proc/net/tcp*. */
function listeningInodes(port: number): Set<string> {
  const inodes = new Set<string>()
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text = ''
    try {
      text = readFileSync(file, 'utf8')
    } catch {
      continue
    }
    for (const line of text.split('\n').slice(1)) {
      const f = line.trim().split(/\s+/)
      // local_address is HEXIP:HEXPORT, st 0A is LISTEN, field 9 the inode.
      if (f.length > 9 && f[3] === '0A' && parseInt(f[1]!.split(':')[1]!, 16) === port) inodes.add(f[9]!)
    }
  }
  return inodes
}

/** Does process `pid` hold one of these socket inodes among its descriptors? */
function holds(pid: number, inodes: ReadonlySet<string>): boolean {
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`))
      if (m && inodes.has(m[1]!)) return true
    } catch {
      // closed meanwhile
    }
  }
  return false
}

t.test('shared: every worker holds the listening socket and serves new connections', { skip: process.platform !== 'linux' && 'reads /proc' }, async (t) => {
  const args = ['--port', '0', '--admin-port', 'off', '--host', '127.0.0.1', '--workers', '2', '--replicas', '2', '--worker-accept', 'shared']
  const child = spawn(process.execPath, [entry, ...args], { stdio: ['ignore', 'pipe', 'inherit'] })
  let out = ''
  child.stdout!.on('data', (d) => (out += d))
  t.teardown(() => {
    const left = childrenOf(child.pid!)
    if (child.exitCode === null) child.kill('SIGKILL')
    killAll(left)
  })
  await waitFor('the listening line', () => /and 2 workers \(pids \d+, \d+\)/.test(out), 30_000)
  const url = /listening on (http:\/\/\S+)/.exec(out)![1]!
  const [, a, b] = /and 2 workers \(pids (\d+), (\d+)\)/.exec(out)!
  const workers = [Number(a), Number(b)]
  const inodes = listeningInodes(Number(new URL(url).port))
  t.ok(inodes.size > 0, `a socket listens on ${url}`)
  // With rr (the default) only the primary holds it; the workers get each accepted connection over IPC.
  for (const pid of workers) t.ok(holds(pid, inodes), `worker ${pid} holds the listening socket`)

  // A connection per request (call() uses no keep-alive agent): all answered.
  let ok = 0
  for (let i = 0; i < 40; i++) if ((await call(`${url}/home`)).status === 200) ok++
  t.equal(ok, 40, '40 requests on 40 connections answered')

  // A worker dies: the warm spare takes its place and accepts from the same socket.
  const spareOf = (): number | undefined => childrenOf(child.pid!).find((c) => commandOf(c).includes('worker-main') && !workers.includes(c))
  await waitFor('the spare worker', () => spareOf() !== undefined, 15_000)
  const spare = spareOf()!
  process.kill(workers[0]!, 'SIGKILL')
  await waitFor('the spare to hold the listening socket', () => holds(spare, inodes), 10_000, 20)
  t.notOk(alive(workers[0]!), 'the killed worker is gone')
  ok = 0
  for (let i = 0; i < 20; i++) if ((await call(`${url}/home`)).status === 200) ok++
  t.equal(ok, 20, 'served after the spare took over')
  child.kill('SIGTERM')
  const [code] = await once(child, 'exit')
  t.equal(code, 0, 'SIGTERM: clean exit')
})
