/**
 * What counting one request costs: prom-client (the usual Node.js Prometheus client) against
 * this balancer's per-replica typed-array counters (src/observe/replica-stats.ts), for what the
 * request path does per request: one counter increment labelled {replica, code} and one
 * histogram observation labelled {replica}. Then the rest of what a request costs with metrics
 * on (the clock reads) and what the access log costs per line (formatting and buffering; the
 * writes go to a stream that drops them). Reports ns per operation, the median of 7 runs.
 *
 *   npm run build && node dist/bench/metrics-cost.js [--ops 2000000]
 *
 * prom-client is in bench/package.json only for this comparison; the balancer does not use it.
 */

/** The parts of prom-client used here (it is loaded from bench/node_modules, so its types are not visible to tsc). */
interface PromChild {
  inc(): void
  observe(v: number): void
}
interface PromMetric {
  inc(labels: Record<string, string>): void
  observe(labels: Record<string, string>, v: number): void
  labels(...values: string[]): PromChild
}
interface PromClient {
  Registry: new () => object
  Counter: new (o: object) => PromMetric
  Histogram: new (o: object) => PromMetric
}
const { Counter, Histogram, Registry } = loadPromClient() as PromClient
import { loadPromClient } from './deps.js'
import { DURATION_BUCKETS, ReplicaStats } from '../src/observe/replica-stats.js'
import { median } from './stats.js'
import { Writable } from 'node:stream'
import { AccessLog } from '../src/observe/access-log.js'
import type { FinishedRequest } from '../src/observe/finished.js'
import { parseValueFlags } from './args.js'

let ops = 2_000_000
parseValueFlags(process.argv.slice(2), { '--ops': (v) => (ops = Number(v)) }, '[--ops N]')
if (!(ops >= 1000)) throw new Error('--ops must be >= 1000')

const REPLICAS = ['Server 1', 'Server 2', 'Server 3', 'Server 4', 'Server 5', 'Server 6', 'Server 7', 'Server 8']
const CLASSES = ['1xx', '2xx', '3xx', '4xx', '5xx']
// The same inputs for every contender: replica index, status, duration in ms.
const N = 4096
const replicaOf = Uint8Array.from({ length: N }, (_, i) => (i * 7) % REPLICAS.length)
const statusOf = Uint16Array.from({ length: N }, (_, i) => (i % 50 === 0 ? 503 : i % 20 === 0 ? 404 : 200))
const msOf = Float64Array.from({ length: N }, (_, i) => 0.2 + ((i * 37) % 100) / 10)

function time(label: string, run: (n: number) => void): number {
  run(Math.min(ops, 200_000)) // warm-up: JIT
  const samples: number[] = []
  for (let k = 0; k < 7; k++) {
    const t0 = process.hrtime.bigint()
    run(ops)
    samples.push(Number(process.hrtime.bigint() - t0) / ops)
  }
  const ns = median(samples)
  console.log(`${label.padEnd(58)} ${ns.toFixed(1).padStart(7)} ns/op`)
  return ns
}

const registry = new Registry()
const promCounter = new Counter({ name: 'c_total', help: 'c', labelNames: ['replica', 'code'], registers: [registry] })
const promHistogram = new Histogram({ name: 'h_seconds', help: 'h', labelNames: ['replica'], buckets: [...DURATION_BUCKETS], registers: [registry] })
const children = REPLICAS.map((r) => CLASSES.map((c) => promCounter.labels(r, c)))
const histChildren = REPLICAS.map((r) => promHistogram.labels(r))
const stats = REPLICAS.map((r) => new ReplicaStats(r))

console.log(`${ops} operations per run, ${REPLICAS.length} replicas, median of 7 runs (node ${process.version})`)
const pc = time('prom-client counter.inc({replica, code})', (n) => {
  for (let i = 0; i < n; i++) {
    const k = i & (N - 1)
    promCounter.inc({ replica: REPLICAS[replicaOf[k]!]!, code: CLASSES[((statusOf[k]! / 100) | 0) - 1]! })
  }
})
time('prom-client counter child (labels() looked up once) .inc()', (n) => {
  for (let i = 0; i < n; i++) {
    const k = i & (N - 1)
    children[replicaOf[k]!]![((statusOf[k]! / 100) | 0) - 1]!.inc()
  }
})
const ph = time('prom-client histogram.observe({replica}, seconds)', (n) => {
  for (let i = 0; i < n; i++) {
    const k = i & (N - 1)
    promHistogram.observe({ replica: REPLICAS[replicaOf[k]!]! }, msOf[k]! / 1000)
  }
})
time('prom-client histogram child .observe(seconds)', (n) => {
  for (let i = 0; i < n; i++) {
    const k = i & (N - 1)
    histChildren[replicaOf[k]!]!.observe(msOf[k]! / 1000)
  }
})
const ours = time('ReplicaStats.answered(status, ms): counter + histogram', (n) => {
  for (let i = 0; i < n; i++) {
    const k = i & (N - 1)
    stats[replicaOf[k]!]!.answered(statusOf[k]!, msOf[k]!)
  }
})
console.log(`per request (counter + histogram): prom-client ${(pc + ph).toFixed(1)} ns, ReplicaStats ${ours.toFixed(1)} ns`)

time('performance.now() (the request path reads it 3 times with metrics on)', (n) => {
  let x = 0
  for (let i = 0; i < n; i++) x += performance.now()
  if (x === 0) console.log('')
})
const sink = new Writable({
  write(_chunk, _enc, done) {
    done()
  },
})
const request: FinishedRequest = {
  incoming: { method: 'GET', url: '/home', httpVersion: '1.1', headers: { 'user-agent': 'autocannon' }, socket: { remoteAddress: '127.0.0.1' } },
  status: 200,
  startedAt: 0,
  upstreamMs: 0.42,
  bytesIn: 0,
  bytesOut: 63,
  flag: '-',
  replicaName: 'Server 1',
}
for (const format of ['json', 'combined'] as const) {
  const log = new AccessLog({ format, sink, flushMs: 60_000 })
  time(`access log (${format}): one line formatted and buffered`, (n) => {
    for (let i = 0; i < n; i++) log.request(request, 1.234)
  })
  await log.close()
}
