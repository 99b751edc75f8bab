// Upstream pipelining (`--upstream-pipeline`, pool.ts): under load, GET/HEAD requests for one
// replica share a connection; every answer still reaches its own request, a connection that
// ends early fails only what it must, in a way the proxy can retry, and a request stuck behind
// a slow answer is sent again alone (the stall rescue), after which the replica gets no
// pipelining for a while.
import t, { type Test } from 'tap'
import { createServer as createHttpServer, Agent, type Server } from 'node:http'
import type { Socket } from 'node:net'
import { HashRing } from '../../src/ring/ring.js'
import { Upstream } from '../../src/upstream/upstream.js'
import { proxyOptions } from '../fixtures/proxy.js'
import { createProxy } from '../../src/front/http.js'
import { PIPELINE_ABORTED, PIPELINE_STALLED } from '../../src/upstream/errors.js'
import { ConnectionPool, type PoolOptions } from '../../src/upstream/pool.js'
import type { ConnectionUser, UpstreamConnection as Connection } from '../../src/upstream/request.js'
import { BATCH_ABOVE, WriteBatcher } from '../../src/upstream/batcher.js'
import { STALL_FACTOR, TYPICAL_AFTER } from '../../src/upstream/defaults.js'
import { call, listen, waitFor } from '../fixtures/http.js'
import { rawReplica } from '../fixtures/raw-replica.js'
import { startTestApp } from '../fixtures/app.js'
import { setTimeout as sleep } from 'node:timers/promises'

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
function usePool(t: Test, port: number, pipeline?: number, options: PoolOptions = {}): ConnectionPool {
  const pool = new ConnectionPool('127.0.0.1', port, pipeline === undefined ? options : { ...options, pipeline })
  t.teardown(async () => {
    pool.close()
    await waitFor('the pool to close its connections', () => pool.size === 0, 5000)
  })
  return pool
}

/** Have the pool learn the replica's typical answer time (the stall rescue waits for that). */
async function warm(pool: ConnectionPool): Promise<void> {
  const reqs = Array.from({ length: TYPICAL_AFTER }, (_, i) => {
    const rec = recorder()
    pool.request({ user: rec.user, head: get(`/warm/${i}`), isHead: false, timeoutMs: 5000, bodyless: true, pipelinable: false })
    return rec
  })
  await waitFor('warm-up answers', () => reqs.every((q) => q.done()), 5000)
}

/** Put BATCH_ABOVE + 1 never-answered requests in flight, so that the pool counts as under load. */
function load(pool: ConnectionPool): void {
  for (let i = 0; i <= BATCH_ABOVE; i++) pool.request({ user: recorder().user, head: get(`/hold/${i}`), isHead: false, timeoutMs: 60_000, bodyless: true, pipelinable: true })
}

