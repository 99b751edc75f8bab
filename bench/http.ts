/**
 * `npm run bench`: HTTP throughput and latency of the balancer next to the replica hit
 * directly and next to nginx and HAProxy as consistent-hash proxies over the same replicas.
 *
 * Everything measured runs in its own process (bench/procs.ts); this process only drives
 * autocannon. Runs are interleaved (every target once per repetition, order rotating) and
 * repeated; the table reports medians, and each target's throughput as the median over the
 * repetitions of (target req/s / direct req/s), direct measured minutes apart at most.
 * Writes docs/bench/http.json (every run) and docs/bench/http.md (the table).
 *
 *   npm run bench -- --help
 */
import type Autocannon from 'autocannon'
import { spawnSync } from 'node:child_process'
import { mkdirSync, writeFileSync } from 'node:fs'
import { cpus, loadavg } from 'node:os'
import { join } from 'node:path'
import {
  cpuSeconds,
  root,
  startBalancer,
  startHaproxy,
  startNginx,
  startReplica,
  versionOf,
  which,
  type Managed,
  type Replica,
} from './procs.js'
import { median } from './stats.js'
import { parseRunFlags } from './args.js'
import { machineInfo, type MachineInfo } from './machine.js'
import { loadAutocannon } from './deps.js'

/** From bench/node_modules, installed on first use (bench/deps.ts). */
const autocannon = loadAutocannon()

/** `unpipelined`: the balancer again, with `--upstream-pipeline 1` (no upstream pipelining, see pool.ts). */
const TARGETS = ['direct', 'balancer', 'unpipelined', 'nginx', 'haproxy'] as const
type TargetName = (typeof TARGETS)[number]

interface Options {
  duration: number
  warmup: number
  repeats: number
  connections: number[]
  targets: TargetName[]
  replicas: number
  /** Worker counts to measure: the balancer's --workers, nginx's worker_processes, HAProxy's nbthread. */
  workers: number[]
  path: string
  install: boolean
  out: string
  balancerArgs: string[]
}

const HELP = `Usage: npm run bench -- [flags]

  --duration S       seconds per measured run (default 8)
  --warmup S         seconds of warm-up load per target before measuring (default 2)
  --repeats R        repetitions; the table shows medians (default 3, at least 1)
  --connections LIST concurrent connections, comma-separated (default 10,100)
  --targets LIST     any of direct,balancer,unpipelined,nginx,haproxy (default: all that are
                     installed); unpipelined is the balancer with --upstream-pipeline 1
  --replicas N       replicas behind the proxies (default 3)
  --workers LIST     worker counts, comma-separated (default 1): each proxy runs once per count,
                     the balancer with --workers N, nginx with N worker processes, HAProxy with
                     N threads (e.g. --workers 1,2 for the Scaling up table)
  --path P           request path (default /home)
  --balancer-args S  extra balancer flags, e.g. "--hash linear"
  --install          apt-get install -y nginx-light haproxy when missing (needs root)
  --out DIR          where http.json and http.md go (default docs/bench)
  --quick            shorter: --duration 3 --warmup 1 (still 3 repetitions)

With the defaults (5 targets, 2 connection counts, 3 x 8 s) a run takes about 5 minutes.`

function parseOptions(argv: string[]): Options {
  const o: Options = {
    duration: 8,
    warmup: 2,
    repeats: 3,
    connections: [10, 100],
    targets: [...TARGETS],
    replicas: 3,
    workers: [1],
    path: '/home',
    install: false,
    out: join(root, 'docs', 'bench'),
    balancerArgs: [],
  }
  let targetsGiven = false
  parseRunFlags(argv, o, HELP, (flag, value) => {
    switch (flag) {
      case '--targets': {
        const list = value.text().split(',').map((s) => s.trim())
        for (const t of list) if (!(TARGETS as readonly string[]).includes(t)) throw new Error(`unknown target ${t}; use ${TARGETS.join(',')}`)
        o.targets = list as TargetName[]
        targetsGiven = true
        return true
      }
      case '--replicas':
        o.replicas = Math.floor(value.num(1))
        return true
      case '--workers': {
        const list = value.text().split(',').map((w) => Number(w.trim()))
        if (!list.every((w) => Number.isInteger(w) && w >= 1 && w <= 64)) throw new Error(`--workers takes counts from 1 to 64, comma-separated, got ${value.text()}`)
        o.workers = [...new Set(list)]
        return true
      }
      case '--path':
        o.path = value.text()
        return true
      case '--balancer-args':
        o.balancerArgs = value.text().split(/\s+/).filter(Boolean)
        return true
      case '--install':
        o.install = true
        return true
      default:
        return false
    }
  })
  if (!o.targets.includes('direct')) o.targets.unshift('direct') // ratios need it
  ;(o as { targetsGiven?: boolean }).targetsGiven = targetsGiven
  return o
}

