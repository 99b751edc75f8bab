// Client sockets that read into the one shared buffer (src/front/shared-reads.ts): the
// accepted socket reads there, sizes its reads, keeps the server's connection count, and the edge keeps
// copies of what it holds, so bytes another read overwrites never reach a replica.
import t, { type Test } from 'tap'
import { createServer as createNetServer, connect, type AddressInfo, type Socket } from 'node:net'
import { createServer, request, type Server } from 'node:http'
import { createHash, randomBytes } from 'node:crypto'
import { once } from 'node:events'
import { HEAD_READ_BYTES, acceptPaused, isShared, owned, readIntoSharedBuffer, type SharedReader } from '../../src/front/shared-reads.js'
import { HashRing } from '../../src/ring/ring.js'
import { Upstream } from '../../src/upstream/upstream.js'
import { WriteBatcher } from '../../src/upstream/batcher.js'
import { createProxy } from '../../src/front/http.js'
import { FastFront } from '../../src/front/fast.js'
import { proxyOptions } from '../fixtures/proxy.js'
import { listen, waitFor } from '../fixtures/http.js'

t.test('an accepted socket reads into the shared buffer, in head-sized or large reads', async (t) => {
  const server = createNetServer()
  acceptPaused(server)
  const reads: number[] = []
  const received: Buffer[] = []
  let large = false
  let stopped = true
  let socket: Socket | undefined
  const reader: SharedReader = {
    get largeReads() {
      return large
    },
    onRead(view) {
      t.ok(isShared(view), 'a view of the shared buffer')
      reads.push(view.length)
      received.push(owned(view))
      return !stopped
    },
  }
  server.on('connection', (accepted: Socket) => {
    t.ok(readIntoSharedBuffer(accepted, () => reader), 'an accepted TCP socket can read into the shared buffer')
    socket = accepted
    socket.on('error', () => {})
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const client = connect((server.address() as AddressInfo).port, '127.0.0.1')
  t.teardown(() => client.destroy())
  await once(client, 'connect')
  await waitFor('the server has the connection', () => socket !== undefined)
  const count = await new Promise<number>((resolve, reject) => server.getConnections((err, n) => (err ? reject(err) : resolve(n))))
  t.equal(count, 1, 'the server counts the socket')

  // Head reads: never more than HEAD_READ_BYTES at a time.
  const first = randomBytes(3 * HEAD_READ_BYTES)
  stopped = false
  client.write(first)
  await waitFor('the first burst read', () => received.reduce((n, b) => n + b.length, 0) === first.length)
  t.ok(reads.every((n) => n <= HEAD_READ_BYTES), `head reads are at most ${HEAD_READ_BYTES} bytes (${reads.join(', ')})`)

  // Large reads: with bytes waiting in the kernel, one read takes more than a head read.
  stopped = true
  large = true
  reads.length = 0
  const second = randomBytes(6 * HEAD_READ_BYTES)
  client.write(second)
  await waitFor('a read stopped the socket', () => reads.length > 0)
  socket!.pause()
  await new Promise<void>((resolve) => client.write('', () => resolve()))
  stopped = false
  socket!.resume()
  await waitFor('the second burst read', () => received.reduce((n, b) => n + b.length, 0) === first.length + second.length)
  t.ok(Math.max(...reads) > HEAD_READ_BYTES, `a large read took more than ${HEAD_READ_BYTES} bytes (${reads.join(', ')})`)
  t.ok(Buffer.concat(received).equals(Buffer.concat([first, second])), 'every byte arrives, in order')

  client.end()
  const closed = new Promise<void>((resolve) => server.close(() => resolve()))
  socket!.end()
  await closed
  t.pass('the server closes once the socket has')
})

t.test('a socket that is already reading is left as it was, for data events', async (t) => {
  const server = createNetServer() // not accepting paused: Node has started reading
  const got: Buffer[] = []
  let taken: boolean | undefined
  server.on('connection', (accepted: Socket) => {
    taken = readIntoSharedBuffer(accepted, () => undefined)
    accepted.on('data', (chunk: Buffer) => got.push(chunk))
    accepted.on('error', () => {})
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.teardown(() => server.close())
  const client = connect((server.address() as AddressInfo).port, '127.0.0.1')
  t.teardown(() => client.destroy())
  client.write('hello')
  await waitFor('the bytes as a data event', () => Buffer.concat(got).toString() === 'hello')
  t.equal(taken, false, 'not taken over')
  t.notOk(isShared(got[0]!), 'its reads are its own buffers')
})

/** The fast front (or node:http alone, `fast` false) before one replica; its port. */
async function frontBefore(t: Test, replicaPort: number, fast: boolean): Promise<number> {
  const ring = new HashRing<Upstream>({ slots: 64, vnodes: 3, hash: 'default', probe: 'linear' })
  const u = new Upstream({ name: 'a', host: '127.0.0.1', port: replicaPort, id: 'a' }, { batcher: new WriteBatcher() })
  t.teardown(() => u.close())
  ring.add('a', u)
  const options = proxyOptions({ ring, keyOf: () => 1, upstreamTimeoutMs: 30_000, onUpstreamFailure: () => {} })
  const server = createServer(createProxy(options))
  const front = new FastFront(server, { ...options, isAdminPath: () => false, keyHeaders: [], fast })
  t.teardown(() => front.closeAll())
  return listen(t, server)
}

/** Four other clients writing 0xAA bytes to `port` every 2 ms (read into the shared buffer) until the returned stop. */
function noise(t: Test, port: number): () => void {
  const sockets: Socket[] = []
  for (let i = 0; i < 4; i++) {
    const s = connect(port, '127.0.0.1')
    s.on('error', () => {})
    sockets.push(s)
    t.teardown(() => s.destroy())
  }
  const junk = Buffer.alloc(512, 0xaa)
  const timer = setInterval(() => {
    for (const s of sockets) if (s.writable) s.write(junk)
  }, 2)
  t.teardown(() => clearInterval(timer))
  return () => clearInterval(timer)
}

/** A replica that reads each request body slowly (so the balancer holds body bytes), and hashes it. */
async function slowBodyReplica(t: Test): Promise<{ port: number; hashes: string[] }> {
  const hashes: string[] = []
  const server: Server = createServer((req, res) => {
    const hash = createHash('sha256')
    req.pause()
    // Bytes pile up in the balancer's upstream write buffer while the replica waits.
    setTimeout(() => {
      req.on('data', (chunk: Buffer) => {
        hash.update(chunk)
        req.pause()
        setImmediate(() => req.resume())
      })
      req.on('end', () => {
        hashes.push(hash.digest('hex'))
        res.end('ok')
      })
      req.resume()
    }, 200)
  })
  return { port: await listen(t, server), hashes }
}

for (const fast of [true, false]) {
  t.test(`a large body reaches the replica intact while other clients read into the same buffer (fast front ${fast})`, async (t) => {
    const replica = await slowBodyReplica(t)
    const port = await frontBefore(t, replica.port, fast)

    const body = randomBytes(8 * 1024 * 1024)
    const sent = createHash('sha256').update(body).digest('hex')
    const upload = new Promise<number>((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port, method: 'POST', path: '/upload', headers: { 'content-length': body.length } }, (res) => {
        res.resume()
        res.on('end', () => resolve(res.statusCode ?? 0))
      })
      req.on('error', reject)
      // Written in pieces, so the balancer reads it in many reads.
      let at = 0
      const more = (): void => {
        while (at < body.length) {
          const piece = body.subarray(at, at + 64 * 1024)
          at += piece.length
          if (!req.write(piece)) {
            req.once('drain', more)
            return
          }
        }
        req.end()
      }
      more()
    })
    // Meanwhile other clients send bytes of their own, read into the same shared buffer.
    const stopNoise = noise(t, port)
    t.equal(await upload, 200)
    stopNoise()
    t.same(replica.hashes, [sent], 'the replica got exactly the bytes sent')
  })
}

for (const fast of [true, false]) {
  t.test(`pipelined requests read with the end of a body survive other clients' reads (fast front ${fast})`, async (t) => {
    const seen: string[] = []
    const replica = createServer((req, res) => {
      seen.push(req.url ?? '')
      req.resume()
      // The upload's answer takes a while: the requests after it wait in the edge meanwhile.
      req.on('end', () => setTimeout(() => res.end('ok'), req.method === 'POST' ? 150 : 0))
    })
    const port = await frontBefore(t, await listen(t, replica), fast)

    // A head and a body larger than one head read, then 300 pipelined GETs (about 45 KB): the
    // read that ends the body (a large one) brings most of them, more than the edge compacts
    // on its own, so they wait in a copy the edge must have made.
    const pad = 'p'.repeat(120)
    const urls = Array.from({ length: 300 }, (_, i) => `/get/${i}?pad=${pad}`)
    const body = Buffer.alloc(20_000, 0x62)
    const gets = urls.map((url, i) => `GET ${url} HTTP/1.1\r\nHost: t\r\n${i === urls.length - 1 ? 'Connection: close\r\n' : ''}\r\n`).join('')
    const client = connect(port, '127.0.0.1')
    t.teardown(() => client.destroy())
    let answers = 0
    client.on('data', (d: Buffer) => (answers += d.toString('latin1').split('HTTP/1.1 200').length - 1))
    await once(client, 'connect')
    client.write(Buffer.concat([Buffer.from(`POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: ${body.length}\r\n\r\n`), body, Buffer.from(gets, 'latin1')]))
    // Other clients' bytes land in the shared read buffer while the GETs wait.
    const stopNoise = noise(t, port)
    await once(client, 'end')
    stopNoise()
    t.same(seen, ['/upload', ...urls], 'the replica got every request as sent')
    t.equal(answers, 1 + urls.length, 'each answered')
  })
}