t.test('under load, GET/HEAD requests share connections and each gets its own answer', async (t) => {
  const r = await echoReplica(t)
  const pool = usePool(t, r.port, 4)
  load(pool)
  const before = pool.size
  const reqs = Array.from({ length: 40 }, (_, i) => {
    const rec = recorder()
    const method = i % 5 === 0 ? 'HEAD' : 'GET'
    pool.request({ user: rec.user, head: get(`/p/${i}`, method), isHead: method === 'HEAD', timeoutMs: 5000, bodyless: true, pipelinable: true })
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
  quiet.forEach((q, i) => pool.request({ user: q.user, head: get(`/q/${i}`), isHead: false, timeoutMs: 5000, bodyless: true, pipelinable: true }))
  t.equal(pool.size, 2, 'few requests in flight: a connection each')
  load(pool)
  const before = pool.size
  const others = [recorder(), recorder(), recorder()]
  // pipelinable=false: what the proxy passes for POST/PUT/DELETE and for requests with a body.
  others.forEach((q, i) => pool.request({ user: q.user, head: get(`/o/${i}`, 'DELETE'), isHead: false, timeoutMs: 5000, bodyless: true, pipelinable: false }))
  t.equal(pool.size - before, 3, 'non-GET/HEAD requests never share a connection')
  await waitFor('answers', () => [...quiet, ...others].every((q) => q.done()), 5000)
})

t.test('without the stall rescue, a timeout fails the slow request and the ones behind it fail as retryable', async (t) => {
  const r = await echoReplica(t)
  const pool = usePool(t, r.port, 4, { stallMs: 0 })
  load(pool)
  const slow = recorder()
  const behind = [recorder(), recorder(), recorder()]
  pool.request({ user: slow.user, head: get('/hold/slow'), isHead: false, timeoutMs: 300, bodyless: true, pipelinable: true })
  behind.forEach((q, i) => pool.request({ user: q.user, head: get(`/b/${i}`), isHead: false, timeoutMs: 300, bodyless: true, pipelinable: true }))
  t.ok(behind.every((q) => q.outcome.conn === slow.outcome.conn), 'all four on one connection')
  await waitFor('all four to end', () => slow.done() && behind.every((q) => q.done()), 5000)
  t.equal(slow.outcome.error, 'ETIMEDOUT_UPSTREAM')
  t.same(
    behind.map((q) => q.outcome.error),
    [PIPELINE_ABORTED, PIPELINE_ABORTED, PIPELINE_ABORTED],
  )
})

t.test('a replica that closes after an answer: the requests behind it fail as retryable, and pipelining to it backs off', async (t) => {
  const r = await echoReplica(t)
  const pool = usePool(t, r.port, 4)
  load(pool)
  const first = recorder()
  const behind = [recorder(), recorder()]
  pool.request({ user: first.user, head: get('/close/1'), isHead: false, timeoutMs: 5000, bodyless: true, pipelinable: true })
  behind.forEach((q, i) => pool.request({ user: q.user, head: get(`/b/${i}`), isHead: false, timeoutMs: 5000, bodyless: true, pipelinable: true }))
  await waitFor('all to end', () => first.done() && behind.every((q) => q.done()), 5000)
  t.same([first.outcome.status, first.outcome.body], [200, '/close/1'], 'the answer that said close arrived')
  t.same(
    behind.map((q) => q.outcome.error),
    [PIPELINE_ABORTED, PIPELINE_ABORTED],
  )
  t.equal(pool.backOffs, 1)
  const before = pool.pipelined
  const after = [recorder(), recorder(), recorder()]
  after.forEach((q, i) => pool.request({ user: q.user, head: get(`/a/${i}`), isHead: false, timeoutMs: 5000, bodyless: true, pipelinable: true }))
  t.equal(pool.pipelined, before, 'under load still, but nothing shares a connection during the back-off')
  await waitFor('their answers', () => after.every((q) => q.done()), 5000)
})

t.test('stall rescue: requests waiting behind a slow answer fail as PIPELINE_STALLED, their late answers are dropped', async (t) => {
  const r = await echoReplica(t)
  const cooldownMs = 300
  const pool = usePool(t, r.port, 4, { stallMs: 50, cooldownMs })
  await warm(pool)
  // The bound is 50 ms or STALL_FACTOR typical answers, whichever is longer (on a busy machine
  // the typical answer may be slow): the waits below are multiples of the bound in force.
  const bound = pool.stallLimit()
  t.equal(bound, Math.max(50, STALL_FACTOR * pool.typicalMs), `typical answer ${pool.typicalMs.toFixed(1)} ms: the bound is ${bound.toFixed(1)} ms`)
  load(pool)
  const slow = recorder()
  const behind = [recorder(), recorder(), recorder()]
  pool.request({ user: slow.user, head: get('/hold/slow'), isHead: false, timeoutMs: 60_000, bodyless: true, pipelinable: true })
  behind.forEach((q, i) => pool.request({ user: q.user, head: get(`/b/${i}`), isHead: false, timeoutMs: 60_000, bodyless: true, pipelinable: true }))
  const conn = slow.outcome.conn!
  t.ok(behind.every((q) => q.outcome.conn === conn), 'all four on one connection')
  // A client went away while waiting: the rescue has nobody to tell for it.
  conn.discard(behind[1]!.user)
  const began = Date.now()
  // Past the bound, but the replica answered nothing written after them: it may be the one
  // stuck (then moving requests to it would not help), so they stay.
  await waitFor('three times the stall bound to pass', () => Date.now() - began > 3 * bound)
  t.notOk(behind.some((q) => q.done()), 'no rescue without a later answer')
  const later = recorder()
  pool.request({ user: later.user, head: get('/later'), isHead: false, timeoutMs: 5000, bodyless: true, pipelinable: false })
  await waitFor('the waiting ones to be rescued', () => behind[0]!.done() && behind[2]!.done(), 5000)
  t.equal(later.outcome.body, '/later', 'a request written after them was answered')
  const waited = Date.now() - began
  t.same([behind[0]!.outcome.error, behind[2]!.outcome.error], [PIPELINE_STALLED, PIPELINE_STALLED])
  t.ok(waited < 5000, `rescued after ${waited} ms, long before the 60 s upstream timeout`)
  t.notOk(behind[1]!.done(), 'the abandoned one heard nothing')
  t.notOk(slow.done(), 'the slow one still waits for its answer')
  t.equal(conn.socket.destroyed, false, 'the connection stays open for the slow answer')
  t.equal(pool.backOffs, 1, 'pipelining to this replica backs off')

  const before = pool.pipelined
  const during = [recorder(), recorder()]
  during.forEach((q, i) => pool.request({ user: q.user, head: get(`/c/${i}`), isHead: false, timeoutMs: 5000, bodyless: true, pipelinable: true }))
  t.equal(pool.pipelined, before, 'no sharing during the back-off')
  await waitFor('their answers', () => during.every((q) => q.done()), 5000)
  t.same(during.map((q) => q.outcome.body), ['/c/0', '/c/1'])

  let turns = 0
  await waitFor('pipelining to come back after the back-off', async () => {
    // Requests of one event-loop turn share a connection again once the back-off is over.
    const again = [recorder(), recorder()]
    again.forEach((q, i) => pool.request({ user: q.user, head: get(`/d/${turns}/${i}`), isHead: false, timeoutMs: 5000, bodyless: true, pipelinable: true }))
    turns++
    await waitFor('their answers', () => again.every((q) => q.done()), 5000)
    return pool.pipelined > before
  }, 5000, cooldownMs / 3)
  t.ok(turns > 1, 'not at once')
})

t.test('stall rescue: a replica slow across the board is not taken for a stuck one', async (t) => {
  // Every answer takes 100 ms, /p/0 150 ms; /later none. Answers on a connection stay in order.
  const chains = new WeakMap<Socket, Promise<void>>()
  const r = await rawReplica(t, (socket, head) => {
    const path = head.split(' ')[1]!
    const ms = path === '/later' ? 0 : path === '/p/0' ? 150 : 100
    const prev = chains.get(socket) ?? Promise.resolve()
    const delay = sleep(ms)
    chains.set(socket, Promise.all([prev, delay]).then(() => void socket.write(`HTTP/1.1 200 OK\r\nContent-Length: ${path.length}\r\n\r\n${path}`)))
  })
  const pool = usePool(t, r.port, 8, { stallMs: 20 })
  await warm(pool)
  t.ok(pool.typicalMs > 50, `typical answer ${pool.typicalMs.toFixed(1)} ms`)
  load(pool)
  const reqs = Array.from({ length: 8 }, (_, i) => {
    const rec = recorder()
    pool.request({ user: rec.user, head: get(`/p/${i}`), isHead: false, timeoutMs: 60_000, bodyless: true, pipelinable: true })
    return rec
  })
  t.equal(pool.pipelined, 7, 'the eight share one connection')
  // Written after them and answered first: the replica is answering, yet no request is moved.
  const later = recorder()
  pool.request({ user: later.user, head: get('/later'), isHead: false, timeoutMs: 60_000, bodyless: true, pipelinable: false })
  await waitFor('all answers', () => reqs.every((q) => q.done()), 5000)
  t.equal(later.outcome.body, '/later')
  t.same(
    reqs.map((q) => q.outcome.body),
    reqs.map((_, i) => `/p/${i}`),
    'each waited 150 ms or more (over the 20 ms bound, under 8 x typical) and got its own answer',
  )
  t.equal(pool.backOffs, 0)
})

/**
 * Two replicas behind the proxy, r0 slow: it answers nothing before it has n requests, and
 * `/hold/...` never. Requests reach the proxy together, as under real load, so r0's are
 * pipelined, and every fourth one is stuck: most shared connections carry requests behind it.
 */
async function stuckBehindSlow(t: Test, stallMs: number): Promise<{ replies: Array<{ status: number; body: string; order: number }>; slow: (i: number) => boolean; upstreams: Upstream[]; good: { seen: string[] } }> {
  const n = BATCH_ABOVE * 3
  const slowReplica = await echoReplica(t, n)
  const good = await echoReplica(t, 0, false)
  const ring = new HashRing<Upstream>({ slots: 512, vnodes: 9, hash: 'default', probe: 'linear' })
  const batcher = new WriteBatcher()
  const upstreams = [slowReplica.port, good.port].map((port, i) => new Upstream({ name: `r${i}`, host: '127.0.0.1', port, id: `r${i}` }, { pipeline: 8, stallMs, batcher }))
  upstreams.forEach((u) => {
    ring.add(u.name, u)
    t.teardown(() => u.close())
  })
  let key = 0
  while (ring.pick(key) !== upstreams[0]) key++
  const server: Server = createHttpServer(createProxy(proxyOptions({ ring, keyOf: () => key, upstreamTimeoutMs: 1000 })))
  const url = `http://127.0.0.1:${await listen(t, server)}`
  const agent = new Agent({ keepAlive: true, maxSockets: Infinity })
  t.teardown(() => agent.destroy())
  const slow = (i: number): boolean => i % 4 === 1
  // First n client connections, kept alive: then the n requests below leave the client in one
  // turn and reach the proxy together.
  await Promise.all(Array.from({ length: n }, (_, i) => call(`${url}/warm/${i}`, 'GET', undefined, {}, agent)))
  let finished = 0
  const burst = Promise.all(
    Array.from({ length: n }, (_, i) => call(`${url}/${slow(i) ? 'hold' : 'r'}/${i}`, 'GET', undefined, {}, agent).then((r) => ({ ...r, order: finished++ }))),
  )
  // Traffic goes on meanwhile, as under real load: requests written after the stuck ones, which
  // r0 answers (the stall rescue needs that evidence that r0 itself is not stuck).
  let settled = false
  void burst.finally(() => (settled = true))
  for (let k = 0; !settled; k++) {
    const tick = await call(`${url}/tick/${k}`, 'GET', undefined, {}, agent)
    if (tick.status !== 200) t.fail(`tick ${k}: ${tick.status}`)
  }
  const replies = await burst
  t.ok(upstreams[0]!.pool.pipelined > n / 2, `${upstreams[0]!.pool.pipelined} of ${n} requests pipelined`)
  replies.forEach((reply, i) => {
    const path = `/${slow(i) ? 'hold' : 'r'}/${i}`
    // A slow one answers 504 at the timeout; every other one gets its own answer.
    const ok = reply.status === 200 ? reply.body === path : slow(i) && reply.status === 504
    if (!ok) t.fail(`request ${i}: ${reply.status} ${reply.body}`)
  })
  t.pass('every request got its own answer, or 504 if it was a slow one')
  t.teardown(() => waitFor('nothing in flight', () => upstreams.every((u) => u.inflight === 0), 5000))
  return { replies, slow, upstreams, good }
}

t.test('through the proxy, stall rescue: requests stuck behind a slow one are answered by the same replica, before any timeout', async (t) => {
  const { replies, slow, upstreams, good } = await stuckBehindSlow(t, 50)
  t.same(good.seen, [], 'nothing moved to the other replica')
  const firstTimeout = Math.min(...replies.filter((r) => r.status === 504).map((r) => r.order))
  const lastFast = Math.max(...replies.filter((_, i) => !slow(i)).map((r) => r.order))
  t.ok(lastFast < firstTimeout, 'every request that was not slow itself was answered before the first slow one timed out')
  t.equal(upstreams[0]!.pool.backOffs, 1, 'pipelining to r0 backed off')
})

t.test('through the proxy, no stall rescue: requests behind a slow one are retried on the next replica at its timeout', async (t) => {
  const { good, upstreams } = await stuckBehindSlow(t, 0)
  t.ok(good.seen.some((s) => s.startsWith('GET /r/')), `${good.seen.length} requests stuck behind slow ones were retried on the next replica`)
  t.equal(upstreams[0]!.pool.backOffs, 0)
})

t.test('a real node:http replica answers pipelined requests in order', async (t) => {
  const backend = createHttpServer((req, res) => {
    req.resume()
    res.end(`${req.method} ${req.url}`)
  })
  const backendPort = await listen(t, backend)
  let connections = 0
  backend.on('connection', () => connections++)
  // Load from a pool of its own (sharing the batcher, as an app's pools do), so that this
  // pool's connections are all pipelined ones.
  const batcher = new WriteBatcher()
  const pool = usePool(t, backendPort, 8, { batcher })
  const loadPool = usePool(t, backendPort, undefined, { batcher })
  for (let i = 0; i <= BATCH_ABOVE; i++) loadPool.request({ user: recorder().user, head: get(`/load/${i}`), isHead: false, timeoutMs: 60_000, bodyless: true, pipelinable: true })
  const reqs = Array.from({ length: 64 }, (_, i) => {
    const rec = recorder()
    pool.request({ user: rec.user, head: get(`/n/${i}`), isHead: false, timeoutMs: 5000, bodyless: true, pipelinable: true })
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
