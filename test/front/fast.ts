// The fast front over real sockets: byte-for-byte the answers node:http gives, hand-over of
// everything else with its unread bytes and in order, keep-alive timeout, shutdown and
// back-pressure. (The forward-path contract itself runs through it in test/front/http.ts.)
import t, { type Test } from 'tap'
import { createServer, get, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import { connect, type Socket } from 'node:net'
import { createHash } from 'node:crypto'
import { once } from 'node:events'
import { HashRing } from '../../src/ring/ring.js'
import { Upstream } from '../../src/upstream/upstream.js'
import { proxyOptions } from '../fixtures/proxy.js'
import { createProxy } from '../../src/front/http.js'
import { FastFront } from '../../src/front/fast.js'
import { listen, waitFor } from '../fixtures/http.js'
import { rawReplica } from '../fixtures/raw-replica.js'
import { setTimeout as sleep } from 'node:timers/promises'

type Handler = (req: IncomingMessage, res: ServerResponse) => void

interface Setup {
  port: number
  server: Server
  /** Requests that reached node:http's request handler, as `METHOD url`. */
  nodeSeen: string[]
  fast: FastFront | undefined
}

/**
 * A balancer front over one backend: node:http answers `/admin` itself and proxies the rest;
 * with `fast`, the fast front sits in front of it.
 */
async function setup(t: Test, backendPort: number | undefined, fast: boolean): Promise<Setup> {
  const ring = new HashRing<Upstream>({ slots: 512, vnodes: 9, hash: 'default', probe: 'linear' })
  if (backendPort !== undefined) {
    const u = new Upstream({ name: 'a', host: '127.0.0.1', port: backendPort, id: 'a' })
    t.teardown(() => u.close())
    ring.add('a', u)
  }
  const options = proxyOptions({ ring, keyOf: (req) => Number.parseInt(String(req.headers['x-key'] ?? 0), 10) || 0, upstreamTimeoutMs: 5000 })
  const proxy = createProxy(options)
  const nodeSeen: string[] = []
  const server = createServer((req, res) => {
    nodeSeen.push(`${req.method} ${req.url}`)
    if (req.url === '/admin') res.end('admin')
    else proxy(req, res)
  })
  const front = fast ? new FastFront(server, { ...options, isAdminPath: (p) => p === '/admin', keyHeaders: ['x-key'] }) : undefined
  if (front) t.teardown(() => front.closeAll())
  const port = await listen(t, server)
  return { port, server, nodeSeen, fast: front }
}

async function backend(t: Test, handler: Handler): Promise<number> {
  return listen(t, createServer(handler))
}

/** A raw client connection that collects every byte it receives. */
class Raw {
  readonly socket: Socket
  text = ''
  closed = false

  constructor(t: Test, port: number) {
    this.socket = connect(port, '127.0.0.1')
    this.socket.setEncoding('latin1')
    this.socket.on('data', (d: string) => (this.text += d))
    this.socket.on('error', () => {})
    this.socket.on('close', () => (this.closed = true))
    t.teardown(() => {
      this.socket.destroy()
    })
  }

  send(text: string): void {
    this.socket.write(text, 'latin1')
  }

  /** Wait until `n` complete responses (content-length or chunked framing) have arrived. */
  async responses(n: number): Promise<string[]> {
    let parsed: string[] = []
    await waitFor(`${n} responses`, () => (parsed = splitResponses(this.text)).length >= n, 5000)
    return parsed
  }
}

/** Split raw bytes into complete responses (status line .. end of body), Date values blanked. */
function splitResponses(text: string): string[] {
  const out: string[] = []
  let pos = 0
  while (pos < text.length) {
    const headEnd = text.indexOf('\r\n\r\n', pos)
    if (headEnd === -1) break
    const head = text.slice(pos, headEnd)
    const noBody = /^HTTP\/1\.1 (204|304)/.test(head) || /^x-head: 1$/im.test(head)
    let end: number
    const cl = /^content-length: *(\d+)$/im.exec(head)
    if (noBody) end = headEnd + 4
    else if (cl) end = headEnd + 4 + Number(cl[1])
    else if (/^transfer-encoding: chunked$/im.test(head)) {
      const last = text.indexOf('\r\n0\r\n\r\n', headEnd)
      const empty = text.startsWith('0\r\n\r\n', headEnd + 4)
      if (empty) end = headEnd + 4 + 5
      else if (last === -1) break
      else end = last + 7
    } else end = headEnd + 4
    if (end > text.length) break
    out.push(text.slice(pos, end).replace(/^Date: .*$/gim, 'Date: X'))
    pos = end
  }
  return out
}

const REQ = (path: string, extra = ''): string => `GET ${path} HTTP/1.1\r\nHost: lb.test\r\n${extra}\r\n`

t.test('answers byte for byte as node:http does', async (t) => {
  const port = await backend(t, (req, res) => {
    req.resume()
    switch (req.url?.split('?')[0]) {
      case '/home':
        // X-Head marks the answer to a HEAD request (no body follows) for splitResponses.
        res.writeHead(200, [['Content-Type', 'application/json'], ['Set-Cookie', 'a=1'], ['Set-Cookie', 'b=2'], ...(req.method === 'HEAD' ? [['X-Head', '1']] : [])].flat())
        res.end('{"ok":true}')
        break
      case '/chunked':
        res.writeHead(200, { 'content-type': 'text/plain' })
        res.write('first ')
        setImmediate(() => res.end('second'))
        break
      case '/empty-chunked':
        res.writeHead(200, { 'content-type': 'text/plain' })
        res.end()
        break
      case '/204':
        res.writeHead(204).end()
        break
      case '/304':
        res.writeHead(304, { etag: '"e"' }).end()
        break
      case '/dated':
        res.writeHead(201, 'Made', { date: 'Tue, 01 Jan 2030 00:00:00 GMT', 'content-length': '2' }).end('ok')
        break
      case '/big': {
        const body = Buffer.alloc(100_000, 'x')
        res.writeHead(200, { 'content-length': String(body.length) }).end(body)
        break
      }
      default:
        res.writeHead(404).end('nope')
    }
  })
  const viaNode = await setup(t, port, false)
  const viaFast = await setup(t, port, true)
  const requests = [
    REQ('/home'),
    REQ('/home?q=1').replace('GET', 'HEAD'),
    REQ('/chunked'),
    REQ('/empty-chunked'),
    REQ('/204'),
    REQ('/304'),
    REQ('/dated'),
    REQ('/big'),
    REQ('/missing'),
    REQ('/home', 'Connection: close\r\n'),
  ]
  const answers: string[][] = []
  for (const s of [viaNode, viaFast]) {
    const c = new Raw(t, s.port)
    // One request at a time, so node:http and the fast front see the same conversation.
    for (let i = 0; i < requests.length; i++) {
      c.send(requests[i]!)
      await c.responses(i + 1)
    }
    await waitFor('the connection to close after Connection: close', () => c.closed, 5000)
    answers.push(splitResponses(c.text))
  }
  t.equal(answers[1]!.length, requests.length)
  for (let i = 0; i < requests.length; i++) t.equal(answers[1]![i], answers[0]![i], `same bytes for ${JSON.stringify(requests[i]!.split('\r\n')[0])}`)
  t.same([viaFast.fast!.served, viaFast.fast!.handedOff], [requests.length, 0], 'all answered by the fast front')
  t.equal(viaFast.nodeSeen.length, 0)
})

t.test('forwards the same request bytes as node:http does', async (t) => {
  // What the replica reads, head by head: the fast front forwards plain heads as received.
  const heads: string[] = []
  const replica = await rawReplica(t, (socket, head) => {
    heads.push(head)
    socket.write('HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n', 'latin1')
  })
  const viaNode = await setup(t, replica.port, false)
  const viaFast = await setup(t, replica.port, true)
  const requests = [
    REQ('/plain?q=1'),
    REQ('/autocannon', 'Connection: keep-alive\r\n'),
    `HEAD /mixed HTTP/1.1\r\nconnection: Keep-Alive\r\nHOST: lb.test\r\nKeep-Alive: timeout=5\r\nUser-Agent: curl/8\r\nTE: trailers\r\nAccept: */*\r\n\r\n`,
    ...['X-A:v', 'X-B:   b', 'X-E: e ', 'X-F: f\t', 'X-C:', 'X-D: \r\nx-d: again'].map((line) => REQ('/spaces', `Accept: */*\r\n${line}\r\n`)),
    REQ('/forwarded', 'X-Forwarded-For: 1.1.1.1\r\nx-forwarded-for: 2.2.2.2\r\nX-Forwarded-Proto: https\r\n'),
    REQ('/forwarded-host', 'X-Forwarded-Host: outer\r\n'),
    REQ('/named', 'Connection: keep-alive, X-Trace\r\nX-Trace: 1\r\nX-Kept: 2\r\n'),
    REQ('/close', 'Connection: close\r\n'),
  ]
  const seen: string[][] = []
  for (const s of [viaNode, viaFast]) {
    heads.length = 0
    for (const request of requests) {
      const c = new Raw(t, s.port)
      c.send(request)
      await c.responses(1)
      c.socket.destroy()
    }
    seen.push([...heads])
  }
  t.equal(seen[1]!.length, requests.length)
  for (let i = 0; i < requests.length; i++) t.equal(seen[1]![i], seen[0]![i], `same bytes for ${JSON.stringify(requests[i]!.split('\r\n')[0])}`)
  t.same([viaFast.fast!.served, viaFast.fast!.handedOff], [requests.length, 0], 'all taken by the fast front')
})

t.test('no replicas: the same 503 from both fronts', async (t) => {
  const viaNode = await setup(t, undefined, false)
  const viaFast = await setup(t, undefined, true)
  const got: string[] = []
  for (const s of [viaNode, viaFast]) {
    const c = new Raw(t, s.port)
    c.send(REQ('/home'))
    got.push((await c.responses(1))[0]!)
  }
  t.match(got[1], /^HTTP\/1\.1 503 Service Unavailable\r\n/)
  t.equal(got[1], got[0])
})

t.test('a request the fast front does not take hands the connection over, in order', async (t) => {
  const port = await backend(t, (req, res) => {
    let body = ''
    req.setEncoding('latin1').on('data', (c: string) => (body += c))
    req.on('end', () => res.end(`${req.method} ${req.url} ${body}`))
  })
  const s = await setup(t, port, true)
  const c = new Raw(t, s.port)
  // Pipelined in one write: a plain GET, a POST with a body, then another GET.
  c.send(REQ('/a') + 'POST /b HTTP/1.1\r\nHost: lb.test\r\nContent-Length: 4\r\n\r\nbody' + REQ('/c'))
  const replies = await c.responses(3)
  t.match(replies[0], /\r\n\r\nGET \/a $/)
  t.match(replies[1], /\r\n\r\nPOST \/b body$/)
  t.match(replies[2], /\r\n\r\nGET \/c $/)
  t.same(s.nodeSeen, ['POST /b', 'GET /c'], 'node:http took the POST and the rest of the connection')
  t.same([s.fast!.served, s.fast!.handedOff, s.fast!.size], [1, 1, 1], 'the edge still reads the connection, for node:http')
  // The same connection keeps working under node:http.
  c.send(REQ('/d'))
  t.match((await c.responses(4))[3], /GET \/d $/)
})

t.test('a malformed request gets node:http\'s 400, and node:http\'s limits apply', async (t) => {
  const port = await backend(t, (_req, res) => res.end('never'))
  const s = await setup(t, port, true)
  const bad = new Raw(t, s.port)
  bad.send('GET /x HTTP/1.1\r\nHost: lb.test\r\nNo colon here\r\n\r\n')
  await waitFor('the connection to close', () => bad.closed, 5000)
  t.match(bad.text, /^HTTP\/1\.1 400 Bad Request\r\n/)
  const huge = new Raw(t, s.port)
  huge.send(`GET /x HTTP/1.1\r\nHost: lb.test\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`)
  await waitFor('the connection to close', () => huge.closed, 5000)
  t.match(huge.text, /^HTTP\/1\.1 431 /, 'a head over 16 KiB: node:http answers 431')
  t.same(s.nodeSeen, [], 'neither reached a handler')
  t.equal(s.fast!.served, 0)
})

t.test('a head that arrives in pieces is waited for and answered by the fast front', async (t) => {
  const port = await backend(t, (req, res) => res.end(`got ${req.url}`))
  const s = await setup(t, port, true)
  const c = new Raw(t, s.port)
  c.send('GET /split HTTP/1.1\r\nHo')
  await waitFor('the first piece to be read', () => s.fast!.size === 1, 5000)
  c.send('st: lb.test\r\n\r\n')
  t.match((await c.responses(1))[0], /got \/split$/)
  t.same(s.nodeSeen, [])
  t.same([s.fast!.served, s.fast!.handedOff], [1, 0])
})

t.test('admin paths, upgrades and a repeated key header go to node:http', async (t) => {
  const port = await backend(t, (req, res) => res.end(`key ${req.headers['x-key']}`))
  const s = await setup(t, port, true)
  const upgrades: string[] = []
  s.server.on('upgrade', (req: IncomingMessage, socket: Socket) => {
    upgrades.push(req.url ?? '')
    socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n')
  })
  const admin = new Raw(t, s.port)
  admin.send(REQ('/admin'))
  t.match((await admin.responses(1))[0], /\r\n\r\nadmin$/)
  const twice = new Raw(t, s.port)
  twice.send(REQ('/k', 'X-Key: 1\r\nX-Key: 2\r\n'))
  t.match((await twice.responses(1))[0], /key 1, 2$/, "node:http's joined value decided the key")
  const ws = new Raw(t, s.port)
  ws.send(REQ('/ws', 'Connection: Upgrade\r\nUpgrade: websocket\r\n'))
  await waitFor('the upgrade handler', () => upgrades.length === 1, 5000)
  t.same(upgrades, ['/ws'])
  t.same(s.nodeSeen, ['GET /admin', 'GET /k'])
  t.equal(s.fast!.served, 0)
})

t.test('idle keep-alive connections close after keepAliveTimeout, busy ones do not', async (t) => {
  const port = await backend(t, (req, res) => {
    if (req.url === '/slow') setTimeout(() => res.end('slow done'), 2500)
    else res.end('quick')
  })
  const s = await setup(t, port, true)
  s.server.keepAliveTimeout = 500
  const idle = new Raw(t, s.port)
  idle.send(REQ('/quick'))
  const answer = (await idle.responses(1))[0]!
  t.match(answer, /Keep-Alive: timeout=0\r\n/, "the announced timeout is node:http's, in whole seconds")
  const answeredAt = Date.now()
  const busy = new Raw(t, s.port)
  busy.send(REQ('/slow'))
  await waitFor('the idle connection to close', () => idle.closed, 5000)
  t.ok(Date.now() - answeredAt >= 450, 'not before the timeout')
  t.match((await busy.responses(1))[0], /slow done$/, 'the busy connection got its answer')
  t.equal(busy.closed, false)
})

t.test('shutdown: idle connections close at once, busy ones after an answer saying close', async (t) => {
  let release!: () => void
  const released = new Promise<void>((r) => (release = r))
  const port = await backend(t, (req, res) => {
    if (req.url === '/slow') void released.then(() => res.end('slow done'))
    else res.end('quick')
  })
  const s = await setup(t, port, true)
  const idle = new Raw(t, s.port)
  idle.send(REQ('/quick'))
  await idle.responses(1)
  const busy = new Raw(t, s.port)
  busy.send(REQ('/slow'))
  await waitFor('the slow request to be in flight', () => s.fast!.served === 2, 5000)
  s.fast!.closeIdle()
  await waitFor('the idle connection to close', () => idle.closed, 5000)
  t.equal(busy.closed, false)
  release()
  const last = (await busy.responses(1))[0]!
  t.match(last, /\r\nConnection: close\r\n/)
  t.match(last, /slow done$/)
  await waitFor('the busy connection to close after its answer', () => busy.closed, 5000)
})

t.test('a slow client holds the replica back (back-pressure), and every byte arrives', async (t) => {
  const total = 32 * 1024 * 1024
  let written = 0
  const expected = createHash('sha256')
  const port = await backend(t, (req, res) => {
    req.resume()
    // No content-length: the fast front re-frames the body as chunks.
    res.writeHead(200, { 'content-type': 'application/octet-stream' })
    let i = 0
    const pump = (): void => {
      while (written < total) {
        const chunk = Buffer.alloc(64 * 1024, i++ % 251)
        expected.update(chunk)
        written += chunk.length
        if (!res.write(chunk)) {
          res.once('drain', pump)
          return
        }
      }
      res.end()
    }
    pump()
  })
  const s = await setup(t, port, true)
  const req = get({ host: '127.0.0.1', port: s.port, path: '/stream', agent: false })
  const [res] = (await once(req, 'response')) as [IncomingMessage]
  res.pause()
  // Let buffers fill: the replica must stop well short of the whole body.
  let last = -1
  await waitFor('the replica to stall', async () => {
    const now = written
    const stalled = now === last
    last = now
    await sleep(100)
    return stalled && now > 0
  }, 10_000)
  t.ok(written < total / 2, `the replica stalled after ${written} of ${total} bytes`)
  const got = createHash('sha256')
  let n = 0
  res.on('data', (c: Buffer) => {
    n += c.length
    got.update(c)
  })
  res.resume()
  await once(res, 'end')
  t.equal(n, total)
  t.equal(got.digest('hex'), expected.digest('hex'), 'every byte, in order')
  t.equal(s.fast!.served, 1)
})

t.test('after an answer that said close, nothing more is read or forwarded', async (t) => {
  const seen: string[] = []
  const port = await backend(t, (req, res) => {
    seen.push(req.url ?? '')
    res.end('ok')
  })
  const s = await setup(t, port, true)
  // The second request follows the one that asks to close in the same write; the third comes
  // after the answer, on a connection the client has not closed yet (our side is half-closed).
  const c = connect({ port: s.port, host: '127.0.0.1', allowHalfOpen: true })
  t.teardown(() => c.destroy())
  let text = ''
  let ended = false
  c.setEncoding('latin1').on('data', (d: string) => (text += d))
  c.on('end', () => (ended = true))
  c.write(REQ('/first', 'Connection: close\r\n') + REQ('/second'))
  await waitFor('the answer and our FIN', () => ended && splitResponses(text).length === 1, 5000)
  c.write(REQ('/third'))
  // Give a wrongly forwarded request every chance to reach the replica: a request on a fresh
  // connection goes all the way there and back first.
  const probe = new Raw(t, s.port)
  probe.send(REQ('/probe'))
  await probe.responses(1)
  t.equal(splitResponses(text).length, 1, 'one answer')
  t.same(seen, ['/first', '/probe'], 'no request after it reached a replica')
})
