/**
 * Heap allocation per request of the balancer, from V8's own GC trace: the balancer
 * (dist/bench/serve.js of a build) runs with `--trace-gc-nvp`, whose every GC line says how
 * many bytes were allocated since the one before (`allocated=`); summed over a fixed number of
 * requests and divided by it, that is a figure a noisy machine does not move (unlike req/s or
 * CPU time), so it is the one to drive down on the plain GET path. Also reports GCs and GC
 * pause per request, and CPU µs per request (/proc/PID/stat) for reference.
 *
 *   npm run build && node dist/bench/alloc.js [--dist DIR] [--requests 50000] [--connections 10,100] [--node-flags "--max-semi-space-size=16"] [--balancer-args "..."]
 *
 * `--dist` measures another build (see bench/ab.ts for how to build an old commit's dist).
 */
import { spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { loadAutocannon } from './deps.js'
import { cpuSeconds, freePort, root, startReplica, stopChild, track, type Replica } from './procs.js'
import { parseValueFlags } from './args.js'

const autocannon = loadAutocannon()

interface Options {
  dist: string
  requests: number
  warmup: number
  connections: number[]
  nodeFlags: string[]
  balancerArgs: string[]
}

function parseOptions(argv: string[]): Options {
  const o: Options = { dist: join(root, 'dist'), requests: 50_000, warmup: 10_000, connections: [10, 100], nodeFlags: [], balancerArgs: [] }
  const words = (v: string): string[] => v.split(/\s+/).filter(Boolean)
  parseValueFlags(
    argv,
    {
      '--dist': (v) => (o.dist = resolve(v)),
      '--requests': (v) => (o.requests = Number(v)),
      '--warmup': (v) => (o.warmup = Number(v)),
      '--connections': (v) => (o.connections = v.split(',').map(Number)),
      '--node-flags': (v) => (o.nodeFlags = words(v)),
      '--balancer-args': (v) => (o.balancerArgs = words(v)),
    },
    '[--dist DIR] [--requests N] [--warmup N] [--connections 10,100] [--node-flags FLAGS] [--balancer-args FLAGS]',
  )
  if (!existsSync(join(o.dist, 'bench', 'serve.js'))) throw new Error(`${o.dist} has no bench/serve.js`)
  if (!(Number.isInteger(o.requests) && o.requests >= 1000 && o.requests <= 1_000_000)) throw new Error('--requests must be an integer from 1000 to 1000000')
  if (!(Number.isInteger(o.warmup) && o.warmup >= 0 && o.warmup <= 1_000_000)) throw new Error('--warmup must be an integer from 0 to 1000000')
  if (o.connections.length === 0 || o.connections.some((c) => !Number.isInteger(c) || c < 1 || c > 1000)) throw new Error('--connections must be integers from 1 to 1000')
  return o
}

/**
 * V8 prints `allocated=` as an unsigned 64-bit number; a delta that went below zero (its
 * counter of allocated bytes can step back between two GCs) shows up as a value near 2^64,
 * which once made a run report 3.7e14 bytes per request. Read it as the signed delta it is.
 */
function signedDelta(text: string): number {
  const v = BigInt(text)
  return Number(v >= 2n ** 63n ? v - 2n ** 64n : v)
}

/** What the GC trace has said so far. */
class GcTrace {
  allocated = 0
  gcs = 0
  pauseMs = 0
  private partial = ''

  feed(text: string): void {
    const lines = (this.partial + text).split('\n')
    this.partial = lines.pop()!
    for (const line of lines) {
      const allocated = /\ballocated=(\d+)/.exec(line)
      if (allocated === null) continue
      this.allocated += signedDelta(allocated[1]!)
      this.gcs++
      const pause = /\bpause=([\d.]+)/.exec(line)
      if (pause !== null) this.pauseMs += Number(pause[1])
    }
  }
}

async function main(): Promise<void> {
  const o = parseOptions(process.argv.slice(2))
  const watchdog = setTimeout(() => {
    console.error('alloc: taking far too long; giving up')
    process.exit(1)
  }, (o.connections.length * (o.requests + o.warmup)) / 200 * 1000 + 120_000)
  watchdog.unref()
  const replicas: Replica[] = []
  for (let i = 1; i <= 3; i++) replicas.push(await startReplica(`Server ${i}`))
  const port = await freePort()
  const upstreams = replicas.map((r) => ({ name: r.name, host: r.host, port: r.port }))
  const child = spawn(process.execPath, [...o.nodeFlags, '--trace-gc-nvp', join(o.dist, 'bench', 'serve.js'), '--port', String(port), '--host', '127.0.0.1', '--replicas', '3', '--quiet', ...o.balancerArgs], {
    env: { ...process.env, LB_ADMIN_PORT: 'off', BENCH_UPSTREAMS: JSON.stringify(upstreams) },
    stdio: ['ignore', 'pipe', 'inherit', 'ipc'],
  })
  track(child)
  const trace = new GcTrace()
  child.stdout!.setEncoding('utf8').on('data', (d: string) => trace.feed(d))
  try {
    await new Promise<void>((resolveReady, reject) => {
      const timer = setTimeout(() => reject(new Error('balancer did not start in 20 s')), 20_000)
      child.once('exit', (code) => reject(new Error(`balancer exited (${code})`)))
      child.on('message', (m: { type?: string }) => {
        if (m?.type === 'ready') {
          clearTimeout(timer)
          resolveReady()
        }
      })
    })
    const url = `http://127.0.0.1:${port}/home`
    console.log(`build ${o.dist}${o.nodeFlags.length ? `, node ${o.nodeFlags.join(' ')}` : ''}${o.balancerArgs.length ? `, balancer ${o.balancerArgs.join(' ')}` : ''}: ${o.requests} requests per row`)
    console.log('| conns | bytes allocated/req | GCs per 1000 req | GC pause µs/req | CPU µs/req | errors |')
    console.log('|---:|---:|---:|---:|---:|---:|')
    for (const c of o.connections) {
      if (o.warmup > 0) await autocannon({ url, connections: c, amount: o.warmup, pipelining: 1, timeout: 10 })
      await sleep(200) // let the trace of the warm-up arrive
      const a0 = trace.allocated
      const g0 = trace.gcs
      const p0 = trace.pauseMs
      const cpu0 = cpuSeconds([child.pid!])
      const r = await autocannon({ url, connections: c, amount: o.requests, pipelining: 1, timeout: 10 })
      const cpu = cpuSeconds([child.pid!]) - cpu0
      await sleep(200)
      const n = r.requests.total
      console.log(
        `| ${c} | ${Math.round((trace.allocated - a0) / n)} | ${(((trace.gcs - g0) * 1000) / n).toFixed(2)} | ${(((trace.pauseMs - p0) * 1000) / n).toFixed(2)} | ${((cpu * 1e6) / n).toFixed(1)} | ${r.errors + r.timeouts + r.non2xx} |`,
      )
    }
  } finally {
    await stopChild(child)
    await Promise.all(replicas.map((r) => r.stop()))
    clearTimeout(watchdog)
  }
}

main().catch((err: Error) => {
  console.error(`alloc: ${err.message}`)
  process.exit(1)
})
