/**
 * TCP mode (L4) throughput next to a direct connection and HAProxy `mode tcp`, on loopback,
 * bounded in time:
 *
 *   npm run build && node dist/bench/tcp.js [--duration 5] [--warmup 1] [--repeats 3] [--connections 100] [--quick] [--out docs/bench]
 *
 * One replica process (dist/replica/server.js) serves every target, so the only difference
 * between targets is what sits in front of it:
 *   direct       autocannon -> replica
 *   tcp          autocannon -> balancer TCP mode (--tcp-port) -> replica
 *   haproxy-tcp  autocannon -> HAProxy `mode tcp`, `balance source` + `hash-type consistent`,
 *                `nbthread 1` -> replica (skipped, with a note, when haproxy is not installed)
 *   pipe         autocannon -> a bare node:net pipe (socket.pipe both ways, nothing else) -> replica,
 *                the floor for any proxy written on node:net
 *   http         autocannon -> balancer HTTP mode (L7) -> replica, for comparison
 * The load is GET /home over keep-alive connections (HTTP over L4 is still bytes). Runs are
 * interleaved (every target once per repetition, order rotating); the table shows the median
 * req/s of each target and the median over repetitions of (target / direct measured in the
 * same repetition). Writes docs/bench/tcp.json and docs/bench/tcp.md. Everything the bench
 * starts is stopped at the end, on Ctrl-C, or when the watchdog gives up.
 *
 * `npm run bench -- FLAGS` passes the same flags to bench/http.ts and to this bench: flags
 * only http.ts knows (--targets, --replicas, --workers, --path, --balancer-args, --install)
 * are accepted here and ignored.
 */
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { mkdirSync, writeFileSync } from 'node:fs'
import { connect } from 'node:net'
import { cpus, loadavg } from 'node:os'
import { join } from 'node:path'
import { freePort, root, startBalancer, startConfiguredProxy, startReplica, stopChild, track, versionOf, which, type BalancerProcess, type Managed } from './procs.js'
import { median, round } from './stats.js'
import { parseRunFlags } from './args.js'
import { machineInfo } from './machine.js'
import { setTimeout as sleep } from 'node:timers/promises'
import { loadAutocannon } from './deps.js'

/** From bench/node_modules, installed on first use (bench/deps.ts). */
const autocannon = loadAutocannon()

const TARGETS = ['direct', 'tcp', 'haproxy-tcp', 'pipe', 'http'] as const
type Target = (typeof TARGETS)[number]
/** The issue's target: balancer TCP mode at >= 0.65 of direct throughput at 100 connections. */
const GOAL = 0.65
const GOAL_CONNECTIONS = 100

interface Options {
  duration: number
  warmup: number
  repeats: number
  connections: number[]
  out: string
}

const HELP = `Usage: node dist/bench/tcp.js [flags]

  --duration S        seconds per measured run (default 5)
  --warmup S          seconds of warm-up load per target (default 1)
  --repeats R         repetitions; the table shows medians (default 3)
  --connections LIST  concurrent connections, comma-separated (default 100)
  --quick             shorter: --duration 3 --warmup 1
  --out DIR           where tcp.json and tcp.md go (default docs/bench)

Flags of bench/http.ts that do not apply here (--targets, --replicas, --workers, --path,
--balancer-args, --install) are accepted and ignored, so npm run bench -- FLAGS works.`

/** http.ts flags that take a value / take none; tcp.js ignores them. */
const HTTP_ONLY_WITH_VALUE = new Set(['--targets', '--replicas', '--workers', '--path', '--balancer-args'])
const HTTP_ONLY_BARE = new Set(['--install'])

function parseOptions(argv: string[]): Options {
  const o: Options = { duration: 5, warmup: 1, repeats: 3, connections: [GOAL_CONNECTIONS], out: join(root, 'docs', 'bench') }
  parseRunFlags(argv, o, HELP, (flag, value) => {
    if (HTTP_ONLY_WITH_VALUE.has(flag)) value.text()
    return HTTP_ONLY_WITH_VALUE.has(flag) || HTTP_ONLY_BARE.has(flag)
  })
  return o
}

