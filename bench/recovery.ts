/**
 * A-3: how fast a dead replica is found and replaced, and what users see meanwhile.
 *
 *   node dist/bench/recovery.js [--kills 5] [--freezes 3] [--checker-runs 5] [--saturate 10]
 *                               [--concurrency 32] [-- balancer flags, e.g. --health-timeout 1000]
 *
 * Also the A-3 section of `npm run analysis` (it imports `recovery`). Every scenario runs the
 * real CLI (dist/src/main.js) in its own process, with replicas as its child processes, while
 * this process keeps a steady, bounded stream of GET /home on keep-alive connections going and
 * polls GET /rep every 10 ms (what a user would see):
 *   kill     SIGKILL a replica. Found by the process exit and by the proxy (refused/reset).
 *   freeze   SIGSTOP a replica: it still accepts connections but never answers, so only the
 *            health checker (timeouts) can find it.
 *   checker  The checker alone (no exit events, no traffic, as for a container whose `die`
 *            event is lost): a HealthMonitor in this process against real replicas, SIGKILL
 *            (refused probes) and SIGSTOP (timed-out probes) at a random phase of the interval.
 *   saturate A replica-saturating load for some seconds: healthy replicas must never be
 *            declared dead (false deaths), whatever the heartbeat latency does.
 * "Found dead" is when the name leaves /rep; "N back" is when /rep shows N again with a new
 * name. Run on its own, it writes docs/recovery/recovery.{md,json,svg}.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { Agent, request } from 'node:http'
import { cpus, loadavg } from 'node:os'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { root, startMain, type BalancerProcess } from './procs.js'
import type { AnalysisContext, SectionResult } from './analysis-kit.js'
import { barChart } from './svg.js'
import { median, round } from './stats.js'
import { loadConfig } from '../src/config.js'
import { HealthMonitor, type HealthReport } from '../src/health/monitor.js'
import { ProcessProvider } from '../src/replicas/process.js'
import type { ReplicaHandle } from '../src/replicas/provider.js'
import { setTimeout as sleep } from 'node:timers/promises'

export interface RecoveryOptions {
  kills: number
  freezes: number
  checkerRuns: number
  saturateSeconds: number
  concurrency: number
  /** Extra balancer flags (health settings to compare). */
  args: string[]
}

/** Starts the real CLI with these flags (bench/procs.ts startMain, or the analysis context's). */
type StartMain = (args: readonly string[]) => Promise<BalancerProcess>

const DEFAULTS: RecoveryOptions = { kills: 5, freezes: 3, checkerRuns: 5, saturateSeconds: 10, concurrency: 32, args: [] }

interface Run {
  /** ms from the signal until the name left /rep (or the checker reported it down). */
  foundMs: number
  /** ms from the signal until /rep showed N again with a new name (undefined: checker only). */
  backMs?: number
}

interface Scenario {
  name: string
  how: string
  runs: Run[]
  requests: number
  failed: number
  failures: string[]
  slowestMs: number
}

/** A scenario with nothing measured yet. */
function scenario(name: string, how: string): Scenario {
  return { name, how, runs: [], requests: 0, failed: 0, failures: [], slowestMs: 0 }
}


/** Steady bounded load: `concurrency` loops of GET /home over keep-alive, until stop(). */
class Load {
  sent = 0
  failed = 0
  failures: string[] = []
  slowestMs = 0
  private completed = 0
  private stopped = false
  private readonly agent: Agent
  private readonly loops: Promise<void[]>

  constructor(
    private readonly url: string,
    concurrency: number,
    maxRequests = 2_000_000,
  ) {
    this.agent = new Agent({ keepAlive: true, maxSockets: concurrency })
    const loop = async (): Promise<void> => {
      while (!this.stopped && this.sent < maxRequests) {
        this.sent++
        await this.one()
      }
    }
    this.loops = Promise.all(Array.from({ length: concurrency }, loop))
  }

  private one(): Promise<void> {
    return new Promise((resolve) => {
      const started = performance.now()
      const done = (failure?: string): void => {
        this.slowestMs = Math.max(this.slowestMs, performance.now() - started)
        this.completed++
        if (failure !== undefined) {
          this.failed++
          if (this.failures.length < 20) this.failures.push(failure)
        }
        resolve()
      }
      const req = request(`${this.url}/home`, { agent: this.agent }, (res) => {
        res.resume()
        res.on('error', (err: NodeJS.ErrnoException) => done(`response ${err.code ?? err.message}`))
        res.on('end', () => done(res.statusCode === 200 ? undefined : `status ${res.statusCode}`))
      })
      req.on('error', (err: NodeJS.ErrnoException) => done(err.code ?? err.message))
      req.setTimeout(30_000, () => req.destroy(Object.assign(new Error('client timeout'), { code: 'CLIENT_TIMEOUT' })))
      req.end()
    })
  }

