/**
 * TCP mode (L4) throughput next to a direct connection, on loopback, bounded in time:
 *
 *   npm run build && node dist/bench/tcp.js [--duration 5] [--warmup 1] [--repeats 3] [--connections 100]
 *
 * One replica process (dist/replica/server.js) serves every target, so the only difference
 * between targets is what sits in front of it:
 *   direct   autocannon -> replica
 *   tcp      autocannon -> balancer TCP mode (--tcp-port) -> replica
 *   pipe     autocannon -> a bare node:net pipe (socket.pipe both ways, nothing else) -> replica,
 *            the floor for any proxy written on node:net
 *   http     autocannon -> balancer HTTP mode (L7) -> replica, for comparison
 * The load is GET /home over keep-alive connections (HTTP over L4 is still bytes). Runs are
 * interleaved (every target once per repetition, order rotating); the table shows the median
 * req/s of each target and the median over repetitions of (target / direct measured in the
 * same repetition). Everything the bench starts is stopped at the end, or on Ctrl-C.
 */
import autocannon from 'autocannon'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { connect } from 'node:net'
import { cpus } from 'node:os'
import { freePort, startBalancer, startReplica, type Managed } from './procs.js'
import { median, round } from './stats.js'

const TARGETS = ['direct', 'tcp', 'pipe', 'http'] as const
type Target = (typeof TARGETS)[number]

interface Options {
  duration: number
  warmup: number
  repeats: number
  connections: number
}

function parseOptions(argv: string[]): Options {
  const o: Options = { duration: 5, warmup: 1, repeats: 3, connections: 100 }
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i]!
    if (flag === '--help' || flag === '-h') {
      console.log('Usage: node dist/bench/tcp.js [--duration S (5)] [--warmup S (1)] [--repeats R (3)] [--connections C (100)]')
      process.exit(0)
    }
    const key = flag.replace(/^--/, '') as keyof Options
    if (!(key in o)) throw new Error(`unknown flag ${flag}`)
    const n = Number(argv[++i])
    if (!Number.isFinite(n) || n < (key === 'warmup' ? 0 : 1)) throw new Error(`${flag} needs a positive number`)
    o[key] = key === 'repeats' || key === 'connections' ? Math.floor(n) : n
  }
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
  await once(child, 'message')
  return {
    label: 'pipe',
    child,
    cpuPids: () => [child.pid!],
    stop: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return
      child.kill('SIGTERM')
      await once(child, 'exit')
    },
  }
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
    await new Promise((r) => setTimeout(r, 50))
  }
}

async function load(url: string, connections: number, seconds: number): Promise<{ rps: number; p99: number; errors: number }> {
  const r = await autocannon({ url, connections, duration: seconds, pipelining: 1 })
  const errors = r.errors + r.timeouts + r.non2xx
  return { rps: r.requests.average, p99: r.latency.p99, errors }
}

async function main(): Promise<void> {
  const o = parseOptions(process.argv.slice(2))
  const started: Managed[] = []
  try {
    const replica = await startReplica('Server 1')
    started.push(replica)
    const tcpPort = await freePort()
    const balancer = await startBalancer([replica], ['--tcp-port', String(tcpPort)])
    started.push(balancer)
    const pipePort = await freePort()
    started.push(await startPipe(pipePort, replica.port))
    await waitPort(tcpPort)
    const urls: Record<Target, string> = {
      direct: `http://127.0.0.1:${replica.port}/home`,
      tcp: `http://127.0.0.1:${tcpPort}/home`,
      pipe: `http://127.0.0.1:${pipePort}/home`,
      http: `${balancer.url}/home`,
    }
    console.log(`${cpus().length} CPUs (${cpus()[0]?.model ?? '?'}), node ${process.version}; ${o.connections} connections, ${o.repeats} x ${o.duration} s per target`)
    const runs: Record<Target, Array<{ rps: number; p99: number; errors: number }>> = { direct: [], tcp: [], pipe: [], http: [] }
    const ratios: Record<Target, number[]> = { direct: [], tcp: [], pipe: [], http: [] }
    for (const target of TARGETS) if (o.warmup > 0) await load(urls[target], o.connections, o.warmup)
    for (let rep = 0; rep < o.repeats; rep++) {
      const order = TARGETS.map((_, i) => TARGETS[(i + rep) % TARGETS.length]!)
      const thisRep: Partial<Record<Target, number>> = {}
      for (const target of order) {
        const r = await load(urls[target], o.connections, o.duration)
        runs[target].push(r)
        thisRep[target] = r.rps
        console.log(`  repetition ${rep + 1} ${target.padEnd(6)} ${Math.round(r.rps)} req/s  p99 ${r.p99} ms${r.errors ? `  ${r.errors} errors` : ''}`)
      }
      for (const target of TARGETS) ratios[target].push(thisRep[target]! / thisRep.direct!)
    }
    console.log('\n| target | req/s (median) | of direct (median ratio) | p99 ms (median) | errors |')
    console.log('|---|---|---|---|---|')
    for (const target of TARGETS) {
      const rps = median(runs[target].map((r) => r.rps))
      const p99 = median(runs[target].map((r) => r.p99))
      const errors = runs[target].reduce((n, r) => n + r.errors, 0)
      console.log(`| ${target} | ${Math.round(rps)} | ${round(median(ratios[target]), 2)} | ${p99} | ${errors} |`)
    }
  } finally {
    await Promise.allSettled(started.reverse().map((m) => m.stop()))
  }
}

main().catch((err: unknown) => {
  console.error(err)
  process.exit(1)
})