/** A bare node:net pipe in its own process: the least a node:net TCP proxy can do. */
async function startPipe(port: number, to: number): Promise<Managed> {
  const code = `
    const net = require('node:net')
    net.createServer({ allowHalfOpen: true }, (c) => {
      const u = net.connect({ port: ${to}, host: '127.0.0.1', allowHalfOpen: true })
      c.pipe(u); u.pipe(c)
      c.on('error', () => u.destroy()); u.on('error', () => c.destroy())
    }).listen(${port}, '127.0.0.1', () => process.send('ready'))`
  const child = spawn(process.execPath, ['-e', code], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
  track(child)
  await once(child, 'message')
  return { label: 'pipe', child, cpuPids: () => [child.pid!], stop: () => stopChild(child) }
}

/** HAProxy in TCP mode over one replica: source-address consistent hash, one thread. */
function startHaproxyTcp(bin: string, replicaPort: number): Promise<BalancerProcess> {
  return startConfiguredProxy('haproxy-tcp', bin, 'haproxy.cfg', (_dir, port) => `
global
  nbthread 1
  maxconn 4096

defaults
  mode tcp
  timeout connect 5s
  timeout client 65s
  timeout server 65s

frontend fe
  bind 127.0.0.1:${port}
  default_backend replicas

backend replicas
  balance source
  hash-type consistent
  server s1 127.0.0.1:${replicaPort} maxconn 1000
`, (confPath) => ['-db', '-f', confPath])
}

async function waitPort(port: number, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect({ port, host: '127.0.0.1' }, () => {
        s.destroy()
        resolve(true)
      })
      s.on('error', () => resolve(false))
    })
    if (ok) return
    if (Date.now() > deadline) throw new Error(`nothing listens on port ${port} after ${timeoutMs} ms`)
    await sleep(50)
  }
}

interface Run {
  target: Target
  connections: number
  repetition: number
  rps: number
  p50: number
  p99: number
  errors: number
}

async function load(url: string, connections: number, seconds: number): Promise<Omit<Run, 'target' | 'connections' | 'repetition'>> {
  const r = await autocannon({ url, connections, duration: seconds, pipelining: 1, timeout: 10 })
  const errors = r.errors + r.timeouts + r.non2xx
  return { rps: r.requests.average, p50: r.latency.p50, p99: r.latency.p99, errors }
}

interface Row {
  target: Target
  connections: number
  rps: number
  ofDirect: number
  p50: number
  p99: number
  errors: number
}

