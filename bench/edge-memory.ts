/**
 * Memory per abusive client: clients that pipeline GETs as fast as the balancer takes them and
 * never read an answer (issue 14's repro: `GET /home HTTP/1.1\r\nHost: t\r\n\r\n` x 2000 written
 * whenever the socket accepts it). Reports the balancer's memory (RSS, V8 heap used, external
 * memory: Buffers) before, at the peak, at the end of the abuse, 5 s after the clients have
 * gone and then after a full GC (the balancer runs with --expose-gc for that), and the latency
 * of a well-behaved client's GET /home meanwhile (one at a time, each on a new connection).
 * Bounded: each run lasts --seconds, writes only what TCP flow control lets through.
 *
 *   npm run build && node dist/bench/edge-memory.js [--clients 100,1000] [--seconds 15] [--fast-front true|false] [--snapshots DIR]
 *
 * --snapshots DIR: the balancer also writes V8 heap snapshots (open them in Chrome DevTools'
 * Memory tab) at the end of the abuse and after the full GC, named by clients and front.
 */
import { connect, type Socket } from 'node:net'
import type { ChildProcess } from 'node:child_process'
import { readFileSync, readdirSync } from 'node:fs'
import { join } from 'node:path'
import { Agent, request } from 'node:http'
import { startBalancer, startReplica, track, type Replica } from './procs.js'
import { fork } from 'node:child_process'
import { once } from 'node:events'
import { fileURLToPath } from 'node:url'
import { parseValueFlags } from './args.js'

const o = { clients: [100, 1000], seconds: 15, fastFront: 'true', snapshots: '' }
// (Not in the abusers' process, whose arguments are its own: see `--abuse` below.)
if (process.argv[2] !== '--abuse') parseValueFlags(
  process.argv.slice(2),
  {
    '--clients': (v) => (o.clients = v.split(',').map(Number)),
    '--seconds': (v) => (o.seconds = Number(v)),
    '--fast-front': (v) => (o.fastFront = v),
    '--snapshots': (v) => (o.snapshots = v),
  },
  'node dist/bench/edge-memory.js [--clients 100,1000] [--seconds 15] [--fast-front true|false] [--snapshots DIR]',
)

const BURST = Buffer.from('GET /home HTTP/1.1\r\nHost: t\r\n\r\n'.repeat(2000))

function rssMiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
  return m ? Number(m[1]) / 1024 : NaN
}

/** Open file descriptors of process `pid` (sockets, mostly). */
const fds = (pid: number): number => readdirSync(`/proc/${pid}/fd`).length

/** States of the TCP sockets whose local port is `port` (the balancer's side of its client connections), LISTEN left out. */
function atPort(port: number): string {
  const hex = port.toString(16).toUpperCase().padStart(4, '0')
  const names: Record<string, string> = { '01': 'established', '06': 'time-wait', '07': 'closed', '08': 'close-wait', '09': 'last-ack', '04': 'fin-wait-1', '05': 'fin-wait-2', '0B': 'closing' }
  const n = new Map<string, number>()
  for (const line of readFileSync('/proc/net/tcp', 'utf8').split('\n').slice(1)) {
    const f = line.trim().split(/\s+/)
    if (!f[1]?.endsWith(`:${hex}`) || f[3] === '0A') continue
    const state = names[f[3]!] ?? f[3]!
    n.set(state, (n.get(state) ?? 0) + 1)
  }
  return n.size === 0 ? 'none' : [...n].map(([k, v]) => `${v} ${k}`).join(', ')
}

/** The balancer's process.memoryUsage() (bench/serve.ts answers over IPC), after a full GC if `gc`. */
interface LoopDelay {
  p50: number
  p99: number
  max: number
}
/** The balancer's event-loop delay (ms) between its last two memory reports. */
let lastDelay: LoopDelay = { p50: NaN, p99: NaN, max: NaN }

function memoryOf(child: ChildProcess, gc = false, snapshot?: string): Promise<NodeJS.MemoryUsage> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('the balancer did not report its memory in 60 s')), 60_000)
    const onMessage = (m: { type?: string; usage?: NodeJS.MemoryUsage; delay?: LoopDelay }): void => {
      if (m?.type !== 'memory' || m.usage === undefined) return
      if (m.delay !== undefined) lastDelay = m.delay
      clearTimeout(timer)
      child.off('message', onMessage)
      resolve(m.usage)
    }
    child.on('message', onMessage)
    child.send({ type: 'memory', gc, ...(snapshot === undefined ? {} : { snapshot }) })
  })
}

const MiB = (bytes: number): string => (bytes / 1024 / 1024).toFixed(0)
/** RSS, and what of it is V8's heap (used) and memory outside it (Buffers: external). */
const breakdown = (u: NodeJS.MemoryUsage): string => `RSS ${MiB(u.rss)} (heap used ${MiB(u.heapUsed)} of ${MiB(u.heapTotal)}, external ${MiB(u.external)})`

/** ms each get() on a new connection waited for its TCP connection (connect()), of its total. */
let connectMs: number[] = []

/**
 * ms for one GET /home, on a new connection (no agent) or on `agent`'s kept-alive one;
 * Infinity if it failed or took over 10 s.
 */
function get(url: string, agent: Agent | false = false): Promise<number> {
  const started = performance.now()
  return new Promise<number>((resolve, reject) => {
    const req = request(`${url}/home`, { agent }, (res) => {
      res.resume()
      res.on('end', () => resolve(performance.now() - started))
    })
    req.on('error', reject)
    req.setTimeout(10_000, () => req.destroy(new Error('timeout')))
    if (agent === false) req.once('socket', (socket) => socket.once('connect', () => connectMs.push(performance.now() - started)))
    req.end()
  }).catch(() => Infinity)
}

