/**
 * `npm run bench:cost`: what one request costs each proxy, from kernel counters. The balancer,
 * nginx and HAProxy (one worker each, keep-alive to the upstreams) run in front of the same
 * replicas, and the replica hit directly is the reference. Each target gets a fixed number of
 * requests from autocannon at each connection count while `perf stat` (bench/perf-counters.ts)
 * counts system calls, context switches and CPU time of the proxy's processes for exactly the
 * load window. Targets alternate across rounds (A B C D, D C B A, ...) so that a change in the
 * shared machine's load hits all alike; the table shows medians over the rounds.
 *
 * Per-request counts are stable on a noisy machine where req/s is not: they are the figures to
 * optimise. × direct is the median over rounds of (target req/s / direct req/s in the same
 * round). `node-relay` (bench/node-relay.ts) is the Node floor: a plain byte relay on Node's
 * net sockets to one replica, with no HTTP work at all, so the table shows how much of the
 * balancer's cost is its own and how much any Node proxy pays. A target that is not installed (nginx, haproxy: found on PATH or in /usr/sbin) is
 * skipped with a message; nothing is installed.
 *
 *   npm run bench:cost -- [--requests N] [--rounds R] [--connections 10,100] [--targets LIST] [--balancer-args "..."]
 */
import type Autocannon from 'autocannon'
import { cpus, loadavg } from 'node:os'
import { loadAutocannon } from './deps.js'
import { perfUnavailable, startWindow, type Counters } from './perf-counters.js'
import { startBalancer, startHaproxy, startNginx, startNodeRelay, startReplica, versionOf, which, type Managed, type Replica } from './procs.js'
import { median } from './stats.js'
import { parseValueFlags } from './args.js'

const autocannon = loadAutocannon()

const TARGETS = ['direct', 'balancer', 'node-relay', 'nginx', 'haproxy'] as const
type TargetName = (typeof TARGETS)[number]

interface Options {
  requests: number
  warmup: number
  rounds: number
  connections: number[]
  targets: TargetName[]
  balancerArgs: string[]
  path: string
}

const USAGE = '[--requests N] [--warmup N] [--rounds R] [--connections 10,100] [--targets direct,balancer,node-relay,nginx,haproxy] [--balancer-args "FLAGS"] [--path /home]'

function parseOptions(argv: string[]): Options {
  const o: Options = { requests: 20_000, warmup: 5_000, rounds: 5, connections: [10, 100], targets: [...TARGETS], balancerArgs: [], path: '/home' }
  parseValueFlags(
    argv,
    {
      '--requests': (v) => (o.requests = Number(v)),
      '--warmup': (v) => (o.warmup = Number(v)),
      '--rounds': (v) => (o.rounds = Number(v)),
      '--connections': (v) => (o.connections = v.split(',').map(Number)),
      '--targets': (v) => {
        const list = v.split(',').map((s) => s.trim())
        for (const t of list) if (!(TARGETS as readonly string[]).includes(t)) throw new Error(`unknown target ${t}; use ${TARGETS.join(',')}`)
        o.targets = list as TargetName[]
      },
      '--balancer-args': (v) => (o.balancerArgs = v.split(/\s+/).filter(Boolean)),
      '--path': (v) => (o.path = v),
    },
    USAGE,
  )
  if (!(Number.isInteger(o.requests) && o.requests >= 1000 && o.requests <= 1_000_000)) throw new Error('--requests must be an integer from 1000 to 1000000')
  if (!(Number.isInteger(o.warmup) && o.warmup >= 0 && o.warmup <= 1_000_000)) throw new Error('--warmup must be an integer from 0 to 1000000')
  if (!(Number.isInteger(o.rounds) && o.rounds >= 1 && o.rounds <= 50)) throw new Error('--rounds must be an integer from 1 to 50')
  if (o.connections.length === 0 || o.connections.some((c) => !Number.isInteger(c) || c < 1 || c > 1000)) throw new Error('--connections must be integers from 1 to 1000')
  if (!o.targets.includes('direct')) o.targets.unshift('direct') // × direct needs it
  return o
}

interface Target {
  name: TargetName
  url: string
  proc: Managed
}

interface Sample extends Counters {
  requests: number
  rps: number
  errors: number
}

/** One load window: `requests` requests at `connections`, counted on the target's processes. */
async function measure(t: Target, connections: number, requests: number): Promise<Sample> {
  const window = await startWindow(t.proc.cpuPids())
  // Our own clock, to the last response: with `amount`, autocannon ends (and counts its
  // `duration`) on its one-second tick, which would round every run up to whole seconds.
  const t0 = performance.now()
  let lastResponse = t0
  const r = await new Promise<Autocannon.Result>((resolveRun, reject) => {
    const instance = autocannon({ url: t.url, connections, amount: requests, pipelining: 1, timeout: 10 }, (err, result) => (err ? reject(err) : resolveRun(result)))
    instance.on('response', () => (lastResponse = performance.now()))
  })
  const seconds = (lastResponse - t0) / 1000
  const c = await window.stop()
  return { ...c, requests: r.requests.total, rps: r.requests.total / seconds, errors: r.errors + r.timeouts + r.non2xx }
}

