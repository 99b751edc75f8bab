/**
 * Memory per abusive client: clients that pipeline GETs as fast as the balancer takes them and
 * never read an answer (issue 14's repro: `GET /home HTTP/1.1\r\nHost: t\r\n\r\n` x 2000 written
 * whenever the socket accepts it). Reports the balancer's RSS before, at the end of the abuse,
 * and after the clients have gone, and the latency of a well-behaved client meanwhile.
 * Bounded: each run lasts --seconds, writes only what TCP flow control lets through.
 *
 *   npm run build && node dist/bench/edge-memory.js [--clients 100,1000] [--seconds 15] [--fast-front true|false]
 */
import { connect, type Socket } from 'node:net'
import { readFileSync } from 'node:fs'
import { request } from 'node:http'
import { startBalancer, startReplica, type Replica } from './procs.js'
import { parseValueFlags } from './args.js'
import { median } from './stats.js'

const o = { clients: [100, 1000], seconds: 15, fastFront: 'true' }
parseValueFlags(
  process.argv.slice(2),
  {
    '--clients': (v) => (o.clients = v.split(',').map(Number)),
    '--seconds': (v) => (o.seconds = Number(v)),
    '--fast-front': (v) => (o.fastFront = v),
  },
  'node dist/bench/edge-memory.js [--clients 100,1000] [--seconds 15] [--fast-front true|false]',
)

const BURST = Buffer.from('GET /home HTTP/1.1\r\nHost: t\r\n\r\n'.repeat(2000))

function rssMiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
  return m ? Number(m[1]) / 1024 : NaN
}

/** ms for one GET /home on a new connection; Infinity if it failed or took over 10 s. */
function get(url: string): Promise<number> {
  const started = performance.now()
  return new Promise<number>((resolve, reject) => {
    const req = request(`${url}/home`, { agent: false }, (res) => {
      res.resume()
      res.on('end', () => resolve(performance.now() - started))
    })
    req.on('error', reject)
    req.setTimeout(10_000, () => req.destroy(new Error('timeout')))
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

async function run(clients: number, replicas: readonly Replica[]): Promise<void> {
  const lb = await startBalancer(replicas, [`--fast-front=${o.fastFront}`, '--max-connections', String(clients + 100)])
  try {
    const pid = lb.child.pid!
    const port = Number(new URL(lb.url).port)
    for (let i = 0; i < 200; i++) if ((await get(lb.url)) === Infinity) throw new Error('the balancer does not answer')
    await sleep(1000)
    const before = rssMiB(pid)
    const until = Date.now() + o.seconds * 1000
    const sockets: Socket[] = []
    for (let i = 0; i < clients; i++) sockets.push(abuser(port, until))
    let peak = before
    const latencies: number[] = []
    while (Date.now() < until) {
      latencies.push(await get(lb.url))
      peak = Math.max(peak, rssMiB(pid))
      await sleep(200)
    }
    const during = rssMiB(pid)
    peak = Math.max(peak, during)
    for (const s of sockets) s.destroy()
    await sleep(5000)
    const after = rssMiB(pid)
    const perClient = ((peak - before) * 1024) / clients
    console.log(
      `${clients} clients, ${o.seconds} s, --fast-front ${o.fastFront}: RSS before ${before.toFixed(0)} MiB, during ${during.toFixed(0)} MiB (peak ${peak.toFixed(0)}), ` +
        `after ${after.toFixed(0)} MiB; ${perClient.toFixed(0)} KiB per client at the peak; /home p50 ${median(latencies).toFixed(1)} ms meanwhile, from this process (${latencies.length} requests: ${latencies.map((l) => (l === Infinity ? 'timeout' : l.toFixed(0))).join(' ')})`,
    )
  } finally {
    await lb.stop()
  }
}

const replicas = await Promise.all([startReplica('Server 1'), startReplica('Server 2'), startReplica('Server 3')])
try {
  for (const n of o.clients) await run(n, replicas)
} finally {
  await Promise.all(replicas.map((r) => r.stop()))
}