  /** Wait until `n` more requests completed (the load is flowing), within a deadline. */
  async more(n: number, timeoutMs = 30_000): Promise<void> {
    const target = this.completed + n
    const deadline = Date.now() + timeoutMs
    while (this.completed < target) {
      if (Date.now() > deadline) throw new Error(`load stalled: ${n} requests did not complete within ${timeoutMs} ms`)
      await sleep(5)
    }
  }

  async stop(): Promise<void> {
    this.stopped = true
    await this.loops
    this.agent.destroy()
  }
}

interface Membership {
  N: number
  replicas: string[]
}

const repAgent = new Agent({ keepAlive: true, maxSockets: 1 })

function rep(url: string): Promise<Membership> {
  return new Promise((resolve, reject) => {
    const req = request(`${url}/rep`, { agent: repAgent }, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (d: string) => (body += d))
      res.on('end', () => {
        try {
          resolve((JSON.parse(body) as { message: Membership }).message)
        } catch (err) {
          reject(err)
        }
      })
    })
    req.on('error', reject)
    req.end()
  })
}

/** Poll /rep every 10 ms until `ok`; resolves with the time it first held. */
async function until(url: string, what: string, ok: (m: Membership) => boolean, timeoutMs = 60_000): Promise<number> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const m = await rep(url).catch(() => undefined)
    if (m && ok(m)) return Date.now()
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await sleep(10)
  }
}

/** Replica pids of a running balancer (its children), by SERVER_ID. Linux /proc. */
function replicaPids(pid: number): Map<string, number> {
  const out = new Map<string, number>()
  const children = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number)
  for (const child of children) {
    try {
      const id = readFileSync(`/proc/${child}/environ`, 'utf8').split('\0').find((e) => e.startsWith('SERVER_ID='))
      if (id) out.set(id.slice('SERVER_ID='.length), child)
    } catch {
      // ended while we looked
    }
  }
  return out
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig)
  } catch {
    // already gone
  }
}

/** SIGKILL or SIGSTOP one replica at a time under load, `runs` times, through the real CLI. */
async function underLoad(kind: 'kill' | 'freeze', runs: number, o: RecoveryOptions, log: (s: string) => void, start: StartMain): Promise<Scenario> {
  const sig = kind === 'kill' ? 'SIGKILL' : 'SIGSTOP'
  const balancer = await start(['--replicas', '3', ...o.args])
  const frozen: number[] = []
  const load = new Load(balancer.url, o.concurrency)
  const result = scenario(
    kind === 'kill' ? 'kill (SIGKILL) under load' : 'freeze (SIGSTOP) under load',
    kind === 'kill' ? 'process exit + proxy (refused/reset)' : 'health checker (timeouts)',
  )
  try {
    await load.more(500)
    for (let r = 0; r < runs; r++) {
      const before = await rep(balancer.url)
      const victim = before.replicas[Math.floor(Math.random() * before.replicas.length)]!
      const pid = replicaPids(balancer.child.pid!).get(victim)
      if (pid === undefined) throw new Error(`no pid for ${victim}`)
      if (kind === 'freeze') frozen.push(pid)
      const at = Date.now()
      signal(pid, sig)
      const found = await until(balancer.url, `${victim} to leave /rep`, (m) => !m.replicas.includes(victim))
      const back = await until(balancer.url, 'N to be back', (m) => m.N === before.N && !m.replicas.includes(victim))
      result.runs.push({ foundMs: found - at, backMs: back - at })
      log(`  ${kind} ${victim}: found dead after ${found - at} ms, N back after ${back - at} ms (${load.failed} failed of ${load.sent} so far)`)
      // Let the replacement take its share before the next run.
      await load.more(500)
    }
  } finally {
    await load.stop()
    for (const pid of frozen) {
      signal(pid, 'SIGCONT')
      signal(pid, 'SIGKILL')
    }
    await stopBalancer(balancer)
  }
  return { ...result, requests: load.sent, failed: load.failed, failures: load.failures, slowestMs: Math.round(load.slowestMs) }
}