/** A client that writes pipelined GETs whenever it may and never reads. */
function abuser(port: number, until: number): Socket {
  const socket = connect({ port, host: '127.0.0.1' })
  socket.on('error', () => {})
  socket.pause()
  const pump = (): void => {
    while (Date.now() < until && !socket.destroyed) {
      if (!socket.write(BURST)) {
        socket.once('drain', pump)
        return
      }
    }
  }
  socket.once('connect', pump)
  return socket
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))

function quantile(values: readonly number[], q: number): number {
  const s = [...values].sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.floor(q * s.length))] ?? NaN
}
const ms = (v: number): string => (v === Infinity ? 'timeout' : v.toFixed(0))

async function run(clients: number, replicas: readonly Replica[]): Promise<void> {
  const lb = await startBalancer(replicas, [`--fast-front=${o.fastFront}`, '--max-connections', String(clients + 100)], ['--expose-gc'])
  try {
    const pid = lb.child.pid!
    const port = Number(new URL(lb.url).port)
    for (let i = 0; i < 200; i++) if ((await get(lb.url)) === Infinity) throw new Error('the balancer does not answer')
    await sleep(1000)
    const before = await memoryOf(lb.child)
    const fdsBefore = fds(pid)
    // The good client's kept-alive connection, open before the abuse starts (so the accept queue is not in its way).
    const keptAlive = new Agent({ keepAlive: true, maxSockets: 1 })
    if ((await get(lb.url, keptAlive)) === Infinity) throw new Error('the balancer does not answer')
    const until = Date.now() + o.seconds * 1000
    // The abusers run in a process of their own, so their writes never delay the good client's timing here.
    const abusers = fork(fileURLToPath(import.meta.url), ['--abuse', String(port), String(clients), String(o.seconds * 1000)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
    track(abusers)
    await once(abusers, 'message')
    let peak = before
    const latencies: number[] = []
    const keptLatencies: number[] = []
    connectMs = []
    const delays: LoopDelay[] = []
    // A well-behaved client meanwhile: one GET /home on a new connection, one on its kept-alive
    // connection, then 200 ms, and again.
    while (Date.now() < until) {
      latencies.push(await get(lb.url))
      keptLatencies.push(await get(lb.url, keptAlive))
      const now = await memoryOf(lb.child)
      delays.push(lastDelay)
      if (now.rss > peak.rss) peak = now
      await sleep(200)
    }
    const during = await memoryOf(lb.child)
    const snapshot = (when: string): string | undefined => (o.snapshots === '' ? undefined : join(o.snapshots, `edge-memory-${clients}-fast-front-${o.fastFront}-${when}.heapsnapshot`))
    if (o.snapshots !== '') await memoryOf(lb.child, false, snapshot('during'))
    const fdsDuring = fds(pid)
    if (during.rss > peak.rss) peak = during
    abusers.send('stop')
    await once(abusers, 'exit')
    await sleep(5000)
    const after = await memoryOf(lb.child)
    const afterGc = await memoryOf(lb.child, true, snapshot('after'))
    const fdsAfter = fds(pid)
    const clientsAfter = atPort(port)
    const perClient = (peak.rss - before.rss) / 1024 / clients
    keptAlive.destroy()
    const summary = (l: number[]): string =>
      `${l.length} requests, ${l.filter((v) => v === Infinity).length} timed out (10 s); p50 ${ms(quantile(l, 0.5))} ms, p90 ${ms(quantile(l, 0.9))} ms, max ${ms(quantile(l, 1))} ms (in order: ${l.map(ms).join(' ')}`
    console.log(
      `${clients} clients, ${o.seconds} s, --fast-front ${o.fastFront} (MiB):\n` +
        `  before            ${breakdown(before)}\n` +
        `  peak              ${breakdown(peak)}: ${perClient.toFixed(0)} KiB per client (peak RSS - before) / clients\n` +
        `  end of the abuse  ${breakdown(during)}\n` +
        `  5 s after         ${breakdown(after)}\n` +
        `  then a full GC    ${breakdown(afterGc)} (VmRSS ${rssMiB(pid).toFixed(0)})\n` +
        `  open descriptors  ${fdsBefore} before, ${fdsDuring} at the end of the abuse, ${fdsAfter} after (the balancer's side of client connections, by TCP state: ${clientsAfter})\n` +
        `  a good client's GET /home meanwhile, on its kept-alive connection: ${summary(keptLatencies)})\n` +
        `  and each on a new connection: ${summary(latencies)}; of which connect(): ${connectMs.map(ms).join(' ')})\n` +
        `  the balancer's event-loop delay meanwhile: worst p99 ${Math.max(...delays.map((d) => d.p99)).toFixed(0)} ms, max ${Math.max(...delays.map((d) => d.max)).toFixed(0)} ms`,
    )
  } finally {
    await lb.stop()
  }
}

/** `--abuse PORT N MS`: this process is the abusers (forked by run()): N of them for MS, until 'stop'. */
if (process.argv[2] === '--abuse') {
  const [port, n, ms] = process.argv.slice(3).map(Number) as [number, number, number]
  const until = Date.now() + ms
  const sockets: Socket[] = []
  for (let i = 0; i < n; i++) sockets.push(abuser(port, until))
  process.send?.('started')
  process.on('message', () => {
    for (const s of sockets) s.destroy()
    process.exit(0)
  })
  await new Promise(() => {})
}

const replicas = await Promise.all([startReplica('Server 1'), startReplica('Server 2'), startReplica('Server 3')])
try {
  for (const n of o.clients) await run(n, replicas)
} finally {
  await Promise.all(replicas.map((r) => r.stop()))
}
