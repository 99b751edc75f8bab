// The lean upstream client (pool.ts + response-parser.ts) through the real forward path,
// against raw TCP replicas that answer exactly the bytes we choose: chunked and
// close-delimited bodies, heads split across writes, interim answers, slow readers,
// a bounded pool, stale keep-alive sockets and a pool closed under load.
import t, { type Test } from 'tap'
import { createServer as createHttpServer, request, type IncomingMessage, type Server } from 'node:http'
import type { Socket } from 'node:net'
import { once } from 'node:events'
import { createHash } from 'node:crypto'
import { HashRing } from '../../src/ring/ring.js'
import { Upstream } from '../../src/upstream/upstream.js'
import { proxyOptions } from '../fixtures/proxy.js'
import { createProxy } from '../../src/front/http.js'
import { ConnectionPool } from '../../src/upstream/pool.js'
import type { ConnectionUser, UpstreamConnection as Connection } from '../../src/upstream/request.js'
import { BATCH_ABOVE, WriteBatcher } from '../../src/upstream/batcher.js'
import { call, listen, waitFor } from '../fixtures/http.js'
import { rawReplica } from '../fixtures/raw-replica.js'
import { setTimeout as sleep } from 'node:timers/promises'

async function front(t: Test, ports: number[], upstreamTimeoutMs = 5000): Promise<{ url: string; ring: HashRing<Upstream>; upstreams: Upstream[]; failures: string[]; batcher: WriteBatcher }> {
  const ring = new HashRing<Upstream>({ slots: 512, vnodes: 9, hash: 'default', probe: 'linear' })
  // One batcher for all the replicas' pools, as the app shares one.
  const batcher = new WriteBatcher()
  const upstreams = ports.map((port, i) => new Upstream({ name: `r${i}`, host: '127.0.0.1', port, id: `r${i}` }, { batcher }))
  upstreams.forEach((u) => {
    ring.add(u.name, u)
    t.teardown(() => u.close())
  })
  const failures: string[] = []
  const server: Server = createHttpServer(
    createProxy(proxyOptions({ ring, keyOf: (req) => Number(req.headers['x-key'] ?? 0), upstreamTimeoutMs, onUpstreamFailure: (u, err) => failures.push(`${u.name}:${err.code}`) })),
  )
  return { url: `http://127.0.0.1:${await listen(t, server)}`, ring, upstreams, failures, batcher }
}

t.test('a chunked answer is relayed whole and its connection reused', async (t) => {
  const r = await rawReplica(t, (socket) => {
    socket.write('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Type: text/plain\r\n\r\n')
    socket.write('5\r\nhello\r\n')
    setTimeout(() => socket.write('6\r\n world\r\n0\r\n\r\n'), 5)
  })
  const f = await front(t, [r.port])
  for (let i = 0; i < 3; i++) {
    const reply = await call(`${f.url}/c`)
    t.equal(reply.status, 200)
    t.equal(reply.body, 'hello world')
    t.equal(reply.headers['content-type'], 'text/plain')
  }
  t.equal(r.connections(), 1, 'one upstream connection for three requests')
})

t.test('every byte value survives a small body and a large one', async (t) => {
  const small = Buffer.from(Array.from({ length: 256 }, (_, i) => i))
  const large = Buffer.concat(Array.from({ length: 300 }, () => small)) // 76,800 bytes
  const r = await rawReplica(t, (socket, head) => {
    const body = head.startsWith('GET /large') ? large : small
    socket.write(Buffer.concat([Buffer.from(`HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: ${body.length}\r\n\r\n`), body]))
  })
  const f = await front(t, [r.port])
  for (const [path, want] of [['/small', small], ['/large', large]] as const) {
    const req = request(`${f.url}${path}`, { agent: false })
    req.end()
    const [res] = (await once(req, 'response')) as [IncomingMessage]
    const chunks: Buffer[] = []
    for await (const c of res) chunks.push(c as Buffer)
    t.ok(Buffer.concat(chunks).equals(want), `${path}: ${want.length} bytes, unchanged`)
    t.equal(res.headers['content-length'], String(want.length))
  }
})

