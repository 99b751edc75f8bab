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
 * `--workers 1,2` runs every proxy once per worker count (the balancer with --workers N, nginx
 * with N worker processes, HAProxy with N threads), and a second table splits each target's cost
 * by process (the balancer's primary, each worker, the warm spare; nginx's master and workers),
 * next to what the replicas and the load generator (this process) spent on the same requests,
 * and how busy the whole machine was (/proc/stat). `--rate R` offers a fixed R req/s instead of
 * as many as the target answers; `--per-worker` multiplies the connections, the requests and
 * the rate by the worker count, so every worker carries what one process carried. `--events`
 * adds perf events (e.g. syscalls:sys_enter_epoll_pwait,syscalls:sys_enter_write) to the
 * per-process table, per request. `--close` sends every request with `Connection: close`, so
 * each one costs a new connection (accepting it, and with --workers N handing it to a worker).
 *
 *   npm run bench:cost -- [--requests N] [--rounds R] [--connections 10,100] [--targets LIST] [--workers 1,2]
 *     [--rate R] [--per-worker] [--close] [--events LIST] [--balancer-args "..."]
 */
import type Autocannon from 'autocannon'
import { readFileSync } from 'node:fs'
import { cpus, loadavg } from 'node:os'
import { loadAutocannon } from './deps.js'
import { perfUnavailable, startWindow, type Counters } from './perf-counters.js'
import { startBalancer, startHaproxy, startNginx, startNodeRelay, startReplica, versionOf, which, type Managed, type Replica } from './procs.js'
import { median } from './stats.js'
import { parseValueFlags, takeSwitches } from './args.js'

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
  workers: number[]
  /** Offered req/s (autocannon overallRate); undefined: as fast as answered. */
  rate: number | undefined
  /** Connections, requests and rate times the worker count. */
  perWorker: boolean
  /** Extra perf events counted per process (e.g. syscalls:sys_enter_epoll_pwait): a column each in the per-process table. */
  events: string[]
  /** Every request with `Connection: close`: a new connection each (what accepting costs). */
  close: boolean
}

const USAGE =
  '[--requests N] [--warmup N] [--rounds R] [--connections 10,100] [--targets direct,balancer,node-relay,nginx,haproxy] [--workers 1,2] [--rate R] [--per-worker] [--close] [--events LIST] [--balancer-args "FLAGS"] [--path /home]'

function parseOptions(argv: string[]): Options {
  const o: Options = { requests: 20_000, warmup: 5_000, rounds: 5, connections: [10, 100], targets: [...TARGETS], balancerArgs: [], path: '/home', workers: [1], rate: undefined, perWorker: false, events: [], close: false }
  const { on, rest } = takeSwitches(argv, ['--per-worker', '--close'])
  o.perWorker = on.has('--per-worker')
  o.close = on.has('--close')
  parseValueFlags(
    rest,
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
      '--workers': (v) => (o.workers = [...new Set(v.split(',').map(Number))]),
      '--rate': (v) => (o.rate = Number(v)),
      '--events': (v) => (o.events = v.split(',').map((e) => e.trim()).filter((e) => /^[\w:.-]+$/.test(e))),
    },
    USAGE,
  )
  if (!(Number.isInteger(o.requests) && o.requests >= 1000 && o.requests <= 1_000_000)) throw new Error('--requests must be an integer from 1000 to 1000000')
  if (!(Number.isInteger(o.warmup) && o.warmup >= 0 && o.warmup <= 1_000_000)) throw new Error('--warmup must be an integer from 0 to 1000000')
  if (!(Number.isInteger(o.rounds) && o.rounds >= 1 && o.rounds <= 50)) throw new Error('--rounds must be an integer from 1 to 50')
  if (o.connections.length === 0 || o.connections.some((c) => !Number.isInteger(c) || c < 1 || c > 1000)) throw new Error('--connections must be integers from 1 to 1000')
  if (o.workers.some((w) => !Number.isInteger(w) || w < 1 || w > 64)) throw new Error('--workers must be integers from 1 to 64')
  if (o.rate !== undefined && !(Number.isInteger(o.rate) && o.rate >= 1 && o.rate <= 1_000_000)) throw new Error('--rate must be an integer from 1 to 1000000 (req/s)')
  if (!o.targets.includes('direct')) o.targets.unshift('direct') // × direct needs it
  return o
}