async function startTarget(name: TargetName, replicas: readonly Replica[], o: Options): Promise<Target | undefined> {
  switch (name) {
    case 'direct':
      return { name, url: `http://${replicas[0]!.host}:${replicas[0]!.port}${o.path}`, proc: replicas[0]! }
    case 'balancer': {
      const b = await startBalancer(replicas, o.balancerArgs)
      return { name, url: b.url + o.path, proc: b }
    }
    case 'node-relay': {
      const r = await startNodeRelay(replicas[0]!)
      return { name, url: r.url + o.path, proc: r }
    }
    case 'nginx':
    case 'haproxy': {
      if (!which(name)) {
        console.log(`${name}: not installed (not on PATH or in /usr/sbin), skipped; e.g. apt-get install -y ${name}`)
        return undefined
      }
      const p = name === 'nginx' ? await startNginx(replicas, { workers: 1 }) : await startHaproxy(replicas, { workers: 1 })
      return { name, url: p.url + o.path, proc: p }
    }
  }
}

function fmt(v: number, digits: number): string {
  return Number.isFinite(v) ? v.toFixed(digits) : 'n/a'
}

async function main(): Promise<void> {
  const o = parseOptions(process.argv.slice(2))
  // Bounded: at worst every request at 1000 req/s, plus start-up.
  const budgetS = (o.rounds * o.connections.length * o.targets.length * (o.requests / 1000 + 5)) + (o.targets.length * o.connections.length * (o.warmup / 1000 + 5)) + 120
  const watchdog = setTimeout(() => {
    console.error(`cost: still running after ${Math.round(budgetS)} s; giving up`)
    process.exit(1)
  }, budgetS * 1000)
  watchdog.unref()

  const perf = perfUnavailable()
  console.log(`cost bench: ${o.requests} requests per run, ${o.rounds} rounds, connections ${o.connections.join(',')}; ${cpus().length} CPUs, load average ${loadavg().map((l) => l.toFixed(1)).join(' ')}`)
  console.log(perf ? `counters: /proc (${perf}); system calls not counted` : `counters: perf stat -e raw_syscalls:sys_enter,context-switches,task-clock -p PID (exactly the load window)`)
  for (const bin of ['nginx', 'haproxy'] as const) {
    const path = which(bin)
    if (path && o.targets.includes(bin)) console.log(`${bin}: ${versionOf(path, ['-v'])}`)
  }

  const replicas: Replica[] = []
  const targets: Target[] = []
  try {
    for (let i = 1; i <= 3; i++) replicas.push(await startReplica(`Server ${i}`))
    for (const name of o.targets) {
      const t = await startTarget(name, replicas, o)
      if (t) targets.push(t)
    }
    const samples = new Map<string, Sample[]>()
    const key = (name: string, c: number): string => `${name}@${c}`
    for (const c of o.connections) {
      if (o.warmup > 0) for (const t of targets) await autocannon({ url: t.url, connections: c, amount: o.warmup, pipelining: 1, timeout: 10 }) // JIT, pools
      for (let round = 0; round < o.rounds; round++) {
        const order = round % 2 === 0 ? targets : [...targets].reverse()
        const line: string[] = []
        for (const t of order) {
          const s = await measure(t, c, o.requests)
          const list = samples.get(key(t.name, c)) ?? []
          list.push(s)
          samples.set(key(t.name, c), list)
          line.push(`${t.name} ${Math.round(s.rps)} req/s ${fmt((s.cpuSeconds * 1e6) / s.requests, 1)} µs/req${s.errors ? ` (${s.errors} errors)` : ''}`)
        }
        console.error(`${c} conns, round ${round + 1}: ${line.join(', ')}`)
      }
    }

    console.log('')
    console.log('| conns | target | req/s | × direct | syscalls/req | context switches/req | CPU µs/req | user µs/req | kernel µs/req | errors |')
    console.log('|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|')
    for (const c of o.connections) {
      const direct = samples.get(key('direct', c))!
      for (const t of targets) {
        const s = samples.get(key(t.name, c))!
        const per = (f: (x: Sample) => number): number => median(s.map((x) => f(x) / x.requests))
        const ratio = median(s.map((x, i) => x.rps / direct[i]!.rps))
        const errors = s.reduce((n, x) => n + x.errors, 0)
        console.log(
          `| ${c} | ${t.name} | ${Math.round(median(s.map((x) => x.rps)))} | ${t.name === 'direct' ? '1' : ratio.toFixed(2)} | ${fmt(per((x) => x.syscalls), 2)} | ${fmt(per((x) => x.contextSwitches), 2)} | ${fmt(per((x) => x.cpuSeconds * 1e6), 1)} | ${fmt(per((x) => x.userSeconds * 1e6), 1)} | ${fmt(per((x) => x.systemSeconds * 1e6), 1)} | ${errors} |`,
        )
      }
    }
    console.log('')
    console.log(`Medians of ${o.rounds} rounds of ${o.requests} requests; counters cover each proxy's processes only (direct: the one replica); user/kernel split from /proc/PID/stat.`)
  } finally {
    for (const t of targets) if (t.name !== 'direct') await t.proc.stop()
    await Promise.all(replicas.map((r) => r.stop()))
    clearTimeout(watchdog)
  }
}

main().catch((err: Error) => {
  console.error(`cost: ${err.message}`)
  process.exit(1)
})
