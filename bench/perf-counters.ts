/**
 * Kernel counters of running processes for exactly a window the caller chooses: system calls
 * (tracepoint raw_syscalls:sys_enter), context switches and CPU time (task-clock), by
 * `perf stat -p PIDS` started with its events disabled and switched on and off over a control
 * pipe (`--control fd:3,4`, acknowledged), so perf's own start-up and shut-down are outside
 * the window. Where perf is missing or cannot attach, CPU time comes from /proc/PID/stat
 * (utime + stime, one clock tick of resolution) and context switches from
 * /proc/PID/task/TID/status; system calls are then unknown (NaN). The user/kernel split of the
 * CPU time always comes from /proc/PID/stat.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Readable, Writable } from 'node:stream'
import { cpuSeconds, track, which } from './procs.js'

export interface Counters {
  syscalls: number
  contextSwitches: number
  cpuSeconds: number
  /** The same window's CPU split into user and kernel time, from /proc (clock ticks). */
  userSeconds: number
  systemSeconds: number
  /** Counts of the extra perf events asked for (e.g. syscalls:sys_enter_epoll_pwait); NaN without perf. */
  extra: Record<string, number>
}

/** A measurement in progress: `stop()` ends the window and returns what it counted. */
export interface Window {
  stop(): Promise<Counters>
}

const EVENTS = 'raw_syscalls:sys_enter,context-switches,task-clock'

/** Why perf cannot be used here, or undefined when it can (checked once, on a short sleep). */
let perfProblem: string | undefined | null = null
export function perfUnavailable(): string | undefined {
  if (perfProblem !== null) return perfProblem
  const bin = which('perf')
  if (!bin) return (perfProblem = 'perf is not installed')
  const r = spawnSync(bin, ['stat', '-x', ',', '-e', EVENTS, '--', 'sleep', '0.01'], { encoding: 'utf8', timeout: 10_000 })
  const parsed = r.status === 0 ? parsePerfCsv(r.stderr) : undefined
  perfProblem = parsed && Number.isFinite(parsed.syscalls) ? undefined : `perf stat -e ${EVENTS} does not work here: ${(r.stderr || r.error?.message || '').trim().split('\n').pop()}`
  return perfProblem
}

/** Counts from `perf stat -x ,` output: `value,unit,event,...` per line; task-clock is in ms. */
export function parsePerfCsv(text: string, extra: readonly string[] = []): Omit<Counters, 'userSeconds' | 'systemSeconds'> | undefined {
  const found: Partial<Record<string, number>> = {}
  for (const line of text.split('\n')) {
    const f = line.split(',')
    if (f.length < 3) continue
    // `<not counted>`: the process never ran while counting (an idle primary or warm spare): zero.
    const value = f[0] === '<not counted>' ? 0 : Number(f[0])
    const event = f[2]!.replace(/:u$/, '')
    if (!Number.isFinite(value)) continue
    found[event] = value
  }
  const syscalls = found['raw_syscalls:sys_enter']
  const cs = found['context-switches']
  const ms = found['task-clock']
  if (syscalls === undefined || cs === undefined || ms === undefined) return undefined
  return { syscalls, contextSwitches: cs, cpuSeconds: ms / 1000, extra: Object.fromEntries(extra.map((e) => [e, found[e] ?? NaN])) }
}

/** Starts counting for `pids` (all their threads), and `extra` perf events; resolves once the counters are on. */
export async function startWindow(pids: readonly number[], extra: readonly string[] = []): Promise<Window> {
  const inner = perfUnavailable() === undefined ? await startPerfWindow(pids, extra) : await startProcWindow(pids, extra)
  const split0 = cpuSplit(pids)
  return {
    stop: async () => {
      const split = cpuSplit(pids)
      const c = await inner.stop()
      return { ...c, userSeconds: split.user - split0.user, systemSeconds: split.system - split0.system }
    },
  }
}