interface Target {
  name: TargetName
  workers: number
  /** The name, plus ` xN` when several worker counts run. */
  key: string
  url: string
  proc: Managed
}

interface Sample extends Counters {
  requests: number
  rps: number
  errors: number
  /** Share of the whole machine's CPU time not idle during the window (/proc/stat). */
  busy: number
  /** Per process of the target (role), then `replicas` (the others) and `load generator`. */
  parts: Array<[string, Counters]>
}

/** Busy and total jiffies of all CPUs so far (/proc/stat's first line). */
function machineTicks(): { busy: number; total: number } {
  try {
    const f = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1, 9).map(Number)
    const total = f.reduce((a, b) => a + b, 0)
    return { busy: total - f[3]! - f[4]!, total }
  } catch {
    return { busy: NaN, total: NaN }
  }
}

/**
 * One load window: `requests` requests at `connections` (at `rate` req/s when given), counted on
 * each of the target's processes, on the other replicas and on this process (the load generator).
 */
async function measure(t: Target, replicas: readonly Replica[], connections: number, requests: number, rate: number | undefined, events: readonly string[], close: boolean): Promise<Sample> {
  const mine = t.proc.roles?.() ?? [['process', t.proc.cpuPids()]]
  const own = new Set(mine.flatMap(([, pids]) => pids))
  const groups: Array<[string, number[]]> = [...mine, ['replicas', replicas.map((r) => r.child.pid!).filter((pid) => !own.has(pid))], ['load generator', [process.pid]]]
  const windows = await Promise.all(groups.map(([, pids]) => startWindow(pids, events)))
  const m0 = machineTicks()
  // Our own clock, to the last response, and a stop there: with `amount`, autocannon ends (and
  // counts its `duration`) on its one-second tick, which would round every run up to whole
  // seconds and add up to a second of idle machine to every window.
  const t0 = performance.now()
  let lastResponse = t0
  let answered = 0
  const r = await new Promise<Autocannon.Result>((resolveRun, reject) => {
    // With `Connection: close` autocannon also counts against `amount` the next request it
    // writes on each connection the server is closing (never answered): only half of `amount`
    // would be answered. The stop at `requests` answers (below) is then what ends the run.
    const amount = close ? 2 * requests + 2 * connections : requests
    const options = { url: t.url, connections, amount, pipelining: 1, timeout: 10, ...(rate === undefined ? {} : { overallRate: rate }), ...(close ? { headers: { connection: 'close' } } : {}) }
    const instance = autocannon(options, (err, result) => (err ? reject(err) : resolveRun(result)))
    instance.on('response', () => {
      lastResponse = performance.now()
      if (++answered >= requests) instance.stop()
    })
  })
  const seconds = (lastResponse - t0) / 1000
  const m1 = machineTicks()
  const counts = await Promise.all(windows.map((w) => w.stop()))
  const parts = groups.map(([name], i): [string, Counters] => [name, counts[i]!])
  const sum = (f: (c: Counters) => number): number => counts.slice(0, mine.length).reduce((a, c) => a + f(c), 0)
  return {
    syscalls: sum((c) => c.syscalls),
    contextSwitches: sum((c) => c.contextSwitches),
    cpuSeconds: sum((c) => c.cpuSeconds),
    userSeconds: sum((c) => c.userSeconds),
    systemSeconds: sum((c) => c.systemSeconds),
    extra: Object.fromEntries(events.map((e) => [e, sum((c) => c.extra[e] ?? NaN)])),
    requests: r.requests.total,
    rps: r.requests.total / seconds,
    errors: r.errors + r.timeouts + r.non2xx,
    busy: (m1.busy - m0.busy) / (m1.total - m0.total),
    parts,
  }
}