async function stopBalancer(balancer: BalancerProcess): Promise<void> {
  const pids = balancer.child.pid ? [...replicaPids(balancer.child.pid).values()] : []
  for (const pid of pids) signal(pid, 'SIGCONT')
  await balancer.stop()
}

/** The health checker alone, in this process, with the CLI's health settings. */
async function checkerAlone(kind: 'kill' | 'freeze', runs: number, o: RecoveryOptions, log: (s: string) => void): Promise<Scenario> {
  const health = loadConfig(o.args).health
  const provider = new ProcessProvider({ startTimeoutMs: 15_000, stopTimeoutMs: 1000 })
  await provider.init()
  const monitor = new HealthMonitor<ReplicaHandle>(health)
  await monitor.start()
  const result = scenario(
    kind === 'kill' ? 'kill, checker alone' : 'freeze, checker alone',
    kind === 'kill' ? 'health checker (refused probes)' : 'health checker (timeouts)',
  )
  try {
    for (let r = 0; r < runs; r++) {
      const handle = await provider.start(`checker-${kind}-${r}`)
      const pid = provider.pidOf(handle.name)!
      monitor.watch(handle)
      // A random phase of the probe cycle, as a real failure would have.
      await sleep(health.intervalMs + Math.random() * health.intervalMs)
      const down = new Promise<HealthReport<ReplicaHandle>>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`checker did not report ${handle.name} down within 60 s`)), 60_000)
        const on = (report: HealthReport<ReplicaHandle>): void => {
          if (report.target !== handle) return
          clearTimeout(timer)
          monitor.off('down', on)
          resolve(report)
        }
        monitor.on('down', on)
      })
      const at = Date.now()
      signal(pid, kind === 'kill' ? 'SIGKILL' : 'SIGSTOP')
      const report = await down
      result.runs.push({ foundMs: report.at - at })
      log(`  checker alone, ${kind}: down after ${report.at - at} ms (${report.reason}, ${report.probes} probes)`)
      monitor.unwatch(handle)
      signal(pid, 'SIGCONT')
      await provider.stop(handle.name)
    }
  } finally {
    await monitor.close()
    await provider.close()
  }
  return result
}

/** GET /heartbeat through the balancer every 100 ms until `stop`: latencies in ms. */
async function heartbeatLatencies(url: string, stop: () => boolean): Promise<number[]> {
  const agent = new Agent({ keepAlive: true, maxSockets: 1 })
  const out: number[] = []
  while (!stop()) {
    const started = performance.now()
    await new Promise<void>((resolve) => {
      const req = request(`${url}/heartbeat`, { agent }, (res) => {
        res.resume()
        res.on('end', () => resolve())
        res.on('error', () => resolve())
      })
      req.on('error', () => resolve())
      req.end()
    })
    out.push(performance.now() - started)
    await sleep(100)
  }
  agent.destroy()
  return out
}

export interface Saturation {
  falseDeaths: number
  /** GET /heartbeat through the saturated balancer: an upper bound of what the checker sees. */
  heartbeat: { probes: number; p50: number; p99: number; max: number; overTimeout: number }
}

/** Saturate the replicas; any replica that leaves /rep is a healthy one declared dead. */
async function saturate(o: RecoveryOptions, log: (s: string) => void, start: StartMain): Promise<Scenario & Saturation> {
  const { timeoutMs } = loadConfig(o.args).health
  const balancer = await start(['--replicas', '3', ...o.args])
  const concurrency = Math.max(128, o.concurrency * 4)
  const load = new Load(balancer.url, concurrency)
  const removed = new Set<string>()
  let done = false
  const latencies = heartbeatLatencies(balancer.url, () => done)
  try {
    const before = await rep(balancer.url)
    const end = Date.now() + o.saturateSeconds * 1000
    while (Date.now() < end) {
      const now = await rep(balancer.url)
      for (const name of before.replicas) {
        if (!now.replicas.includes(name) && !removed.has(name)) {
          removed.add(name)
          log(`  saturate: ${name} was declared dead`)
        }
      }
      await sleep(50)
    }
  } finally {
    done = true
    await load.stop()
    await stopBalancer(balancer)
  }
  const hb = (await latencies).sort((a, b) => a - b)
  const at = (q: number): number => round(hb[Math.min(hb.length - 1, Math.floor(q * hb.length))] ?? NaN, 1)
  const heartbeat = { probes: hb.length, p50: at(0.5), p99: at(0.99), max: round(hb[hb.length - 1] ?? NaN, 1), overTimeout: hb.filter((v) => v > timeoutMs).length }
  log(
    `  saturate: ${load.sent} requests at concurrency ${concurrency} for ${o.saturateSeconds} s, slowest ${Math.round(load.slowestMs)} ms, ` +
      `${removed.size} false deaths; GET /heartbeat through it: p50 ${heartbeat.p50} ms, p99 ${heartbeat.p99} ms, max ${heartbeat.max} ms, ${heartbeat.overTimeout} of ${heartbeat.probes} over ${timeoutMs} ms`,
  )
  return {
    name: `saturate (${concurrency} connections, ${o.saturateSeconds} s)`,
    how: 'nothing may be found dead',
    runs: [],
    requests: load.sent,
    failed: load.failed,
    failures: load.failures,
    slowestMs: Math.round(load.slowestMs),
    falseDeaths: removed.size,
    heartbeat,
  }
}