function ensureProxies(o: Options): void {
  const missing = (['nginx', 'haproxy'] as const).filter((t) => o.targets.includes(t) && !which(t))
  if (missing.length === 0) return
  if (o.install) {
    const pkgs = missing.map((m) => (m === 'nginx' ? 'nginx-light' : m))
    console.log(`installing ${pkgs.join(' ')} (apt-get)...`)
    const r = spawnSync('apt-get', ['install', '-y', ...pkgs], { stdio: 'inherit' })
    if (r.status !== 0) spawnSync('sh', ['-c', `apt-get update && apt-get install -y ${pkgs.join(' ')}`], { stdio: 'inherit' })
  }
  for (const t of missing) {
    if (which(t)) continue
    const explicit = (o as { targetsGiven?: boolean }).targetsGiven
    const note = `${t} is not installed: skipped (npm run bench -- --install installs nginx and haproxy with apt-get)`
    if (explicit) throw new Error(note)
    console.log(note)
    o.targets = o.targets.filter((x) => x !== t)
  }
}

/** One process (group) measured: a proxy at one worker count, or the replica itself (direct). */
interface Target {
  name: TargetName
  workers: number
  /** How the progress lines and the JSON name it: the name, plus ` xN` when several worker counts run. */
  key: string
}

interface Run {
  target: TargetName
  workers: number
  key: string
  connections: number
  repeat: number
  rps: number
  p50: number
  p90: number
  p99: number
  max: number
  errors: number
  non2xx: number
  requests: number
  cpuS: number
  loadgenCpuS: number
}

async function measure(url: string, connections: number, duration: number): Promise<Autocannon.Result> {
  return autocannon({ url, connections, duration, pipelining: 1, timeout: 10 })
}

async function main(): Promise<void> {
  const o = parseOptions(process.argv.slice(2))
  ensureProxies(o)
  const started = Date.now()
  const perRun = o.duration + 0.3
  const several = o.workers.length > 1
  const specs: Target[] = [{ name: 'direct', workers: 1, key: 'direct' }]
  for (const workers of o.workers) {
    for (const name of o.targets) if (name !== 'direct') specs.push({ name, workers, key: several ? `${name} x${workers}` : name })
  }
  const estimate = specs.length * (o.warmup + 1) + specs.length * o.connections.length * o.repeats * perRun + 5
  console.log(
    `bench: ${specs.map((t) => t.key).join(', ')} x ${o.connections.join('/')} connections x ${o.repeats} repetitions x ${o.duration} s; about ${Math.ceil(estimate / 60)} min`,
  )
  const loadBefore = loadavg()
  const load = loadBefore[0]!
  if (load > cpus().length * 0.5) {
    console.log(`warning: load average ${load.toFixed(2)} on ${cpus().length} cores: other processes are busy, so absolute numbers will be low and noisy (ratios suffer less)`)
  }
  // Bounded: if anything hangs, give up well after the estimate (the exit handler kills children).
  const watchdog = setTimeout(() => {
    console.error(`bench: still running after ${Math.round((estimate * 2 + 60) / 60)} min; giving up`)
    process.exit(1)
  }, (estimate * 2 + 60) * 1000)
  watchdog.unref()

  const replicas: Replica[] = []
  for (let i = 1; i <= o.replicas; i++) replicas.push(await startReplica(`Server ${i}`))
  const targets = new Map<string, Managed & { url: string }>()
  targets.set('direct', { ...replicas[0]!, url: `http://${replicas[0]!.host}:${replicas[0]!.port}` })
  for (const t of specs) {
    // --workers 1 is the single process (no primary, no IPC), as users run it by default.
    const workers = ['--workers', String(t.workers)]
    if (t.name === 'balancer') targets.set(t.key, await startBalancer(replicas, [...workers, ...o.balancerArgs]))
    if (t.name === 'unpipelined') targets.set(t.key, await startBalancer(replicas, ['--upstream-pipeline', '1', ...workers, ...o.balancerArgs]))
    if (t.name === 'nginx') targets.set(t.key, await startNginx(replicas, { workers: t.workers }))
    if (t.name === 'haproxy') targets.set(t.key, await startHaproxy(replicas, { workers: t.workers }))
  }
  console.log(`replicas: ${replicas.map((r) => `${r.name} :${r.port}`).join(', ')}; direct is ${replicas[0]!.name}`)

  const runs: Run[] = []
  try {
    if (o.warmup > 0) {
      process.stdout.write('warm-up:')
      for (const t of specs) {
        process.stdout.write(` ${t.key}`)
        await measure(targets.get(t.key)!.url + o.path, Math.max(...o.connections), o.warmup)
      }
      process.stdout.write('\n')
    }
    const total = specs.length * o.connections.length * o.repeats
    let n = 0
    for (let repeat = 0; repeat < o.repeats; repeat++) {
      // Rotate the order each repetition so no target always runs right after another.
      const order = specs.map((_, i) => specs[(i + repeat) % specs.length]!)
      for (const connections of o.connections) {
        for (const spec of order) {
          const target = targets.get(spec.key)!
          const pids = target.cpuPids()
          const cpu0 = cpuSeconds(pids)
          const gen0 = process.cpuUsage()
          const r = await measure(target.url + o.path, connections, o.duration)
          const cpuS = cpuSeconds(pids) - cpu0
          const gen = process.cpuUsage(gen0)
          const run: Run = {
            target: spec.name,
            workers: spec.workers,
            key: spec.key,
            connections,
            repeat,
            rps: r.requests.total / r.duration,
            p50: r.latency.p50,
            p90: r.latency.p90,
            p99: r.latency.p99,
            max: r.latency.max,
            errors: r.errors + r.timeouts + r.non2xx,
            non2xx: r.non2xx,
            requests: r.requests.total,
            cpuS,
            loadgenCpuS: (gen.user + gen.system) / 1e6,
          }
          runs.push(run)
          n++
          const eta = Math.round(((Date.now() - started) / n) * (total - n) / 1000)
          console.log(
            `[${String(n).padStart(2)}/${total}] c=${String(connections).padEnd(3)} ${spec.key.padEnd(several ? 11 : 8)} ` +
              `${fmt(run.rps).padStart(7)} req/s  p50 ${run.p50} ms  p99 ${run.p99} ms  errors ${run.errors}  ` +
              `cpu ${run.cpuS.toFixed(2)} s (${fmt(run.requests / Math.max(run.cpuS, 0.01))} req/cpu-s)  eta ${eta} s`,
          )
        }
      }
    }
  } finally {
    await Promise.all([...targets.entries()].filter(([k]) => k !== 'direct').map(([, t]) => t.stop()))
    await Promise.all(replicas.map((r) => r.stop()))
  }

  const summary = summarise(runs, specs, o)
  const meta = machine(o, loadBefore)
  mkdirSync(o.out, { recursive: true })
  writeFileSync(join(o.out, 'http.json'), JSON.stringify({ meta, options: o, summary, runs }, null, 2) + '\n')
  const md = markdown(summary, meta, o)
  writeFileSync(join(o.out, 'http.md'), md)
  console.log('\n' + md)
  console.log(`wrote ${join(o.out, 'http.json')} and ${join(o.out, 'http.md')} in ${Math.round((Date.now() - started) / 1000)} s`)
  clearTimeout(watchdog)
}