async function startTarget(name: TargetName, workers: number, key: string, replicas: readonly Replica[], o: Options): Promise<Target | undefined> {
  switch (name) {
    case 'direct':
      return { name, workers, key, url: `http://${replicas[0]!.host}:${replicas[0]!.port}${o.path}`, proc: replicas[0]! }
    case 'balancer': {
      const b = await startBalancer(replicas, [...(workers > 1 ? ['--workers', String(workers)] : []), ...o.balancerArgs])
      return { name, workers, key, url: b.url + o.path, proc: b }
    }
    case 'node-relay': {
      // One process whatever the worker count: the floor of one Node process.
      const r = await startNodeRelay(replicas[0]!)
      return { name, workers, key, url: r.url + o.path, proc: r }
    }
    case 'nginx':
    case 'haproxy': {
      if (!which(name)) {
        console.log(`${name}: not installed (not on PATH or in /usr/sbin), skipped; e.g. apt-get install -y ${name}`)
        return undefined
      }
      const p = name === 'nginx' ? await startNginx(replicas, { workers }) : await startHaproxy(replicas, { workers })
      return { name, workers, key, url: p.url + o.path, proc: p }
    }
  }
}

function fmt(v: number, digits: number): string {
  return Number.isFinite(v) ? v.toFixed(digits) : 'n/a'
}