function stat(values: number[]): string {
  if (values.length === 0) return '–'
  return `${Math.round(median(values))} (${Math.min(...values)}–${Math.max(...values)})`
}

export async function measure(o: RecoveryOptions, log: (s: string) => void, start: StartMain = startMain): Promise<{ scenarios: Scenario[]; saturation?: Saturation; health: ReturnType<typeof loadConfig>['health'] }> {
  const health = loadConfig(o.args).health
  log(`recovery: health interval ${health.intervalMs} ms, timeout ${health.timeoutMs} ms, rise ${health.rise}, fall ${health.fall}`)
  const scenarios: Scenario[] = []
  if (o.kills > 0) scenarios.push(await underLoad('kill', o.kills, o, log, start))
  if (o.freezes > 0) scenarios.push(await underLoad('freeze', o.freezes, o, log, start))
  if (o.checkerRuns > 0) {
    scenarios.push(await checkerAlone('kill', o.checkerRuns, o, log))
    scenarios.push(await checkerAlone('freeze', o.checkerRuns, o, log))
  }
  let saturation: Saturation | undefined
  if (o.saturateSeconds > 0) {
    const s = await saturate(o, log, start)
    saturation = { falseDeaths: s.falseDeaths, heartbeat: s.heartbeat }
    scenarios.push(s)
  }
  return { scenarios, ...(saturation ? { saturation } : {}), health }
}