interface Row {
  target: TargetName
  workers: number
  connections: number
  rps: number
  rpsMin: number
  rpsMax: number
  ratio: number
  p50: number
  p99: number
  errors: number
  reqPerCpuS: number
  cpuPct: number
}

function summarise(runs: Run[], specs: readonly Target[], o: Options): Row[] {
  const rows: Row[] = []
  for (const connections of o.connections) {
    for (const { name: target, workers, key } of specs) {
      const mine = runs.filter((r) => r.key === key && r.connections === connections)
      if (mine.length === 0) continue
      // Ratio per repetition against the direct run of the same repetition, then the median.
      const ratios = mine.map((r) => {
        const d = runs.find((x) => x.target === 'direct' && x.connections === connections && x.repeat === r.repeat)
        return d ? r.rps / d.rps : NaN
      })
      rows.push({
        target,
        workers,
        connections,
        rps: median(mine.map((r) => r.rps)),
        rpsMin: Math.min(...mine.map((r) => r.rps)),
        rpsMax: Math.max(...mine.map((r) => r.rps)),
        ratio: median(ratios),
        p50: median(mine.map((r) => r.p50)),
        p99: median(mine.map((r) => r.p99)),
        errors: mine.reduce((s, r) => s + r.errors, 0),
        reqPerCpuS: median(mine.map((r) => r.requests / Math.max(r.cpuS, 0.01))),
        cpuPct: median(mine.map((r) => (100 * r.cpuS) / o.duration)),
      })
    }
  }
  return rows
}

interface Meta extends MachineInfo {
  nginx?: string
  haproxy?: string
  command: string
}

function machine(o: Options, loadBefore: number[]): Meta {
  const args = process.argv.slice(2)
  return {
    ...machineInfo(loadBefore),
    ...(o.targets.includes('nginx') ? { nginx: versionOf('nginx', ['-v']) } : {}),
    ...(o.targets.includes('haproxy') ? { haproxy: versionOf('haproxy', ['-v']) } : {}),
    command: `npm run bench${args.length ? ` -- ${args.join(' ')}` : ''}`,
  }
}

