// A data-plane worker's own decisions with real worker processes. Bounded loads: a worker sees
// only its own in-flight requests, so it counts each of them N times (--workers N), as if the
// other workers carried as much (src/route/bounded.ts). Five requests for one hot key,
// pipelined on one connection, reach one worker; where they go tells the scaled rule from the
// raw one. (The fast front answers one request of a connection at a time; node:http, with
// --max-pipelined, takes several at once.)
import t from 'tap'
import { fileURLToPath } from 'node:url'
import { startTestCluster } from '../fixtures/app.js'
import { call, waitFor } from '../fixtures/http.js'
import { open } from '../fixtures/sockets.js'
import { parseMetrics, valueOf } from '../fixtures/observe.js'
import { ProcessProvider } from '../../src/replicas/process.js'
import type { ClusterApp } from '../../src/cluster/primary.js'

const slowReplica = fileURLToPath(new URL('../fixtures/slow-replica.mjs', import.meta.url))

/** In-flight requests per replica, summed over the workers (the primary's /metrics). */
async function inflight(app: ClusterApp, names: readonly string[]): Promise<number[]> {
  const samples = parseMetrics((await call(`${app.adminUrl}/metrics`)).body)
  return names.map((replica) => valueOf(samples, 'ring_balancer_inflight_requests', { replica }) ?? -1)
}

t.test('bounded loads: a worker of 2 counts each of its in-flight requests twice', async (t) => {
  const provider = new ProcessProvider({ entry: slowReplica, startTimeoutMs: 10_000, stopTimeoutMs: 1000 })
  const app = await startTestCluster(t, ['--replicas', '3', '--key', 'header:x-k', '--balance-factor', '1.25', '--fast-front=false', '--max-pipelined', '16', '--drain-timeout', '1000'], { provider })
  const ring = app.balancer.ring
  const id = 4242
  // The replicas in the order a request for `id` walks them: owner first.
  const walk: string[] = []
  ring.next(id, (_v, name) => (walk.push(name), false))
  t.equal(walk.length, 3)

  const conn = await open(Number(new URL(app.url).port))
  t.teardown(() => conn.socket.destroy())
  conn.write(`GET /slow?ms=15000 HTTP/1.1\r\nhost: x\r\nx-k: ${id}\r\n\r\n`.repeat(5))
  await waitFor('5 requests in flight', async () => (await inflight(app, walk)).reduce((a, b) => a + b, 0) === 5, 10_000, 50)

  // Bound = ceil(1.25 × (2 × local in flight + 1) / 3), compared with 2 × a replica's local
  // count: owner, next, owner, next, then the owner (4 < 4? no) and the next are full and the
  // third takes one. Raw local counts (bound ceil(1.25 × (local + 1) / 3)) would give the
  // owner a third request instead: 3, 2, 0.
  t.same(await inflight(app, walk), [2, 2, 1], 'owner 2, next 2, third 1: as one process with twice the load')
})
