// Upstream pipelining (`--upstream-pipeline`, pool.ts): under load, GET/HEAD requests for one
// replica share a connection; every answer still reaches its own request, and a connection
// that ends early fails only what it must, in a way the proxy can retry.
import t, { type Test } from 'tap'
import { createServer as createHttpServer, Agent, type Server } from 'node:http'
import type { Socket } from 'node:net'
import { HashRing } from '../../src/ring/ring.js'
import { Upstream } from '../../src/proxy/upstream.js'
import { createProxy } from '../../src/proxy/http.js'
import { BATCH_ABOVE, ConnectionPool, PIPELINE_ABORTED, type Connection, type ConnectionUser } from '../../src/proxy/pool.js'
import { call, listen, waitFor } from '../fixtures/http.js'
import { rawReplica } from '../fixtures/raw-replica.js'
import { startTestApp } from '../fixtures/app.js'

/** What one request saw: its answer's status and body, or its failure code. */
interface Outcome {
  status?: number
  body: string
  error?: string
  conn?: Connection
}

function recorder(): { user: ConnectionUser; outcome: Outcome; done: () => boolean } {
  const outcome: Outcome = { body: '' }
  let finished = false
  const user: ConnectionUser = {
    onStart: (c) => (outcome.conn = c),
    onConnected: () => {},
    onHead: (status) => (outcome.status = status),
    onData: (chunk, last) => {
      outcome.body += chunk.toString('latin1')
      if (last) finished = true
    },
    onFailure: (err) => {
      outcome.error = err.code ?? err.message
      finished = true
    },
  }
  return { user, outcome, done: () => finished }
}

const get = (path: string, method = 'GET'): string => `${method} ${path} HTTP/1.1\r\nHost: r\r\n\r\n`

/**
 * A replica that answers each request with its path as the body (HEAD: the length only),
 * `/hold/...` never, `/close/...` with `Connection: close`. Each answer is its own write. In
 * order, as HTTP/1.1 requires: nothing is answered behind a held request on its connection.
 */
async function echoReplica(t: Test, answerFrom = 0, holds = true): Promise<{ port: number; connections: () => number; seen: string[] }> {
  const seen: string[] = []
  const blocked = new WeakSet<Socket>()
  // With `answerFrom`, answers wait until that many requests have arrived (so many are in flight).
  const waiting: Array<() => void> = []
  const r = await rawReplica(t, (socket: Socket, head: string) => {
    const [method, path] = head.split(' ') as [string, string]
    seen.push(`${method} ${path}`)
    if (holds && path.startsWith('/hold/')) blocked.add(socket)
    if (blocked.has(socket)) return
    const answer = (): void => {
      const close = path.startsWith('/close/') ? 'Connection: close\r\n' : ''
      socket.write(`HTTP/1.1 200 OK\r\n${close}Content-Length: ${path.length}\r\n\r\n${method === 'HEAD' ? '' : path}`)
      if (close) socket.end()
    }
    if (seen.length < answerFrom) waiting.push(answer)
    else {
      for (const w of waiting.splice(0)) w()
      answer()
    }
  })
  return { ...r, seen }
}

/** A pool for one test; teardown waits until its connections are gone (their requests count as in flight until then). */
function usePool(t: Test, port: number, pipeline?: number): ConnectionPool {
  const pool = new ConnectionPool('127.0.0.1', port, pipeline === undefined ? {} : { pipeline })
  t.teardown(async () => {
    pool.close()
    await waitFor('the pool to close its connections', () => pool.size === 0, 5000)
  })
  return pool
}

/** Put BATCH_ABOVE + 1 never-answered requests in flight, so that the pool counts as under load. */
function load(pool: ConnectionPool): void {
  for (let i = 0; i <= BATCH_ABOVE; i++) pool.request(recorder().user, get(`/hold/${i}`), false, 60_000, true, true)
}

t.test('under load, GET/HEAD requests share connections and each gets its own answer', async (t) => {
  const r = await echoReplica(t)
  const pool = usePool(t, r.port, 4)
  load(pool)
  const before = pool.size
  const reqs = Array.from({ length: 40 }, (_, i) => {
    const rec = recorder()
    const method = i % 5 === 0 ? 'HEAD' : 'GET'
    pool.request(rec.user, get(`/p/${i}`, method), method === 'HEAD', 5000, true, true)
    return { ...rec, i, method }
  })
  t.equal(pool.size - before, 10, '40 requests, 4 to a connection: 10 connections')
  await waitFor('all 40 answers', () => reqs.every((q) => q.done()), 5000)
  for (const q of reqs) {
    const want = q.method === 'HEAD' ? '' : `/p/${q.i}`
    if (q.outcome.status !== 200 || q.outcome.body !== want || q.outcome.error) t.fail(`request ${q.i}: ${JSON.stringify(q.outcome)}`)
  }
  t.pass('every answer went to its own request, HEAD answers without a body')
  t.equal(pool.idleCount, 10, 'the shared connections are reused afterwards')
})