t.test('under load (more than BATCH_ABOVE in flight) writes are batched per event-loop turn, every answer still right', async (t) => {
  const n = BATCH_ABOVE * 4
  // Every answer waits until all n requests have reached the replica, so all n are in flight
  // at once whatever the machine's speed; the balancer's batching is read at that moment.
  const held: Array<() => void> = []
  let sawBatching = false
  const backend = createHttpServer((req, res) => {
    req.resume()
    req.once('end', () => {
      held.push(() => res.end(`${req.method} ${req.url} ${req.headers['x-n']}`))
      if (held.length < n) return
      sawBatching = f.batcher.batching()
      for (const answer of held.splice(0)) answer()
    })
  })
  const f = await front(t, [await listen(t, backend)])
  const replies = await Promise.all(Array.from({ length: n }, (_, i) => call(`${f.url}/r/${i}`, i % 2 ? 'GET' : 'POST', i % 2 ? undefined : `body ${i}`, { 'x-n': String(i) })))
  t.ok(sawBatching, 'batching was on while the requests were in flight')
  t.equal(f.batcher.batching(), false, 'and off again once they were answered')
  replies.forEach((reply, i) => {
    if (reply.status !== 200 || reply.body !== `${i % 2 ? 'GET' : 'POST'} /r/${i} ${i}`) t.fail(`request ${i}: ${reply.status} ${reply.body}`)
  })
  t.pass(`${n} answers, each to its own request`)
  t.equal(f.upstreams[0]!.inflight, 0)
})

t.test('under load, heads are held to the end of the turn and body bytes written meanwhile follow them intact', async (t) => {
  const backend = createHttpServer((req, res) => {
    if (req.url === '/hold') return // never answered: keeps the pool under load
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => res.end(`${req.url} ${createHash('sha1').update(Buffer.concat(chunks)).digest('hex')}`))
  })
  const pool = new ConnectionPool('127.0.0.1', await listen(t, backend))
  t.teardown(() => pool.close())
  const answers = new Map<string, string>()
  const user = (path: string, body?: Buffer): ConnectionUser => ({
    onStart() {},
    onConnected(conn) {
      if (body === undefined) return
      // In the same turn as the head when the connection was idle (the case under test).
      conn.write(body)
      conn.endRequest()
    },
    onHead() {},
    onData(chunk, last) {
      answers.set(path, (answers.get(path) ?? '') + chunk.toString('latin1'))
      if (last) answers.set(path, `${answers.get(path)}.`)
    },
    onFailure(err) {
      answers.set(path, `failed ${err.code}`)
    },
  })
  const head = (path: string, body?: Buffer): string => `POST ${path} HTTP/1.1\r\nHost: b\r\nContent-Length: ${body?.length ?? 0}\r\n\r\n`
  // Three idle connections, then more than BATCH_ABOVE requests in flight.
  for (let i = 0; i < 3; i++) pool.request({ user: user(`/warm${i}`), head: head(`/warm${i}`), isHead: false, timeoutMs: 5000, bodyless: true, pipelinable: false })
  await waitFor('three idle connections', () => pool.idleCount === 3, 5000)
  for (let i = 0; i <= BATCH_ABOVE; i++) pool.request({ user: user('/hold'), head: head('/hold'), isHead: false, timeoutMs: 60_000, bodyless: true, pipelinable: false })
  t.ok(pool.batcher.batching())
  const small = Buffer.from(Array.from({ length: 256 }, (_, i) => i)) // every byte value, joins the held head
  const large = Buffer.alloc(40_000, 7) // larger than what joins: the head goes out first
  const bodies: Array<[string, Buffer]> = [['/small', small], ['/large', large], ['/empty', Buffer.alloc(0)]]
  for (const [path, body] of bodies) pool.request({ user: user(path, body), head: head(path, body), isHead: false, timeoutMs: 5000, bodyless: false, pipelinable: false })
  await waitFor('three answers', () => bodies.every(([path]) => answers.get(path)?.endsWith('.')), 5000)
  for (const [path, body] of bodies) t.equal(answers.get(path), `${path} ${createHash('sha1').update(body).digest('hex')}.`, `${path}: ${body.length} bytes arrived unchanged`)
})