function fmt(n: number): string {
  return Math.round(n).toLocaleString('en-US')
}

const LABEL: Record<TargetName, string> = {
  direct: 'replica, direct',
  balancer: '**ring-balancer**',
  unpipelined: 'ring-balancer, --upstream-pipeline 1',
  nginx: 'nginx (hash consistent)',
  haproxy: 'HAProxy (hash-type consistent)',
}

function markdown(rows: Row[], meta: Meta, o: Options): string {
  const lines = [
    `Measured ${meta.date.slice(0, 16).replace('T', ' ')} UTC on ${meta.cores} x ${meta.cpu}, ${meta.memoryGiB} GiB, Linux ${meta.kernel}, Node ${meta.node}` +
      `${meta.nginx ? `, ${meta.nginx.replace('nginx version: ', '')}` : ''}${meta.haproxy ? `, ${meta.haproxy.replace(/ - https.*$/, '').replace(/ \d{4}\/\d\d\/\d\d$/, '')}` : ''}; commit ${meta.commit}.`,
    `Command: \`${meta.command}\` — ${o.repeats} interleaved repetition${o.repeats > 1 ? 's' : ''} of ${o.duration} s per cell, medians shown; ` +
      `${o.replicas} replicas; GET ${o.path}; autocannon in its own process; worker counts ${o.workers.join(', ')} ` +
      `(balancer --workers, nginx worker_processes, HAProxy nbthread; the balancer's CPU includes its primary and spare). ` +
      `Everything shares the machine's ${meta.cores} cores (load average before: ${meta.loadavgBefore.join(', ')}).`,
    '',
    '| target | workers | conns | req/s (median) | min–max | × direct | p50 ms | p99 ms | errors | req per CPU-s | CPU % |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
  ]
  for (const r of rows) {
    lines.push(
      `| ${LABEL[r.target]} | ${r.target === 'direct' ? '' : r.workers} | ${r.connections} | ${fmt(r.rps)} | ${fmt(r.rpsMin)}–${fmt(r.rpsMax)} | ${r.target === 'direct' ? '1' : r.ratio.toFixed(2)} | ` +
        `${r.p50} | ${r.p99} | ${r.errors} | ${fmt(r.reqPerCpuS)} | ${Math.round(r.cpuPct)} |`,
    )
  }
  lines.push(
    '',
    '× direct: median over repetitions of target req/s ÷ direct req/s in the same repetition. ' +
      'Latency from autocannon (1 ms resolution). req per CPU-s: requests served per second of CPU ' +
      '(user + system, all threads, /proc/PID/stat) used by the proxy process(es) — or by the one replica, for direct.',
  )
  for (const target of ['balancer', 'unpipelined'] as const) {
    const b100 = rows.find((r) => r.target === target && r.workers === 1 && r.connections === 100)
    const b10 = rows.find((r) => r.target === target && r.workers === 1 && r.connections === 10)
    if (!b100 || !b10) continue
    const ok = b100.ratio >= 0.4 && b100.errors === 0 && b10.errors === 0 && b10.p99 < 5
    const what = target === 'balancer' ? 'balancer (defaults)' : 'balancer with --upstream-pipeline 1'
    lines.push(
      '',
      `Target (issue 5): ≥ 0.40 × direct at 100 connections with zero errors, p99 < 5 ms at 10 connections — ${what}: ` +
        `${b100.ratio.toFixed(2)} ×, ${b100.errors + b10.errors} errors, p99 ${b10.p99} ms: **${ok ? 'met' : 'not met'}**.`,
    )
  }
  // Issue 17: per-worker efficiency (requests per CPU-second) may drop at most 10 % against one process.
  for (const row of rows.filter((r) => r.target === 'balancer' && r.workers > 1)) {
    const one = rows.find((r) => r.target === 'balancer' && r.workers === 1 && r.connections === row.connections)
    if (!one) continue
    const ratio = row.reqPerCpuS / one.reqPerCpuS
    lines.push(
      '',
      `Scaling (issue 17), ${row.connections} connections: --workers ${row.workers} serves ${fmt(row.reqPerCpuS)} req per CPU-s against ${fmt(one.reqPerCpuS)} for one process ` +
        `(${(100 * (ratio - 1)).toFixed(1)} %; target: no more than 10 % lower — **${ratio >= 0.9 ? 'met' : 'not met'}**), ${fmt(row.rps)} req/s against ${fmt(one.rps)}.`,
    )
  }
  return lines.join('\n') + '\n'
}

main().catch((err: Error) => {
  console.error(`bench: ${err.message}`)
  process.exit(1)
})