t.test('without load, or with a body, or for other methods, nothing is shared', async (t) => {
  const r = await echoReplica(t)
  const pool = usePool(t, r.port, 4)
  const quiet = [recorder(), recorder()]
  quiet.forEach((q, i) => pool.request(q.user, get(`/q/${i}`), false, 5000, true, true))
  t.equal(pool.size, 2, 'few requests in flight: a connection each')
  load(pool)
  const before = pool.size
  const others = [recorder(), recorder(), recorder()]
  // pipelinable=false: what the proxy passes for POST/PUT/DELETE and for requests with a body.
  others.forEach((q, i) => pool.request(q.user, get(`/o/${i}`, 'DELETE'), false, 5000, true, false))
  t.equal(pool.size - before, 3, 'non-GET/HEAD requests never share a connection')
  await waitFor('answers', () => [...quiet, ...others].every((q) => q.done()), 5000)
})

t.test('a timeout fails the slow request, the ones behind it fail as retryable', async (t) => {
  const r = await echoReplica(t)
  const pool = usePool(t, r.port, 4)
  load(pool)
  const slow = recorder()
  const behind = [recorder(), recorder(), recorder()]
  pool.request(slow.user, get('/hold/slow'), false, 300, true, true)
  behind.forEach((q, i) => pool.request(q.user, get(`/b/${i}`), false, 300, true, true))
  t.ok(behind.every((q) => q.outcome.conn === slow.outcome.conn), 'all four on one connection')
  await waitFor('all four to end', () => slow.done() && behind.every((q) => q.done()), 5000)
  t.equal(slow.outcome.error, 'ETIMEDOUT_UPSTREAM')
  t.same(
    behind.map((q) => q.outcome.error),
    [PIPELINE_ABORTED, PIPELINE_ABORTED, PIPELINE_ABORTED],
  )
})

t.test('a replica that closes after an answer: the requests behind it fail as retryable', async (t) => {
  const r = await echoReplica(t)
  const pool = usePool(t, r.port, 4)
  load(pool)
  const first = recorder()
  const behind = [recorder(), recorder()]
  pool.request(first.user, get('/close/1'), false, 5000, true, true)
  behind.forEach((q, i) => pool.request(q.user, get(`/b/${i}`), false, 5000, true, true))
  await waitFor('all to end', () => first.done() && behind.every((q) => q.done()), 5000)
  t.same([first.outcome.status, first.outcome.body], [200, '/close/1'], 'the answer that said close arrived')
  t.same(
    behind.map((q) => q.outcome.error),
    [PIPELINE_ABORTED, PIPELINE_ABORTED],
  )
})

t.test('a request whose client left is read and dropped; the others on its connection go on', async (t) => {
  const r = await echoReplica(t)
  const pool = usePool(t, r.port, 4)
  load(pool)
  const reqs = [recorder(), recorder(), recorder(), recorder()]
  reqs.forEach((q, i) => pool.request(q.user, get(`/d/${i}`), false, 5000, true, true))
  const conn = reqs[0]!.outcome.conn!
  t.ok(reqs.every((q) => q.outcome.conn === conn))
  conn.discard(reqs[0]!.user) // the current one
  conn.discard(reqs[2]!.user) // one in the queue
  await waitFor('the other two answers', () => reqs[1]!.done() && reqs[3]!.done(), 5000)
  t.same([reqs[1]!.outcome.body, reqs[3]!.outcome.body], ['/d/1', '/d/3'])
  t.same([reqs[0]!.done(), reqs[2]!.done()], [false, false], 'the abandoned ones heard nothing')
  t.equal(conn.socket.destroyed, false, 'the connection was not closed for them')
  await waitFor('the connection back in the pool', () => pool.idleCount === 1, 5000)
})

