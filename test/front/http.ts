// The HTTP forward path against real upstream servers we control: routing, streaming both
// ways, header rules, the 404/503/502/504 answers, safe failover, client aborts, keep-alive.
// Every case is one contract (frontContract) run against each front: node:http, and the fast
// front (src/front/fast.ts), which takes the plain GET/HEAD requests and hands the rest to node:http.
import t, { type Test } from 'tap'
import { createServer, request, Agent, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import { createHash } from 'node:crypto'
import type { AddressInfo } from 'node:net'
import { once } from 'node:events'
import { HashRing } from '../../src/ring/ring.js'
import { Upstream } from '../../src/upstream/upstream.js'
import { WriteBatcher } from '../../src/upstream/batcher.js'
import { createProxy } from '../../src/front/http.js'
import type { RouteOptions } from '../../src/route/attempt.js'
import { proxyOptions } from '../fixtures/proxy.js'
import { FastFront } from '../../src/front/fast.js'
import { call, listen, waitFor } from '../fixtures/http.js'

type Handler = (req: IncomingMessage, res: ServerResponse) => void

interface Backend {
  name: string
  server: Server
  port: number
  /** Requests seen, in order. */
  seen: IncomingMessage[]
  /** TCP connections accepted. */
  connections: number
}

async function backend(t: Test, name: string, handler?: Handler): Promise<Backend> {
  const b: Backend = { name, server: undefined as unknown as Server, port: 0, seen: [], connections: 0 }
  b.server = createServer((req, res) => {
    b.seen.push(req)
    if (handler) return handler(req, res)
    req.resume()
    res.writeHead(200, { 'content-type': 'text/plain', 'x-backend': name })
    res.end(`hello from ${name}`)
  })
  b.server.on('connection', () => b.connections++)
  b.port = await listen(t, b.server)
  return b
}

/** A port with nothing listening on it (bound once, then closed). */
async function deadPort(): Promise<number> {
  const s = createServer()
  s.listen(0, '127.0.0.1')
  await once(s, 'listening')
  const port = (s.address() as AddressInfo).port
  await new Promise<void>((r) => s.close(() => r()))
  return port
}

interface Front {
  url: string
  ring: HashRing<Upstream>
  failures: string[]
  /** The fast front, when the case runs through it. */
  fast: FastFront | undefined
}

/** The proxy under test in front of `members` (name -> port), keyed by the x-key header. */
async function startFront(viaFast: boolean, t: Test, members: Array<[string, number]>, extra: Partial<RouteOptions> = {}): Promise<Front> {
  const ring = new HashRing<Upstream>({ slots: 512, vnodes: 9, hash: 'default', probe: 'linear' })
  const batcher = new WriteBatcher()
  for (const [name, port] of members) {
    const u = new Upstream({ name, host: '127.0.0.1', port, id: name }, { batcher })
    t.teardown(() => u.close())
    ring.add(name, u)
  }
  const failures: string[] = []
  const options = proxyOptions({
    ring,
    keyOf: (req) => Number(req.headers['x-key'] ?? 0),
    upstreamTimeoutMs: 5000,
    onUpstreamFailure: (u, err) => failures.push(`${u.name}:${err.code}`),
    ...extra,
  })
  const server = createServer(createProxy(options))
  const fast = viaFast ? new FastFront(server, { ...options, isAdminPath: () => false, keyHeaders: ['x-key'] }) : undefined
  if (fast) t.teardown(() => fast.closeAll())
  const port = await listen(t, server)
  return { url: `http://127.0.0.1:${port}`, ring, failures, fast }
}

/** A key whose first choice on the ring is `name`. */
function keyFor(ring: HashRing<Upstream>, name: string): string {
  for (let id = 0; id < 100_000; id++) if (ring.pick(id)?.name === name) return String(id)
  throw new Error(`no key for ${name}`)
}

/** A front under test before `members` (name -> port): node:http alone, or the fast front before it. */
type NewFront = (t: Test, members: Array<[string, number]>, extra?: Partial<RouteOptions>) => Promise<Front>

/**
 * The forward-path contract, run against one front, as hono's runTest({ newRouter }) runs its
 * router cases against every router: each case below must hold for each front.
 */
function frontContract(name: string, front: NewFront): void {
  t.test(name, async (t) => {
    t.test('routes by key to the ring owner and relays status, headers and body', async (t) => {
      const a = await backend(t, 'a', (req, res) => {
        req.resume()
        res.writeHead(201, 'Made It', [['X-Multi', '1'], ['x-multi', '2'], ['Set-Cookie', 'a=1'], ['Set-Cookie', 'b=2'], ['Content-Type', 'text/plain']].flat())
        res.end('created')
      })
      const b = await backend(t, 'b')
      const f = await front(t, [['a', a.port], ['b', b.port]])
      for (const name of ['a', 'b']) {
        const key = keyFor(f.ring, name)
        const reply = await call(`${f.url}/home?x=1`, 'GET', undefined, { 'x-key': key })
        if (name === 'a') {
          t.equal(reply.status, 201)
          t.equal(reply.body, 'created')
          t.same(reply.headers['set-cookie'], ['a=1', 'b=2'], 'repeated headers survive')
          t.equal(reply.headers['x-multi'], '1, 2')
        } else {
          t.equal(reply.status, 200)
          t.equal(reply.body, 'hello from b')
          t.equal(reply.headers['x-backend'], 'b')
        }
      }
      t.equal(a.seen.length, 1)
      t.equal(a.seen[0]!.url, '/home?x=1', 'path and query reach the replica unchanged')
      t.equal(b.seen.length, 1)
    })

    t.test('hop-by-hop headers stay behind and X-Forwarded-* are set', async (t) => {
      const a = await backend(t, 'a', (req, res) => {
        req.resume()
        res.writeHead(200, { connection: 'x-secret', 'x-secret': 'no', 'keep-alive': 'timeout=1', 'x-kept': 'yes' })
        res.end('ok')
      })
      const f = await front(t, [['a', a.port]])
      const reply = await call(`${f.url}/h`, 'GET', undefined, {
        connection: 'keep-alive, x-private',
        'x-private': 'drop me',
        'keep-alive': 'timeout=5',
        te: 'trailers',
        'proxy-authorization': 'Basic eA==',
        'x-end-to-end': 'keep me',
        host: 'example.test:5000',
      })
      t.equal(reply.status, 200)
      const h = a.seen[0]!.headers
      t.equal(h['x-end-to-end'], 'keep me')
      t.equal(h['x-private'], undefined, 'headers named in Connection are dropped')
      t.equal(h['keep-alive'], undefined)
      t.equal(h.te, undefined)
      t.equal(h['proxy-authorization'], undefined)
      t.equal(h.host, 'example.test:5000', 'Host is kept')
      t.equal(h['x-forwarded-for'], '127.0.0.1')
      t.equal(h['x-forwarded-proto'], 'http')
      t.equal(h['x-forwarded-host'], 'example.test:5000')
      t.equal(reply.headers['x-secret'], undefined, 'response headers named in Connection are dropped')
      t.equal(reply.headers['keep-alive'] === 'timeout=1', false)
      t.equal(reply.headers['x-kept'], 'yes')

      await call(`${f.url}/h`, 'GET', undefined, { 'x-forwarded-for': '10.0.0.1', 'x-forwarded-proto': 'https', 'x-forwarded-host': 'outer' })
      const h2 = a.seen[1]!.headers
      t.equal(h2['x-forwarded-for'], '10.0.0.1, 127.0.0.1', 'the client is appended to an existing chain')
      t.equal(h2['x-forwarded-proto'], 'https', 'an earlier proxy keeps its say')
      t.equal(h2['x-forwarded-host'], 'outer')
    })

    t.test('request and response bodies stream through without being buffered whole', async (t) => {
      let firstChunkSeen!: () => void
      const upstreamGotFirst = new Promise<void>((r) => (firstChunkSeen = r))
      let releaseResponse!: () => void
      const responseRelease = new Promise<void>((r) => (releaseResponse = r))
      const a = await backend(t, 'a', (req, res) => {
        const hash = createHash('sha256')
        let bytes = 0
        req.on('data', (c: Buffer) => {
          if (bytes === 0) firstChunkSeen()
          bytes += c.length
          hash.update(c)
        })
        req.on('end', () => {
          res.writeHead(200, { 'content-type': 'text/plain' })
          res.write(`${bytes} ${hash.digest('hex')}\n`)
          // The rest of the response waits until the client has seen this first part.
          void responseRelease.then(() => res.end('done'))
        })
      })
      const f = await front(t, [['a', a.port]])
      const chunk = Buffer.alloc(64 * 1024, 7)
      const expected = createHash('sha256')
      const req = request(`${f.url}/upload`, { method: 'POST', agent: false, headers: { 'transfer-encoding': 'chunked' } })
      req.write(chunk)
      expected.update(chunk)
      // The replica sees the first chunk while the client is still sending: streamed, not buffered.
      await upstreamGotFirst
      for (let i = 0; i < 63; i++) {
        req.write(chunk)
        expected.update(chunk)
      }
      req.end()
      const [res] = (await once(req, 'response')) as [IncomingMessage]
      t.equal(res.statusCode, 200)
      const [first] = (await once(res, 'data')) as [Buffer]
      t.equal(first.toString(), `${64 * 64 * 1024} ${expected.digest('hex')}\n`, 'all 4 MiB arrived intact')
      // The client got the first part of the response before the replica finished it.
      releaseResponse()
      let rest = ''
      for await (const c of res) rest += String(c)
      t.equal(rest, 'done')
    })

    t.test("a replica's 404 becomes the SPEC's 400 with the request's path", async (t) => {
      const a = await backend(t, 'a', (req, res) => {
        req.resume()
        res.writeHead(404, { 'content-type': 'text/html' })
        res.end('<h1>nope</h1>')
      })
      const f = await front(t, [['a', a.port]])
      const reply = await call(`${f.url}/other?q=1`)
      t.equal(reply.status, 400)
      t.equal(reply.headers['content-type'], 'application/json')
      t.same(reply.json, { message: "<Error> '/other' endpoint does not exist in server replicas", status: 'failure' })
    })

    t.test('no replicas: 503 JSON', async (t) => {
      const f = await front(t, [])
      const reply = await call(`${f.url}/home`)
      t.equal(reply.status, 503)
      t.same(reply.json, { message: '<Error> No server replicas available', status: 'failure' })
    })

    t.test('a refused connection goes to the next distinct replica clockwise, any method', async (t) => {
      const good = await backend(t, 'good', (req, res) => {
        let body = ''
        req.setEncoding('utf8').on('data', (c: string) => (body += c))
        req.on('end', () => res.end(`${req.method} ${body}`))
      })
      const dead = await deadPort()
      const f = await front(t, [['dead', dead], ['good', good.port]])
      const key = keyFor(f.ring, 'dead')
      const get = await call(`${f.url}/home`, 'GET', undefined, { 'x-key': key })
      t.equal(get.status, 200)
      t.equal(get.body, 'GET ')
      const post = await call(`${f.url}/submit`, 'POST', 'payload', { 'x-key': key })
      t.equal(post.status, 200)
      t.equal(post.body, 'POST payload', 'the body was never sent to the dead replica, so it is sent once, here')
      t.equal(good.seen.length, 2)
      t.same(f.failures, ['dead:ECONNREFUSED', 'dead:ECONNREFUSED'], 'passive detection hears about it')
      if (f.fast) t.same([f.fast.served, f.fast.handedOff], [1, 1], 'the GET on the fast front, the POST handed to node:http')
    })

    t.test('the only replica unreachable: 502 JSON', async (t) => {
      const f = await front(t, [['dead', await deadPort()]])
      const reply = await call(`${f.url}/home`)
      t.equal(reply.status, 502)
      t.same(reply.json, { message: "<Error> Server replica 'dead' could not be reached (ECONNREFUSED)", status: 'failure' })
    })

    t.test('a replica that drops the connection: idempotent requests retried, a sent body never replayed', async (t) => {
      const dropper = await backend(t, 'dropper', (req) => {
        req.resume()
        req.on('end', () => req.socket.destroy())
      })
      const good = await backend(t, 'good')
      const f = await front(t, [['dropper', dropper.port], ['good', good.port]])
      const key = keyFor(f.ring, 'dropper')
      const get = await call(`${f.url}/home`, 'GET', undefined, { 'x-key': key })
      t.equal(get.status, 200, 'GET retried on the next replica')
      t.equal(get.body, 'hello from good')
      const post = await call(`${f.url}/pay`, 'POST', 'once only', { 'x-key': key })
      t.equal(post.status, 502)
      t.same(post.json, { message: "<Error> Server replica 'dropper' could not be reached (ECONNRESET)", status: 'failure' })
      t.equal(good.seen.length, 1, 'the POST did not reach a second replica')
      t.equal(dropper.seen.length, 2)
    })

    t.test('a slow replica: 504 JSON after the upstream timeout', async (t) => {
      const slow = await backend(t, 'slow', (req) => req.resume())
      const f = await front(t, [['slow', slow.port]], { upstreamTimeoutMs: 200 })
      const reply = await call(`${f.url}/home`)
      t.equal(reply.status, 504)
      t.same(reply.json, { message: "<Error> Server replica 'slow' did not answer within 200 ms", status: 'failure' })
    })

    t.test('a client that goes away aborts its upstream request', async (t) => {
      let upstreamClosed = false
      const a = await backend(t, 'a', (req, res) => {
        req.resume()
        res.writeHead(200)
        res.write('partial')
        res.on('close', () => (upstreamClosed = true))
      })
      const f = await front(t, [['a', a.port]])
      const req = request(`${f.url}/stream`, { agent: false })
      req.end()
      const [res] = (await once(req, 'response')) as [IncomingMessage]
      await once(res, 'data')
      req.destroy()
      await waitFor('the upstream response to close', () => upstreamClosed, 5000)
      t.ok(upstreamClosed)
    })

    t.test('upstream connections are kept alive and reused', async (t) => {
      const a = await backend(t, 'a')
      const f = await front(t, [['a', a.port]])
      const agent = new Agent({ keepAlive: true, maxSockets: 1 })
      t.teardown(() => agent.destroy())
      for (let i = 0; i < 50; i++) {
        const reply = await call(`${f.url}/home`, 'GET', undefined, {}, agent)
        t.equal(reply.status, 200)
      }
      t.equal(a.seen.length, 50)
      t.equal(a.connections, 1, '50 sequential requests over one upstream connection')
      if (f.fast) t.same([f.fast.served, f.fast.handedOff], [50, 0], 'the fast front answered all 50 itself')
      t.equal(f.ring.pick(0)!.inflight, 0, 'nothing left in flight')
    })

    t.test('HEAD and 204/304 answers carry no body and keep the connection usable', async (t) => {
      const a = await backend(t, 'a', (req, res) => {
        req.resume()
        if (req.url === '/204') res.writeHead(204).end()
        else if (req.url === '/304') res.writeHead(304, { etag: '"x"' }).end()
        else res.writeHead(200, { 'content-length': '5' }).end(req.method === 'HEAD' ? undefined : 'hello')
      })
      const f = await front(t, [['a', a.port]])
      const agent = new Agent({ keepAlive: true, maxSockets: 1 })
      t.teardown(() => agent.destroy())
      const head = await call(`${f.url}/x`, 'HEAD', undefined, {}, agent)
      t.equal(head.status, 200)
      t.equal(head.headers['content-length'], '5')
      t.equal(head.body, '')
      t.equal((await call(`${f.url}/204`, 'GET', undefined, {}, agent)).status, 204)
      const nm = await call(`${f.url}/304`, 'GET', undefined, {}, agent)
      t.equal(nm.status, 304)
      t.equal(nm.headers.etag, '"x"')
      const after = await call(`${f.url}/x`, 'GET', undefined, {}, agent)
      t.equal(after.body, 'hello')
    })
  })
}

frontContract('through node:http', (t, members, extra) => startFront(false, t, members, extra))
frontContract('through the fast front', (t, members, extra) => startFront(true, t, members, extra))