function markdown(result: Awaited<ReturnType<typeof measure>>, o: RecoveryOptions, chart: string | undefined, command: string): string {
  const { health } = result
  const lines = [
    '## A-3: recovery after a replica dies',
    '',
    `Measured with \`${command}\` on ${cpus().length} CPU(s) (load average ${loadavg()[0]!.toFixed(1)} at the end), Node ${process.version}.`,
    `Health settings: interval ${health.intervalMs} ms, timeout ${health.timeoutMs} ms, rise ${health.rise}, fall ${health.fall}` +
      `${o.args.length ? ` (flags: \`${o.args.join(' ')}\`)` : ' (the defaults)'}; N = 3; load: ${o.concurrency} concurrent keep-alive GET /home loops.`,
    '',
    '| scenario | found by | runs | found dead, ms: median (min–max) | N back, ms: median (min–max) | requests | failed | slowest request, ms |',
    '|---|---|---:|---:|---:|---:|---:|---:|',
  ]
  for (const s of result.scenarios) {
    const back = s.runs.flatMap((r) => (r.backMs === undefined ? [] : [r.backMs]))
    lines.push(
      `| ${s.name} | ${s.how} | ${s.runs.length || '–'} | ${stat(s.runs.map((r) => r.foundMs))} | ${stat(back)} | ${s.requests || '–'} | ${s.requests ? s.failed : '–'} | ${s.requests ? s.slowestMs : '–'} |`,
    )
  }
  lines.push('')
  const sat = result.saturation
  if (sat) {
    lines.push(
      `Healthy replicas declared dead under saturating load: **${sat.falseDeaths}**. ` +
        `GET /heartbeat through the saturated balancer (an upper bound of what the checker, which probes replicas directly, sees): ` +
        `p50 ${sat.heartbeat.p50} ms, p99 ${sat.heartbeat.p99} ms, max ${sat.heartbeat.max} ms; ${sat.heartbeat.overTimeout} of ${sat.heartbeat.probes} slower than the ${health.timeoutMs} ms timeout.`,
      '',
    )
  }
  const failures = result.scenarios.flatMap((s) => s.failures.map((f) => `${s.name}: ${f}`))
  if (failures.length) lines.push('Failed requests (first ones):', '', ...failures.slice(0, 10).map((f) => `- ${f}`), '')
  if (chart) lines.push(`![Recovery times](${chart})`, '')
  return lines.join('\n')
}

function chartOf(result: Awaited<ReturnType<typeof measure>>): string {
  const find = (prefix: string): Scenario | undefined => result.scenarios.find((s) => s.name.startsWith(prefix))
  const med = (s: Scenario | undefined, pick: (r: Run) => number | undefined): number => {
    const values = (s?.runs ?? []).flatMap((r) => {
      const v = pick(r)
      return v === undefined ? [] : [v]
    })
    return values.length ? round(median(values)) : 0
  }
  const kinds = [
    { label: 'SIGKILL (crash)', load: find('kill (SIGKILL)'), alone: find('kill, checker') },
    { label: 'SIGSTOP (hang)', load: find('freeze (SIGSTOP)'), alone: find('freeze, checker') },
  ]
  return barChart({
    title: 'Recovery after a replica dies (median of runs)',
    subtitle: `N = 3; health interval ${result.health.intervalMs} ms, timeout ${result.health.timeoutMs} ms, fall ${result.health.fall}`,
    categories: kinds.map((k) => k.label),
    series: [
      { name: 'found dead, under load', values: kinds.map((k) => med(k.load, (r) => r.foundMs)) },
      { name: 'N back (replacement joined), under load', values: kinds.map((k) => med(k.load, (r) => r.backMs)) },
      { name: 'found dead by the health checker alone', values: kinds.map((k) => med(k.alone, (r) => r.foundMs)) },
    ],
    yLabel: 'ms after the signal',
  })
}

/** The A-3 section for `npm run analysis` (bench/analysis.ts). */
export async function recovery(ctx: AnalysisContext): Promise<SectionResult> {
  const o = { ...DEFAULTS }
  const result = await measure(o, ctx.log, (args) => ctx.startMain(args))
  const chart = ctx.writeChart('recovery.svg', chartOf(result))
  return { markdown: markdown(result, o, chart, 'npm run analysis'), json: { options: o, ...result } }
}

function parseOptions(argv: string[]): RecoveryOptions {
  const o: RecoveryOptions = { ...DEFAULTS, args: [] }
  const numeric: Record<string, keyof RecoveryOptions> = { '--kills': 'kills', '--freezes': 'freezes', '--checker-runs': 'checkerRuns', '--saturate': 'saturateSeconds', '--concurrency': 'concurrency' }
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!
    if (arg === '--') {
      o.args = argv.slice(i + 1)
      break
    }
    const key = numeric[arg]
    const value = Number(argv[i + 1])
    if (!key || !Number.isInteger(value) || value < 0) {
      throw new Error(`usage: recovery [--kills N] [--freezes N] [--checker-runs N] [--saturate SECONDS] [--concurrency C] [-- balancer flags]; bad ${arg}`)
    }
    ;(o[key] as number) = value
    i++
  }
  return o
}

async function main(): Promise<void> {
  const o = parseOptions(process.argv.slice(2))
  const watchdog = setTimeout(() => {
    console.error('recovery: still running after 10 min; giving up')
    process.exit(1)
  }, 10 * 60_000)
  watchdog.unref()
  const result = await measure(o, (s) => console.log(s))
  const out = join(root, 'docs', 'recovery')
  mkdirSync(out, { recursive: true })
  writeFileSync(join(out, 'recovery.svg'), chartOf(result))
  const command = `npm run chaos${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(' ')}` : ''}`
  const md = markdown(result, o, 'recovery.svg', command)
  writeFileSync(join(out, 'recovery.md'), md)
  writeFileSync(join(out, 'recovery.json'), JSON.stringify({ date: new Date().toISOString(), options: o, ...result }, null, 2))
  console.log(`\n${md}`)
  repAgent.destroy()
  const failed = result.scenarios.reduce((n, s) => n + s.failed, 0)
  if (failed > 0 || (result.saturation?.falseDeaths ?? 0) > 0) process.exitCode = 1
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  main().catch((err: unknown) => {
    console.error(err)
    process.exit(1)
  })
}