t.test('a body delimited by the close is relayed, and that connection is not reused', async (t) => {
  const r = await rawReplica(t, (socket) => {
    socket.write('HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil ')
    setTimeout(() => socket.end('the end'), 5)
  })
  const f = await front(t, [r.port])
  t.equal((await call(`${f.url}/a`)).body, 'until the end')
  t.equal((await call(`${f.url}/b`)).body, 'until the end')
  t.equal(r.connections(), 2)
})

t.test('a head split byte by byte and an interim 100 Continue', async (t) => {
  const r = await rawReplica(t, (socket) => {
    const text = 'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 202 Accepted\r\nX-Split: yes\r\nContent-Length: 4\r\n\r\ndone'
    let i = 0
    const tick = (): void => {
      if (i >= text.length) return
      socket.write(text[i++]!)
      setImmediate(tick)
    }
    tick()
  })
  const f = await front(t, [r.port])
  const reply = await call(`${f.url}/split`)
  t.equal(reply.status, 202)
  t.equal(reply.headers['x-split'], 'yes')
  t.equal(reply.body, 'done')
})

t.test('a malformed answer is a 502, not retried, not reported as a connection failure', async (t) => {
  const r = await rawReplica(t, (socket) => socket.write('NONSENSE\r\n\r\n'))
  const f = await front(t, [r.port])
  const reply = await call(`${f.url}/bad`)
  t.equal(reply.status, 502)
  t.match(reply.json, { status: 'failure', message: /could not be reached/ })
  t.same(f.failures, [])
})

t.test('a large answer to a slow client streams with backpressure, intact', async (t) => {
  const size = 32 * 1024 * 1024
  let sent = 0
  const r = await rawReplica(t, (socket) => {
    socket.write(`HTTP/1.1 200 OK\r\nContent-Length: ${size}\r\n\r\n`)
    const piece = Buffer.alloc(64 * 1024, 'x')
    const more = (): void => {
      while (sent < size) {
        sent += piece.length
        if (!socket.write(piece)) return void socket.once('drain', more)
      }
    }
    more()
  })
  const f = await front(t, [r.port])
  const req = request(`${f.url}/big`, { agent: false })
  req.end()
  const [res] = (await once(req, 'response')) as [IncomingMessage]
  res.pause()
  // The client reads nothing for a while: the replica must be held back, not drained into memory.
  await sleep(300)
  t.ok(sent < size / 2, `the replica was held back while the client did not read (${Math.round(sent / 2 ** 20)} of 32 MiB sent)`)
  let got = 0
  for await (const chunk of res) got += (chunk as Buffer).length
  t.equal(got, size, 'all bytes arrived')
})

t.test('Expect: 100-continue passes through', async (t) => {
  const backend = createHttpServer((req, res) => {
    let body = ''
    req.setEncoding('utf8').on('data', (c: string) => (body += c))
    req.on('end', () => res.end(`got ${body}`))
  })
  const f = await front(t, [await listen(t, backend)])
  const req = request(`${f.url}/upload`, { method: 'PUT', agent: false, headers: { expect: '100-continue', 'content-length': '5' } })
  req.on('continue', () => req.end('hello'))
  const [res] = (await once(req, 'response')) as [IncomingMessage]
  let text = ''
  for await (const c of res) text += String(c)
  t.equal(res.statusCode, 200)
  t.equal(text, 'got hello')
})

