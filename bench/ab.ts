/**
 * Paired A/B comparison of two builds of the balancer: both run at once over the same three
 * replicas, and autocannon alternates between them (A B, B A, A B, ...), so a change in the
 * machine's load hits both alike. Reports CPU µs per request (user + system of the balancer
 * process, /proc/PID/stat) and req/s for every round, and the medians. This is how the
 * before/after numbers in docs/performance.md were taken; on a shared machine a difference
 * under ~5 % needs many rounds to show.
 *
 *   npm run build && node dist/bench/ab.js --a /path/to/old/dist --b dist [--connections 100] [--rounds 8] [--duration 3]
 *     [--a-flags "--metrics=false"] [--b-flags "--access-log json --access-log-file /dev/null"]
 *     [--a-node-flags "--max-semi-space-size=16"] [--b-node-flags ...] [--close]
 *
 * `--a-flags` / `--b-flags` add balancer flags to one side (split on spaces), so one build can
 * be compared with itself under two settings: `--a dist --b dist --a-flags --metrics=false`;
 * `--a-node-flags` / `--b-node-flags` give one side's node its own flags (V8's GC settings).
 * `--close` sends every request with `Connection: close`, so each one pays for a new
 * connection (accept, socket set-up, close): the per-connection path's A/B.
 *
 * A build is a `dist` directory with bench/serve.js in it (e.g. `git archive <commit> src replica
 * bench tsconfig.json package.json | tar -x -C /tmp/old && cd /tmp/old && ln -s <repo>/node_modules
 * && npx tsc -p .` gives /tmp/old/dist).
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { existsSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { childrenOf, cpuSeconds, freePort, startReplica, type Replica } from './procs.js'
import { median } from './stats.js'
import { parseValueFlags, takeSwitches } from './args.js'
import { loadAutocannon } from './deps.js'

/** From bench/node_modules, installed on first use (bench/deps.ts). */
const autocannon = loadAutocannon()

interface Options {
  a: string
  b: string
  aFlags: string[]
  bFlags: string[]
  aNodeFlags: string[]
  bNodeFlags: string[]
  connections: number
  rounds: number
  duration: number
  /** Every request with `Connection: close`: each one pays for a new connection. */
  close: boolean
}

function parseOptions(argv: string[]): Options {
  const o: Options = { a: '', b: '', aFlags: [], bFlags: [], aNodeFlags: [], bNodeFlags: [], connections: 100, rounds: 8, duration: 3, close: false }
  const flags = (v: string): string[] => v.split(' ').filter((f) => f !== '')
  const { on, rest } = takeSwitches(argv, ['--close'])
  o.close = on.has('--close')
  parseValueFlags(
    rest,
    {
      '--a': (v) => (o.a = resolve(v)),
      '--b': (v) => (o.b = resolve(v)),
      '--a-flags': (v) => (o.aFlags = flags(v)),
      '--b-flags': (v) => (o.bFlags = flags(v)),
      '--a-node-flags': (v) => (o.aNodeFlags = flags(v)),
      '--b-node-flags': (v) => (o.bNodeFlags = flags(v)),
      '--connections': (v) => (o.connections = Number(v)),
      '--rounds': (v) => (o.rounds = Number(v)),
      '--duration': (v) => (o.duration = Number(v)),
    },
    '--a DIST --b DIST [--a-flags FLAGS] [--b-flags FLAGS] [--a-node-flags FLAGS] [--b-node-flags FLAGS] [--connections N] [--rounds R] [--duration S] [--close]',
  )
  for (const dir of [o.a, o.b]) {
    if (!dir || !existsSync(join(dir, 'bench', 'serve.js'))) throw new Error(`--a and --b must be dist directories with bench/serve.js (got ${JSON.stringify(dir)})`)
  }
  if (!(o.connections >= 1 && o.rounds >= 1 && o.duration >= 1)) throw new Error('--connections, --rounds and --duration must be >= 1')
  return o
}

interface Build {
  label: string
  child: ChildProcess
  url: string
}