let clockTicks: number | undefined
/** User and system CPU seconds so far of `pids` (all threads): /proc/PID/stat fields 14 and 15. */
function cpuSplit(pids: readonly number[]): { user: number; system: number } {
  clockTicks ??= Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim()) || 100
  let user = 0
  let system = 0
  for (const pid of pids) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
      user += Number(fields[11])
      system += Number(fields[12])
    } catch {
      // gone
    }
  }
  return { user: user / clockTicks, system: system / clockTicks }
}

function contextSwitchesOf(pids: readonly number[]): number {
  let total = 0
  for (const pid of pids) {
    let tids: string[]
    try {
      tids = readdirSync(`/proc/${pid}/task`)
    } catch {
      continue
    }
    for (const tid of tids) {
      try {
        const status = readFileSync(`/proc/${pid}/task/${tid}/status`, 'utf8')
        for (const m of status.matchAll(/^(?:non)?voluntary_ctxt_switches:\s+(\d+)/gm)) total += Number(m[1])
      } catch {
        // the thread ended between the listing and the read
      }
    }
  }
  return total
}

type InnerWindow = { stop(): Promise<Omit<Counters, 'userSeconds' | 'systemSeconds'>> }

async function startProcWindow(pids: readonly number[], extra: readonly string[]): Promise<InnerWindow> {
  const cpu0 = cpuSeconds(pids)
  const cs0 = contextSwitchesOf(pids)
  return {
    stop: async () => ({ syscalls: NaN, contextSwitches: contextSwitchesOf(pids) - cs0, cpuSeconds: cpuSeconds(pids) - cpu0, extra: Object.fromEntries(extra.map((e) => [e, NaN])) }),
  }
}

/** Writes a control command and waits for perf's `ack`. */
async function command(perf: ChildProcess, word: 'enable' | 'disable'): Promise<void> {
  const ctl = perf.stdio[3] as Writable
  const ack = perf.stdio[4] as Readable
  const acked = new Promise<void>((resolve, reject) => {
    let text = ''
    const timer = setTimeout(() => done(new Error(`perf did not acknowledge ${word} in 10 s`)), 10_000)
    const onData = (d: Buffer): void => {
      text += d.toString('latin1')
      if (text.includes('ack')) done()
    }
    const onExit = (): void => done(new Error(`perf exited before acknowledging ${word}`))
    function done(err?: Error): void {
      clearTimeout(timer)
      ack.off('data', onData)
      perf.off('exit', onExit)
      if (err) reject(err)
      else resolve()
    }
    ack.on('data', onData)
    perf.once('exit', onExit)
  })
  ctl.write(`${word}\n`)
  await acked
}

async function startPerfWindow(pids: readonly number[], extra: readonly string[]): Promise<InnerWindow> {
  const dir = mkdtempSync(join(tmpdir(), 'bench-perf-'))
  const out = join(dir, 'counts.csv')
  // -D -1: events start disabled; fd 3 carries our commands in, fd 4 perf's acks out.
  const perf = spawn(which('perf')!, ['stat', '-x', ',', '-o', out, '-e', [EVENTS, ...extra].join(','), '-D', '-1', '--control', 'fd:3,4', '-p', pids.join(',')], {
    stdio: ['ignore', 'ignore', 'pipe', 'pipe', 'pipe'],
  })
  track(perf, 'SIGINT')
  let stderr = ''
  perf.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr = (stderr + d).slice(-2000)))
  try {
    await command(perf, 'enable')
  } catch (err) {
    perf.kill('SIGKILL')
    rmSync(dir, { recursive: true, force: true })
    throw new Error(`${(err as Error).message}: ${stderr.trim()}`)
  }
  return {
    stop: async () => {
      await command(perf, 'disable')
      const exited = once(perf, 'exit')
      perf.kill('SIGINT') // perf stat writes its counts on SIGINT
      const timer = setTimeout(() => perf.kill('SIGKILL'), 10_000)
      await exited
      clearTimeout(timer)
      const text = readFileSync(out, 'utf8')
      rmSync(dir, { recursive: true, force: true })
      const counts = parsePerfCsv(text, extra)
      if (!counts) throw new Error(`could not read perf's counts: ${text.trim()} ${stderr.trim()}`)
      return counts
    },
  }
}