async function main(): Promise<void> {
  const o = parseOptions(process.argv.slice(2))
  const specs: Array<{ name: TargetName; workers: number; key: string }> = [{ name: 'direct', workers: 1, key: 'direct' }]
  for (const workers of o.workers) {
    for (const name of o.targets) {
      if (name === 'direct') continue
      // The Node floor is one process whatever the worker count: measured once.
      if (name === 'node-relay') {
        if (workers === o.workers[0]) specs.push({ name, workers: 1, key: name })
        continue
      }
      specs.push({ name, workers, key: o.workers.length > 1 ? `${name} x${workers}` : name })
    }
  }
  // With --per-worker a target of N workers gets N times the connections, requests and rate.
  const scale = (t: { workers: number }): number => (o.perWorker ? t.workers : 1)
  const units = specs.reduce((n, t) => n + scale(t), 0)
  // Bounded: at worst every request at 1000 req/s (or at the offered rate), plus start-up.
  const perThousand = Math.max(1, o.rate === undefined ? 1 : 1000 / o.rate)
  const budgetS = o.rounds * o.connections.length * units * ((o.requests / 1000) * perThousand + 5) + units * o.connections.length * (o.warmup / 1000 + 5) + 120
  const watchdog = setTimeout(() => {
    console.error(`cost: still running after ${Math.round(budgetS)} s; giving up`)
    process.exit(1)
  }, budgetS * 1000)
  watchdog.unref()

  const perf = perfUnavailable()
  const offered = o.rate === undefined ? '' : `, offered ${o.rate} req/s`
  console.log(
    `cost bench: ${o.requests} requests per run${offered}${o.close ? ', each on a new connection (Connection: close)' : ''}${o.perWorker ? ' (connections, requests and rate x the worker count)' : ''}, ${o.rounds} rounds, connections ${o.connections.join(',')}; ${cpus().length} CPUs, load average ${loadavg().map((l) => l.toFixed(1)).join(' ')}`,
  )
  console.log(perf ? `counters: /proc (${perf}); system calls not counted` : `counters: perf stat -e raw_syscalls:sys_enter,context-switches,task-clock -p PID (exactly the load window)`)
  for (const bin of ['nginx', 'haproxy'] as const) {
    const path = which(bin)
    if (path && o.targets.includes(bin)) console.log(`${bin}: ${versionOf(path, ['-v'])}`)
  }

  const replicas: Replica[] = []
  const targets: Target[] = []
  try {
    for (let i = 1; i <= 3; i++) replicas.push(await startReplica(`Server ${i}`))
    for (const spec of specs) {
      const t = await startTarget(spec.name, spec.workers, spec.key, replicas, o)
      if (t) targets.push(t)
    }
    const samples = new Map<string, Sample[]>()
    const key = (name: string, c: number): string => `${name}@${c}`
    for (const c of o.connections) {
      if (o.warmup > 0) {
        for (const t of targets) await autocannon({ url: t.url, connections: c * scale(t), amount: o.warmup * scale(t), pipelining: 1, timeout: 10, ...(o.close ? { headers: { connection: 'close' } } : {}) }) // JIT, pools
      }
      for (let round = 0; round < o.rounds; round++) {
        const order = round % 2 === 0 ? targets : [...targets].reverse()
        const line: string[] = []
        for (const t of order) {
          const k = scale(t)
          const s = await measure(t, replicas, c * k, o.requests * k, o.rate === undefined ? undefined : o.rate * k, o.events, o.close)
          const list = samples.get(key(t.key, c)) ?? []
          list.push(s)
          samples.set(key(t.key, c), list)
          line.push(`${t.key} ${Math.round(s.rps)} req/s ${fmt((s.cpuSeconds * 1e6) / s.requests, 1)} µs/req${s.errors ? ` (${s.errors} errors)` : ''}`)
        }
        console.error(`${c} conns, round ${round + 1}: ${line.join(', ')}`)
      }
    }

    const conns = (t: Target, c: number): string => (scale(t) === 1 ? String(c) : `${c} x${scale(t)}`)
    console.log('')
    console.log('| conns | target | req/s | × direct | syscalls/req | context switches/req | CPU µs/req | user µs/req | kernel µs/req | machine busy | errors |')
    console.log('|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|')
    for (const c of o.connections) {
      const direct = samples.get(key('direct', c))!
      for (const t of targets) {
        const s = samples.get(key(t.key, c))!
        const per = (f: (x: Sample) => number): number => median(s.map((x) => f(x) / x.requests))
        const ratio = median(s.map((x, i) => x.rps / direct[i]!.rps))
        const errors = s.reduce((n, x) => n + x.errors, 0)
        console.log(
          `| ${conns(t, c)} | ${t.key} | ${Math.round(median(s.map((x) => x.rps)))} | ${t.name === 'direct' ? '1' : ratio.toFixed(2)} | ${fmt(per((x) => x.syscalls), 2)} | ${fmt(per((x) => x.contextSwitches), 2)} | ${fmt(per((x) => x.cpuSeconds * 1e6), 1)} | ${fmt(per((x) => x.userSeconds * 1e6), 1)} | ${fmt(per((x) => x.systemSeconds * 1e6), 1)} | ${fmt(median(s.map((x) => x.busy * 100)), 0)} % | ${errors} |`,
        )
      }
    }
    console.log('')
    console.log(`Medians of ${o.rounds} rounds of ${o.requests} requests${offered}; counters cover each proxy's processes only (direct: the one replica); user/kernel split from /proc/PID/stat; machine busy: all CPUs, /proc/stat.`)

    console.log('')
    console.log('Per process, per request the target served (medians; replicas: the ones the target did not include; load generator: autocannon, this process):')
    console.log('')
    const short = (e: string): string => e.replace(/^syscalls:sys_enter_/, '')
    console.log(`| conns | target | process | CPU µs/req | user µs/req | kernel µs/req | context switches/req | syscalls/req |${o.events.map((e) => ` ${short(e)}/req |`).join('')}`)
    console.log(`|---:|---|---|---:|---:|---:|---:|---:|${o.events.map(() => '---:|').join('')}`)
    for (const c of o.connections) {
      for (const t of targets) {
        const s = samples.get(key(t.key, c))!
        for (const [i, [part]] of s[0]!.parts.entries()) {
          const per = (f: (x: Counters) => number): number => median(s.map((x) => f(x.parts[i]![1]) / x.requests))
          console.log(
            `| ${conns(t, c)} | ${t.key} | ${part} | ${fmt(per((x) => x.cpuSeconds * 1e6), 1)} | ${fmt(per((x) => x.userSeconds * 1e6), 1)} | ${fmt(per((x) => x.systemSeconds * 1e6), 1)} | ${fmt(per((x) => x.contextSwitches), 3)} | ${fmt(per((x) => x.syscalls), 2)} |${o.events.map((e) => ` ${fmt(per((x) => x.extra[e] ?? NaN), 3)} |`).join('')}`,
          )
        }
      }
    }
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