async function startBuild(label: string, dist: string, replicas: readonly Replica[], extraFlags: readonly string[], nodeFlags: readonly string[]): Promise<Build> {
  const port = await freePort()
  const upstreams = replicas.map((r) => ({ name: r.name, host: r.host, port: r.port }))
  const child = spawn(process.execPath, [...nodeFlags, join(dist, 'bench', 'serve.js'), '--port', String(port), '--host', '127.0.0.1', '--replicas', String(replicas.length), '--quiet', ...extraFlags], {
    // No admin listener (env, not a flag: the older dist may not know --admin-port).
    env: { ...process.env, LB_ADMIN_PORT: 'off', BENCH_UPSTREAMS: JSON.stringify(upstreams) },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  })
  process.once('exit', () => child.kill('SIGKILL'))
  await new Promise<void>((resolveReady, reject) => {
    const timer = setTimeout(() => reject(new Error(`${label} did not start in 20 s`)), 20_000)
    child.once('exit', (code) => reject(new Error(`${label} exited (${code})`)))
    child.on('message', (m: { type?: string }) => {
      if (m?.type === 'ready') {
        clearTimeout(timer)
        resolveReady()
      }
    })
  })
  return { label, child, url: `http://127.0.0.1:${port}/home` }
}

async function main(): Promise<void> {
  const o = parseOptions(process.argv.slice(2))
  const watchdog = setTimeout(() => {
    console.error('ab: taking far longer than planned; giving up')
    process.exit(1)
  }, (o.rounds * 2 * (o.duration + 1) + 120) * 1000)
  watchdog.unref()
  const replicas: Replica[] = []
  for (let i = 1; i <= 3; i++) replicas.push(await startReplica(`Server ${i}`))
  const builds = [await startBuild('A', o.a, replicas, o.aFlags, o.aNodeFlags), await startBuild('B', o.b, replicas, o.bFlags, o.bNodeFlags)]
  const shown = (dir: string, extra: string[], node: string[]): string => [...node.map((f) => `node ${f}`), dir, ...extra].join(' ')
  const headers: Record<string, string> = o.close ? { connection: 'close' } : {}
  console.log(`A = ${shown(o.a, o.aFlags, o.aNodeFlags)}\nB = ${shown(o.b, o.bFlags, o.bNodeFlags)}\n${o.rounds} rounds x ${o.duration} s each at ${o.connections} connections, alternating${o.close ? ', every request on a new connection (Connection: close)' : ''}`)
  for (const b of builds) await autocannon({ url: b.url, connections: o.connections, duration: 2, headers }) // warm-up (JIT)
  const results: Record<string, Array<{ us: number; rps: number }>> = { A: [], B: [] }
  for (let round = 0; round < o.rounds; round++) {
    const order = round % 2 === 0 ? builds : [...builds].reverse()
    const line: string[] = []
    for (const b of order) {
      // With --workers N in the flags, its workers and spare (its children) are its CPU too.
      const pids = [b.child.pid!, ...childrenOf(b.child.pid!)]
      const cpu0 = cpuSeconds(pids)
      const r = await autocannon({ url: b.url, connections: o.connections, duration: o.duration, headers })
      const us = ((cpuSeconds(pids) - cpu0) * 1e6) / Math.max(1, r.requests.total)
      const rps = r.requests.total / r.duration
      results[b.label]!.push({ us, rps })
      line.push(`${b.label} ${Math.round(rps)} req/s ${us.toFixed(1)} µs/req${r.errors + r.non2xx ? ` (${r.errors + r.non2xx} errors)` : ''}`)
    }
    console.log(`round ${round + 1}: ${line.join(', ')}`)
  }
  for (const label of ['A', 'B']) {
    const rs = results[label]!
    console.log(`${label}: median ${Math.round(median(rs.map((x) => x.rps)))} req/s, ${median(rs.map((x) => x.us)).toFixed(1)} µs CPU per request`)
  }
  const wins = results.B!.filter((x, i) => x.rps > results.A![i]!.rps).length
  const cheaper = results.B!.filter((x, i) => x.us < results.A![i]!.us).length
  console.log(`B served more req/s than A in ${wins} of ${o.rounds} rounds, and used less CPU per request in ${cheaper}`)
  for (const b of builds) {
    b.child.kill('SIGTERM')
    await once(b.child, 'exit')
  }
  await Promise.all(replicas.map((r) => r.stop()))
  clearTimeout(watchdog)
}

main().catch((err: Error) => {
  console.error(`ab: ${err.message}`)
  process.exit(1)
})