t.test('a stale keep-alive connection closed by the replica is not used again', async (t) => {
  const r = await rawReplica(t, (socket) => {
    // Answer, then close the connection a moment later, as a replica's idle timeout would.
    socket.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok')
    setTimeout(() => socket.end(), 20)
  })
  const f = await front(t, [r.port])
  t.equal((await call(`${f.url}/1`)).status, 200)
  await waitFor('the idle connection to be dropped', () => f.upstreams[0]!.pool.size === 0, 2000)
  t.equal((await call(`${f.url}/2`)).status, 200)
  t.equal(r.connections(), 2)
  t.same(f.failures, [])
})

t.test('bytes after a complete answer that nobody asked for: that connection is not reused', async (t) => {
  const r = await rawReplica(t, (socket) => {
    socket.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokJUNK')
  })
  const f = await front(t, [r.port])
  for (const path of ['/1', '/2']) {
    const reply = await call(`${f.url}${path}`)
    t.same([reply.status, reply.body], [200, 'ok'])
  }
  t.equal(r.connections(), 2, 'the second request opened a new connection')
})

t.test('the pool is bounded: requests beyond maxSockets wait their turn', async (t) => {
  const held: Socket[] = []
  const r = await rawReplica(t, (socket) => {
    held.push(socket)
  })
  const pool = new ConnectionPool('127.0.0.1', r.port, { maxSockets: 2, maxIdle: 2 })
  t.teardown(() => pool.close())
  const done: string[] = []
  const user = (name: string): ConnectionUser => ({
    onStart: () => {},
    onConnected: () => {},
    onHead: () => {},
    onData: (_chunk: Buffer, last: boolean) => {
      if (last) done.push(name)
    },
    onFailure: (err) => done.push(`${name}:${err.code}`),
  })
  for (const name of ['a', 'b', 'c']) pool.request({ user: user(name), head: 'GET / HTTP/1.1\r\nHost: x\r\n\r\n', isHead: false, timeoutMs: 5000, bodyless: true, pipelinable: false })
  await waitFor('two requests at the replica', () => held.length === 2, 2000)
  t.equal(pool.size, 2, 'never more than maxSockets connections')
  await sleep(50)
  t.equal(held.length, 2, 'the third waits')
  held[0]!.write('HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n')
  await waitFor('the third request on the freed connection', () => held.length === 3, 2000)
  t.equal(held[2], held[0], 'it reused the freed connection')
  held[1]!.write('HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n')
  held[2]!.write('HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n')
  await waitFor('all answered', () => done.length === 3, 2000)
  t.same(done.sort(), ['a', 'b', 'c'])
  t.equal(pool.idleCount, 2)
})

t.test('closing a pool fails requests in flight and waiting, and the proxy retries them elsewhere', async (t) => {
  const slow = await rawReplica(t, () => {}) // never answers
  const good = await rawReplica(t, (socket) => socket.write('HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\ngood'))
  const f = await front(t, [slow.port, good.port])
  const slowUpstream = f.upstreams[0]!
  let key = 0
  while (f.ring.pick(key) !== slowUpstream) key++
  const pending = call(`${f.url}/x`, 'GET', undefined, { 'x-key': String(key) })
  await waitFor('the request to be in flight', () => slowUpstream.inflight === 1, 2000)
  slowUpstream.close()
  const reply = await pending
  t.equal(reply.status, 200, 'an idempotent request in flight went to the next replica')
  t.equal(reply.body, 'good')
  t.equal(slowUpstream.inflight, 0)

  const conns: Array<Connection | undefined> = []
  const failed: string[] = []
  slowUpstream.pool.request({ user: {
      onStart: (c) => conns.push(c),
      onConnected: () => {},
      onHead: () => {},
      onData: () => {},
      onFailure: (err) => failed.push(err.code ?? ''),
    }, head: 'GET / HTTP/1.1\r\nHost: x\r\n\r\n', isHead: false, timeoutMs: 5000, bodyless: true, pipelinable: false })
  await waitFor('a request on a closed pool to fail', () => failed.length === 1, 2000)
  t.same(failed, ['ERR_POOL_CLOSED'], 'a closed pool opens no new connections')
  t.same(conns, [])
})