async function main(): Promise<void> {
  const startedAt = Date.now()
  const o = parseOptions(process.argv.slice(2))
  const args = process.argv.slice(2)
  const command = process.env.npm_lifecycle_event === 'bench' ? `npm run bench${args.length ? ` -- ${args.join(' ')}` : ''}` : `node dist/bench/tcp.js${args.length ? ` ${args.join(' ')}` : ''}`
  const haproxyBin = which('haproxy')
  const notes: string[] = []
  const targets = TARGETS.filter((t) => t !== 'haproxy-tcp' || haproxyBin)
  if (!haproxyBin) notes.push('haproxy-tcp skipped: haproxy is not installed')
  const perRun = o.duration + 1
  const estimate = o.connections.length * (targets.length * (o.warmup + 1) + o.repeats * targets.length * perRun) + 15
  // Bounded: if anything hangs, give up (the exit handlers kill every child).
  const watchdog = setTimeout(() => {
    console.error(`tcp bench: still running after ${Math.round(estimate * 2 + 60)} s; giving up`)
    process.exit(1)
  }, (estimate * 2 + 60) * 1000)
  watchdog.unref()
  const loadBefore = loadavg()
  const started: Managed[] = []
  const runs: Run[] = []
  const rows: Row[] = []
  try {
    const replica = await startReplica('Server 1')
    started.push(replica)
    const tcpPort = await freePort()
    const balancer = await startBalancer([replica], ['--tcp-port', String(tcpPort)])
    started.push(balancer)
    const pipePort = await freePort()
    started.push(await startPipe(pipePort, replica.port))
    await waitPort(tcpPort)
    const urls: Partial<Record<Target, string>> = {
      direct: `http://127.0.0.1:${replica.port}/home`,
      tcp: `http://127.0.0.1:${tcpPort}/home`,
      pipe: `http://127.0.0.1:${pipePort}/home`,
      http: `${balancer.url}/home`,
    }
    if (haproxyBin) {
      const h = await startHaproxyTcp(haproxyBin, replica.port)
      started.push(h)
      urls['haproxy-tcp'] = `${h.url}/home`
    }
    console.log(
      `tcp bench: ${cpus().length} CPUs (${cpus()[0]?.model ?? '?'}), node ${process.version}; ${targets.join(', ')} x ${o.connections.join('/')} connections x ${o.repeats} x ${o.duration} s; about ${Math.ceil(estimate / 60)} min`,
    )
    for (const n of notes) console.log(`note: ${n}`)
    for (const connections of o.connections) {
      if (o.warmup > 0) for (const target of targets) await load(urls[target]!, connections, o.warmup)
      const ratios = new Map<Target, number[]>(targets.map((t) => [t, []]))
      for (let rep = 0; rep < o.repeats; rep++) {
        const order = targets.map((_, i) => targets[(i + rep) % targets.length]!)
        const thisRep = new Map<Target, number>()
        for (const target of order) {
          const r = await load(urls[target]!, connections, o.duration)
          runs.push({ target, connections, repetition: rep + 1, ...r })
          thisRep.set(target, r.rps)
          console.log(`  c=${connections} repetition ${rep + 1} ${target.padEnd(11)} ${Math.round(r.rps)} req/s  p50 ${r.p50} ms  p99 ${r.p99} ms${r.errors ? `  ${r.errors} errors` : ''}`)
        }
        for (const target of targets) ratios.get(target)!.push(thisRep.get(target)! / thisRep.get('direct')!)
      }
      for (const target of targets) {
        const mine = runs.filter((r) => r.target === target && r.connections === connections)
        rows.push({
          target,
          connections,
          rps: Math.round(median(mine.map((r) => r.rps))),
          ofDirect: round(median(ratios.get(target)!), 2),
          p50: median(mine.map((r) => r.p50)),
          p99: median(mine.map((r) => r.p99)),
          errors: mine.reduce((n, r) => n + r.errors, 0),
        })
      }
    }
  } finally {
    await Promise.allSettled([...started].reverse().map((m) => m.stop()))
  }

  const goalRow = rows.find((r) => r.target === 'tcp' && r.connections === GOAL_CONNECTIONS)
  const goal = goalRow ? { measured: true, ofDirect: goalRow.ofDirect, met: goalRow.ofDirect >= GOAL } : { measured: false, ofDirect: null, met: null }
  const haproxyRow = rows.find((r) => r.target === 'haproxy-tcp' && r.connections === GOAL_CONNECTIONS)
  const meta = {
    ...machineInfo(loadBefore),
    ...(haproxyBin ? { haproxy: versionOf(haproxyBin, ['-v']) } : {}),
    command,
  }
  const goalText = goal.measured
    ? `Target (balancer TCP mode >= ${GOAL} x direct at ${GOAL_CONNECTIONS} connections): **${goal.met ? 'met' : 'not met'}** (${goal.ofDirect} x direct${haproxyRow ? `; HAProxy mode tcp ${haproxyRow.ofDirect} x in the same runs` : ''}).`
    : `Target (balancer TCP mode >= ${GOAL} x direct at ${GOAL_CONNECTIONS} connections): not measured in this run (no ${GOAL_CONNECTIONS}-connection runs).`
  const md = [
    '# TCP mode (L4) bench',
    '',
    `${meta.date} · ${meta.cores} x ${meta.cpu}, ${meta.memoryGiB} GiB, Linux ${meta.kernel} · node ${meta.node}${meta.haproxy ? ` · ${meta.haproxy}` : ''} · commit ${meta.commit} · load average before ${meta.loadavgBefore.join(' ')}`,
    '',
    `Command: \`${command}\``,
    '',
    `One replica behind every target; GET /home over keep-alive connections (autocannon, pipelining 1); ${o.repeats} interleaved repetitions x ${o.duration} s per target (order rotating), medians; "x direct" is the median over repetitions of target / direct measured in the same repetition. Targets: direct (the replica), tcp (balancer --tcp-port), haproxy-tcp (HAProxy mode tcp, balance source + hash-type consistent, nbthread 1), pipe (a bare node:net socket.pipe both ways), http (balancer HTTP mode, L7).`,
    '',
    ...notes.map((n) => `Note: ${n}.`),
    ...(notes.length ? [''] : []),
    '| connections | target | req/s (median) | x direct | p50 ms | p99 ms | errors |',
    '|---|---|---|---|---|---|---|',
    ...rows.map((r) => `| ${r.connections} | ${r.target} | ${r.rps} | ${r.ofDirect.toFixed(2)} | ${r.p50} | ${r.p99} | ${r.errors} |`),
    '',
    goalText,
    '',
    'The machine may be shared and busy: absolute req/s move between runs; the paired ratios move less. Every run is in tcp.json.',
    '',
  ].join('\n')
  mkdirSync(o.out, { recursive: true })
  writeFileSync(join(o.out, 'tcp.json'), JSON.stringify({ meta, options: o, notes, goal: { threshold: GOAL, connections: GOAL_CONNECTIONS, ...goal }, summary: rows, runs }, null, 2) + '\n')
  writeFileSync(join(o.out, 'tcp.md'), md)
  console.log('\n' + md)
  console.log(`wrote ${join(o.out, 'tcp.json')} and ${join(o.out, 'tcp.md')} in ${Math.round((Date.now() - startedAt) / 1000)} s`)
  clearTimeout(watchdog)
}

main().catch((err: unknown) => {
  console.error(err)
  process.exit(1)
})