t.test('through the proxy: requests behind a slow one are retried on the next replica', async (t) => {
  const n = BATCH_ABOVE * 3
  // r0 answers nothing before it has n requests (the warm-up below): all in flight at once.
  const slowReplica = await echoReplica(t, n)
  const good = await echoReplica(t, 0, false)
  const ring = new HashRing<Upstream>({ slots: 512, vnodes: 9, hash: 'default', probe: 'linear' })
  const upstreams = [slowReplica.port, good.port].map((port, i) => new Upstream({ name: `r${i}`, host: '127.0.0.1', port, id: `r${i}` }, 8))
  upstreams.forEach((u) => {
    ring.add(u.name, u)
    t.teardown(() => u.close())
  })
  let key = 0
  while (ring.pick(key) !== upstreams[0]) key++
  const server: Server = createHttpServer(createProxy({ ring, keyOf: () => key, upstreamTimeoutMs: 500 }))
  const url = `http://127.0.0.1:${await listen(t, server)}`
  const agent = new Agent({ keepAlive: true, maxSockets: Infinity })
  t.teardown(() => agent.destroy())
  // Enough at once for the pool to count as under load; every fourth one never gets an answer,
  // so most shared connections carry requests stuck behind a slow one.
  const slow = (i: number): boolean => i % 4 === 1
  // First n client connections, kept alive: then the n requests below leave the client in one
  // turn and reach the proxy together, as under real load.
  await Promise.all(Array.from({ length: n }, (_, i) => call(`${url}/warm/${i}`, 'GET', undefined, {}, agent)))
  const replies = await Promise.all(Array.from({ length: n }, (_, i) => call(`${url}/${slow(i) ? 'hold' : 'r'}/${i}`, 'GET', undefined, {}, agent)))
  t.ok(upstreams[0]!.pool.pipelined > n / 2, `${upstreams[0]!.pool.pipelined} of ${n} requests pipelined`)
  replies.forEach((reply, i) => {
    const path = `/${slow(i) ? 'hold' : 'r'}/${i}`
    // A slow one answers 504 where it was first on its connection at the timeout; one queued
    // behind another slow one was retried on r1, which answers everything.
    const ok = reply.status === 200 ? reply.body === path : slow(i) && reply.status === 504
    if (!ok) t.fail(`request ${i}: ${reply.status} ${reply.body}`)
  })
  t.pass('every request got its own answer, or 504 if it was the slow one')
  t.ok(good.seen.some((s) => s.startsWith('GET /r/')), `${good.seen.length} requests stuck behind slow ones were retried on the next replica`)
  await waitFor('nothing in flight', () => upstreams.every((u) => u.inflight === 0), 5000)
})

t.test('a real node:http replica answers pipelined requests in order', async (t) => {
  const backend = createHttpServer((req, res) => {
    req.resume()
    res.end(`${req.method} ${req.url}`)
  })
  const backendPort = await listen(t, backend)
  let connections = 0
  backend.on('connection', () => connections++)
  const pool = usePool(t, backendPort, 8)
  // Load from a pool of its own, so that this pool's connections are all pipelined ones.
  const loadPool = usePool(t, backendPort)
  for (let i = 0; i <= BATCH_ABOVE; i++) loadPool.request(recorder().user, get(`/load/${i}`), false, 60_000, true, true)
  const reqs = Array.from({ length: 64 }, (_, i) => {
    const rec = recorder()
    pool.request(rec.user, get(`/n/${i}`), false, 5000, true, true)
    return rec
  })
  await waitFor('64 answers', () => reqs.every((q) => q.done()), 5000)
  reqs.forEach((q, i) => {
    if (q.outcome.body !== `GET /n/${i}`) t.fail(`request ${i}: ${JSON.stringify(q.outcome)}`)
  })
  t.pass('64 answers in order')
  t.equal(pool.size, 8, '64 requests over 8 connections')
  t.ok(connections >= 8)
})

t.test('the app gives --upstream-pipeline to every replica it starts', async (t) => {
  const app = await startTestApp(t, ['--replicas', '2', '--upstream-pipeline', '4'])
  const agent = new Agent({ keepAlive: true, maxSockets: Infinity })
  t.teardown(() => agent.destroy())
  const n = BATCH_ABOVE * 3
  const burst = (): Promise<number[]> => Promise.all(Array.from({ length: n }, () => call(`${app.url}/home`, 'GET', undefined, {}, agent).then((r) => r.status)))
  // Bursts from warm keep-alive connections arrive together, as under load; a few suffice.
  let statuses: number[] = []
  await waitFor('requests to share replica connections', async () => {
    statuses = statuses.concat(await burst())
    return app.balancer.upstreams().reduce((sum, u) => sum + u.pool.pipelined, 0) > 0
  }, 20_000)
  t.ok(statuses.every((s) => s === 200), `${statuses.length} answers, all 200`)
})
