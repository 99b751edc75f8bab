/**
 * TCP mode (L4), end to end over real loopback sockets: the real balancer (config, ring,
 * membership, TCP front) in front of in-process echo replicas (test/fixtures/socket-replicas.ts)
 * and, at the end, the real replica processes. Every test checks that nothing is left open.
 */
import t, { type Test } from 'tap'
import { createHash, randomBytes } from 'node:crypto'
import { once } from 'node:events'
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net'
import type { App } from '../../src/app.js'
import { requestIdOf } from '../../src/route/keys.js'
import { ProcessProvider } from '../../src/replicas/process.js'
import { loadConfig } from '../../src/config.js'
import { Tunnels } from '../../src/upstream/tunnel.js'
import { startApp } from '../../src/app.js'
import { FixtureProvider, assertSettled, startSocketApp } from '../fixtures/socket-replicas.js'
import { Conn, open, tcpSocketCount, waitFor, within } from '../fixtures/sockets.js'
import { setTimeout as sleep } from 'node:timers/promises'

const SLOTS = 512

function echoApp(t: Test, argv: string[] = []): Promise<{ app: App; provider: FixtureProvider }> {
  const provider = new FixtureProvider('echo')
  return startSocketApp(t, provider, argv).then((app) => ({ app, provider }))
}

t.test('bytes go to the replica the ring picks for address:port, and come back', async (t) => {
  const { app, provider } = await echoApp(t, ['--tcp-key', 'ip-port'])
  for (let i = 0; i < 6; i++) {
    const c = await open(app.tcpPort!)
    const id = requestIdOf(`127.0.0.1:${c.socket.localPort}`, SLOTS)
    const expected = app.balancer.ring.pick(id)!.name
    await c.echo(`hello ${i} `)
    await c.echo('x'.repeat(100_000))
    t.equal(provider.get(expected).live.size, 1, `connection ${i} is on ${expected}, the ring's pick`)
    t.equal(provider.liveSessions(), 1, 'and on no other replica')
    c.socket.end()
    await c.waitClosed()
    t.ok(c.text.endsWith(`<EOF ${`hello ${i} `.length + 100_000}>`), 'the replica saw every byte and the FIN')
  }
  await assertSettled(t, app, provider, 'tcp')
})

t.test('default key ip: every connection from one address goes to one replica', async (t) => {
  const { app, provider } = await echoApp(t)
  t.equal(app.config.tcpKey, 'ip')
  const expected = app.balancer.ring.pick(requestIdOf('127.0.0.1', SLOTS))!.name
  const conns = await Promise.all(Array.from({ length: 10 }, () => open(app.tcpPort!)))
  await Promise.all(conns.map((c, i) => c.echo(`client ${i}`)))
  t.same(provider.sessionCounts()[expected], 10, `all ten on ${expected}`)
  for (const c of conns) c.socket.end()
  await Promise.all(conns.map((c) => c.waitClosed()))
  await assertSettled(t, app, provider, 'tcp')
})

t.test('half-close: a FIN goes through and the other direction keeps working', async (t) => {
  const { app, provider } = await echoApp(t)

  // The client closes its sending side first; the replica's answer still arrives.
  const a = await open(app.tcpPort!)
  a.write('abc')
  a.socket.end()
  await a.until('the echo and the replica seeing our FIN', (s) => s === 'abc<EOF 3>')
  await a.waitClosed()
  t.ok(a.ended, 'the replica FIN reached the client after its answer')
  t.equal(a.error, undefined, 'no error, an orderly close')

  // The replica closes its sending side first; the client can still send to it.
  const b = await open(app.tcpPort!, { halfOpen: true })
  b.write('HALF\n')
  await waitFor('the replica FIN to reach the client', () => b.ended)
  t.notOk(b.closed, 'the client side stays open after the replica FIN')
  b.write('still ')
  b.write('talking')
  b.socket.end()
  await b.waitClosed()
  await waitFor('the replica to see our FIN', () => [...provider.replicas.values()].some((r) => r.afterOwnFin.length > 0))
  const replica = [...provider.replicas.values()].find((r) => r.afterOwnFin.length > 0)
  t.same(replica?.afterOwnFin, ['still talking'], 'bytes sent after the replica FIN reached it')
  await assertSettled(t, app, provider, 'tcp')
})

t.test('back-pressure: a client that does not read stops a fast sender; nothing piles up in the balancer', async (t) => {
  const { app, provider } = await echoApp(t)
  const c = await open(app.tcpPort!)
  c.socket.pause() // the client reads nothing for now
  const chunk = randomBytes(64 * 1024)
  const total = 1024 // chunks: 64 MB, more than every socket buffer on the way can hold
  const sent = createHash('sha256')
  let written = 0
  let maxBuffered = 0
  const sampler = setInterval(() => (maxBuffered = Math.max(maxBuffered, app.tunnels.buffered())), 5)
  t.teardown(() => clearInterval(sampler))
  const writer = (async () => {
    while (written < total) {
      sent.update(chunk)
      written++
      if (!c.write(chunk)) await new Promise((r) => c.socket.once('drain', r))
    }
  })()
  // With back-pressure the writer stalls: the echo has nowhere to go. Give it time to try.
  const finished = await within('the writer', 3000, writer).then(
    () => true,
    () => false,
  )
  maxBuffered = Math.max(maxBuffered, app.tunnels.buffered())
  t.notOk(finished, `the sender was held back (wrote ${written} of ${total} chunks while nobody read)`)
  t.ok(maxBuffered < 1024 * 1024, `the balancer buffered at most ${maxBuffered} bytes at any time`)

  // Now read: everything comes back, intact and in order.
  const got = createHash('sha256')
  let received = 0
  c.socket.removeAllListeners('data')
  const want = total * chunk.length
  c.socket.on('data', (d: Buffer) => {
    // The replica's `<EOF n>` trailer comes after the echo; only the echo is hashed.
    if (received < want) got.update(d.subarray(0, want - received))
    received += d.length
  })
  c.socket.resume()
  await within('the writer to finish once the client reads', 30_000, writer)
  await waitFor('the whole echo', () => received >= want, 30_000)
  t.equal(received, want, 'every byte came back')
  t.equal(got.digest('hex'), sent.digest('hex'), 'in order, unchanged')
  c.socket.end()
  await c.waitClosed()
  await assertSettled(t, app, provider, 'tcp')
})

t.test('abrupt resets travel as resets, both ways', async (t) => {
  const { app, provider } = await echoApp(t)
  const replica = app.balancer.ring.pick(requestIdOf('127.0.0.1', SLOTS))!.name

  const a = await open(app.tcpPort!)
  await a.echo('before the reset')
  a.socket.resetAndDestroy()
  await waitFor('the replica to see a reset', () => provider.get(replica).resets === 1)
  t.pass('client RST -> replica sees ECONNRESET')

  const b = await open(app.tcpPort!)
  b.write('RST\n')
  await b.waitClosed()
  t.equal(b.error, 'ECONNRESET', 'replica RST -> client sees ECONNRESET')
  await assertSettled(t, app, provider, 'tcp')
})

t.test('a replica dying mid-connection: the client is closed, the replica replaced, new connections served', async (t) => {
  const { app, provider } = await echoApp(t)
  const c = await open(app.tcpPort!)
  await c.echo('alive')
  const victim = [...provider.replicas.values()].find((r) => r.live.size === 1)!.name
  await provider.crash(victim)
  await c.waitClosed()
  t.equal(c.error, 'ECONNRESET', 'the client learns the connection broke')
  await waitFor('the replacement', () => app.balancer.membership().N === 3 && !app.balancer.membership().replicas.includes(victim))
  const d = await open(app.tcpPort!)
  await d.echo('after the replacement')
  d.socket.end()
  await d.waitClosed()
  await assertSettled(t, app, provider, 'tcp')
})

t.test('a replica that refuses connections: another replica gets the connection, no byte lost', async (t) => {
  const { app, provider } = await echoApp(t)
  const dead = app.balancer.ring.pick(requestIdOf('127.0.0.1', SLOTS))!.name
  const deadReplica = provider.get(dead)
  void deadReplica.deafen()

  // Bytes written before the balancer has a replica connection must not be lost.
  const c = new Conn(app.tcpPort!)
  c.write('first bytes, sent at once')
  await c.until('the echo', (s) => s === 'first bytes, sent at once')
  const serving = [...provider.replicas.values()].filter((r) => r.live.size > 0).map((r) => r.name)
  t.equal(serving.length, 1, `served by one replica (${serving.join(', ')})`)
  t.not(serving[0], dead, 'not the one that refused')
  t.equal(deadReplica.sessions, 0, `${dead} got nothing`)
  t.notOk(app.balancer.ring.has(dead), `${dead} is out of the ring (suspect, then replaced by the health checker)`)
  c.socket.end()
  await c.waitClosed()
  await assertSettled(t, app, provider, 'tcp')
})

t.test('no replica accepts: the client is closed without a byte', async (t) => {
  const { app, provider } = await echoApp(t)
  provider.refuseNew = true // replacements refuse too
  for (const r of provider.replicas.values()) void r.deafen()
  const d = new Conn(app.tcpPort!)
  d.write('anyone?')
  await d.waitClosed()
  t.equal(d.received, 0, 'closed without an answer')
  await assertSettled(t, app, provider, 'tcp')
})

t.test('no replicas: connections are closed at once', async (t) => {
  const { app, provider } = await echoApp(t, ['--replicas', '0'])
  const c = new Conn(app.tcpPort!)
  await c.waitClosed()
  t.equal(c.received, 0)
  await assertSettled(t, app, provider, 'tcp')
})

t.test('many concurrent connections spread over the replicas and all close cleanly', async (t) => {
  const { app, provider } = await echoApp(t, ['--tcp-key', 'ip-port'])
  const n = 200
  const payloads = Array.from({ length: n }, (_, i) => `${i}:`.padEnd(4096, String.fromCharCode(97 + (i % 26))))
  const conns = payloads.map(() => new Conn(app.tcpPort!))
  await within('200 echo sessions', 20_000,
    Promise.all(
      conns.map(async (c, i) => {
        await c.connected
        c.write(payloads[i]!.slice(0, 1000))
        c.write(payloads[i]!.slice(1000))
        c.socket.end()
        await c.closedPromise
      }),
    ),
  )
  const wrong = conns.filter((c, i) => c.text !== `${payloads[i]}<EOF 4096>`).length
  t.equal(wrong, 0, 'every connection got exactly its own bytes back, then the FIN')
  const counts = provider.sessionCounts()
  t.equal(Object.values(counts).reduce((a, b) => a + b, 0), n, `all ${n} reached a replica`)
  t.ok(Object.values(counts).every((k) => k > 0), `spread over every replica: ${JSON.stringify(counts)}`)
  await assertSettled(t, app, provider, 'tcp')
})

t.test('idle timeout: a silent connection is closed, a talking one is not', async (t) => {
  const { app, provider } = await echoApp(t, ['--idle-timeout', '300'])
  const quiet = await open(app.tcpPort!)
  await quiet.echo('one message, then silence')
  const talker = await open(app.tcpPort!)
  const started = Date.now()
  for (let i = 0; Date.now() - started < 900; i++) {
    await talker.echo(`tick ${i} `)
    await sleep(50)
  }
  t.ok(quiet.closed, 'the silent connection was closed')
  t.notOk(talker.closed, 'the one that kept talking for three idle periods is open')
  await talker.echo('still here')
  await talker.waitClosed(3000)
  t.ok(Date.now() - started >= 900 + 250, 'and it closes once it goes quiet')
  await assertSettled(t, app, provider, 'tcp')
})

t.test('max connections: one more is refused, and a freed place is reused', async (t) => {
  const { app, provider } = await echoApp(t, ['--max-connections', '3'])
  const conns = await Promise.all([1, 2, 3].map(() => open(app.tcpPort!)))
  for (const c of conns) await c.echo('in')
  const extra = new Conn(app.tcpPort!)
  extra.write('let me in')
  await extra.waitClosed()
  t.equal(extra.received, 0, 'the fourth connection is closed without service')
  t.equal(app.tunnels.refused, 1, 'and counted as refused')
  conns[0]!.socket.end()
  await conns[0]!.waitClosed()
  await waitFor('the place to free up', () => app.tunnels.size === 2)
  const again = await open(app.tcpPort!)
  await again.echo('my turn')
  for (const c of [again, conns[1]!, conns[2]!]) c.socket.end()
  await Promise.all([again, conns[1]!, conns[2]!].map((c) => c.waitClosed()))
  await assertSettled(t, app, provider, 'tcp')
})

t.test('shutdown closes open connections after the drain timeout', async (t) => {
  const provider = new FixtureProvider('echo')
  const app = await startApp(loadConfig(['--port', '0', '--admin-port', '0', '--host', '127.0.0.1', '--quiet', '--tcp-port', '0', '--drain-timeout', '200']), { provider })
  const c = await open(app.tcpPort!)
  await c.echo('open at shutdown')
  await within('app.close()', 5000, app.close())
  await c.waitClosed()
  await waitFor('the balancer side to close', () => app.tunnels.size === 0)
  t.equal(app.tcp!.listening, false, 'the TCP listener is closed')
})

t.test('real replica processes: HTTP over TCP mode, and a replica killed mid-connection', async (t) => {
  const app = await startApp(loadConfig(['--port', '0', '--admin-port', '0', '--host', '127.0.0.1', '--quiet', '--tcp-port', '0', '--replicas', '2']))
  t.teardown(() => app.close())
  const expected = app.balancer.ring.pick(requestIdOf('127.0.0.1', SLOTS))!.name
  const c = await open(app.tcpPort!)
  c.write('GET /home HTTP/1.1\r\nHost: x\r\n\r\n')
  await c.until('the replica answer', (s) => s.includes('"status":"successful"}'))
  t.match(c.text, /^HTTP\/1\.1 200 OK\r\n/, 'the replica answered through L4')
  t.ok(c.text.includes(`Hello from Server: ${expected}`), `from ${expected}, the ring's pick for 127.0.0.1`)

  // The connection is kept alive; kill the replica process under it.
  const provider = app.balancer.provider as ProcessProvider
  process.kill(provider.pidOf(expected)!, 'SIGKILL')
  await c.waitClosed()
  t.pass('the client connection closed when its replica died')
  await waitFor('the replacement', () => app.balancer.membership().N === 2 && !app.balancer.membership().replicas.includes(expected), 15_000)
  const d = await open(app.tcpPort!)
  d.write('GET /home HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')
  await d.waitClosed()
  t.match(d.text, /Hello from Server: /, 'new connections are served')
  await waitFor('tunnels to close', () => app.tunnels.size === 0 && app.balancer.upstreams().every((u) => u.inflight === 0))
  t.pass('nothing left open')
})

t.test('a TCP port in use: the start fails with the reason and leaves nothing running', async (t) => {
  const blocker = createServer()
  await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => blocker.close(() => resolve())))
  const port = (blocker.address() as AddressInfo).port
  const provider = new FixtureProvider('echo')
  await t.rejects(startApp(loadConfig(['--port', '0', '--admin-port', '0', '--host', '127.0.0.1', '--quiet', '--tcp-port', String(port)]), { provider }), { code: 'EADDRINUSE' })
  t.equal(provider.replicas.size, 0, 'the replicas it started are stopped')
  t.equal(tcpSocketCount(), 0, 'no socket left open')
})

// ---------------------------------------------------------------------------------------
// Tunnels on their own: a bare front (no ring, no balancer) that admits each client and
// splices it to one connection to a test replica, so a test can see both proxy-side sockets.

interface Front {
  port: number
  /** Proxy-side sockets of each connection, in arrival order: [client, upstream]. */
  pairs: Array<[Socket, Socket]>
}

/**
 * Listen on port 0 and tunnel every connection to `replicaPort`. The replica connection is
 * opened by `tunnels.connect` (TCP mode: the replica is read into a reused buffer), or with
 * `plain` by net.connect (as for upgrades: the 'data' relay both ways).
 */
async function tunnelFront(t: Test, tunnels: Tunnels, replicaPort: number, plain: boolean): Promise<Front> {
  const pairs: Front['pairs'] = []
  const front = createServer({ allowHalfOpen: true, pauseOnConnect: true }, (client) => {
    client.on('error', () => {})
    if (!tunnels.admit(client)) {
      client.destroy()
      return
    }
    const upstream = plain ? connect({ host: '127.0.0.1', port: replicaPort, allowHalfOpen: true }) : tunnels.connect(client, '127.0.0.1', replicaPort)
    upstream.on('error', () => {})
    pairs.push([client, upstream])
    upstream.once('connect', () => tunnels.splice(client, upstream))
  })
  await listenLocal(t, front)
  t.teardown(() => tunnels.closeAll())
  return { port: (front.address() as AddressInfo).port, pairs }
}

/** A server on 127.0.0.1 port 0, closed (its sockets destroyed) in teardown. */
async function listenLocal(t: Test, server: Server): Promise<number> {
  const sockets = new Set<Socket>()
  server.on('connection', (s: Socket) => {
    sockets.add(s)
    s.once('close', () => sockets.delete(s))
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => {
    for (const s of sockets) s.destroy()
    return new Promise<void>((resolve) => server.close(() => resolve()))
  })
  return (server.address() as AddressInfo).port
}

/**
 * Write `data` in chunks of random sizes up to `maxChunk`, one per event-loop turn (so small
 * chunks arrive, and are read, one by one), waiting whenever `socket` is full; then FIN.
 */
async function writeAll(socket: Socket, data: Buffer, maxChunk: number): Promise<void> {
  for (let off = 0; off < data.length; ) {
    const n = Math.min(data.length - off, 1 + Math.floor(Math.random() * maxChunk))
    const ok = socket.write(data.subarray(off, off + n))
    off += n
    if (!ok) await once(socket, 'drain')
    else await new Promise((r) => setImmediate(r))
  }
  socket.end()
}

/** Hash what arrives, reading slowly (a pause after every chunk); resolves at the FIN. */
function slowRead(socket: Socket): Promise<{ bytes: number; sha256: string }> {
  const hash = createHash('sha256')
  let bytes = 0
  socket.on('data', (chunk: Buffer) => {
    hash.update(chunk)
    bytes += chunk.length
    socket.pause()
    setTimeout(() => socket.resume(), 1)
  })
  socket.resume()
  return new Promise((resolve, reject) => {
    socket.once('end', () => resolve({ bytes, sha256: hash.digest('hex') }))
    socket.once('error', reject)
  })
}

const sha256 = (data: Buffer): string => createHash('sha256').update(data).digest('hex')

for (const plain of [false, true]) {
  const reader = plain ? "the 'data' relay (as for upgrades)" : 'the TCP-mode reader (onread)'
  t.test(`${reader}: 16 MB each way to slow readers, behind full sockets, arrive intact`, async (t) => {
    const tunnels = new Tunnels({ maxConnections: 10, idleTimeoutMs: 60_000 })
    const down = randomBytes(16 * 1024 * 1024)
    const up = randomBytes(16 * 1024 * 1024)
    let replicaSide: Socket | undefined
    const replica = createServer({ allowHalfOpen: true }, (s) => {
      s.on('error', () => {})
      s.pause() // reads nothing until the balancer has had to queue bytes for it
      replicaSide = s
      void writeAll(s, down, 3000).catch(() => {})
    })
    const replicaPort = await listenLocal(t, replica)
    const front = await tunnelFront(t, tunnels, replicaPort, plain)

    const client = connect({ host: '127.0.0.1', port: front.port, allowHalfOpen: true })
    client.on('error', () => {})
    client.pause()
    await within('connect', 5000, once(client, 'connect'))
    const sending = writeAll(client, up, 200_000).catch(() => {})
    // Neither end reads yet: both directions back up into the balancer's sockets, which
    // must stop reading; then both ends read slowly, so the balancer keeps pausing and
    // resuming both ways until the FINs.
    await waitFor('bytes queued in the balancer both ways', () => {
      const pair = front.pairs[0]
      return pair !== undefined && pair[0].writableLength > 0 && pair[1].writableLength > 0
    })
    t.ok(tunnels.buffered() > 0, `the balancer queued ${tunnels.buffered()} bytes`)
    const clientGot = slowRead(client)
    const replicaGot = slowRead(replicaSide!)
    const [atClient, atReplica] = await within('both transfers', 60_000, Promise.all([clientGot, replicaGot, sending]))
    t.same(atClient, { bytes: down.length, sha256: sha256(down) }, 'replica -> client: every byte, in order, unchanged')
    t.same(atReplica, { bytes: up.length, sha256: sha256(up) }, 'client -> replica: every byte, in order, unchanged')
    if (!client.closed) await within('the client connection to close', 5000, once(client, 'close'))
    await waitFor('the tunnel to close', () => tunnels.size === 0)
    await waitFor('no socket left open', () => tcpSocketCount() === 0)
    t.pass('both FINs went through and everything closed')
  })
}

t.test('the reused read buffer: bytes still queued for a full client are not overwritten by later reads', async (t) => {
  const tunnels = new Tunnels({ maxConnections: 10, idleTimeoutMs: 60_000 })
  const sent = createHash('sha256')
  let sentBytes = 0
  let front: Front | undefined
  // The replica sends small chunks, one per ms, so that the balancer reads each one on its
  // own, into the same buffer. The client reads nothing: once the kernel's buffers towards
  // it are full, a chunk is only partly taken by the kernel and its rest stays queued,
  // pointing into that buffer, while the next chunks are read. The replica stops once the
  // queue is over a socket high-water mark (the balancer has stopped reading).
  const replica = createServer({ allowHalfOpen: true }, (s) => {
    s.on('error', () => {})
    s.resume()
    const ticker = setInterval(() => {
      const queued = front?.pairs[0]?.[0].writableLength ?? 0
      if (queued >= 16 * 1024) {
        clearInterval(ticker)
        s.end()
        return
      }
      const chunk = randomBytes(1 + Math.floor(Math.random() * 8192))
      sent.update(chunk)
      sentBytes += chunk.length
      s.write(chunk)
    }, 1)
    s.once('close', () => clearInterval(ticker))
  })
  front = await tunnelFront(t, tunnels, await listenLocal(t, replica), false)
  const client = connect({ host: '127.0.0.1', port: front.port, allowHalfOpen: true })
  client.on('error', () => {})
  client.pause()
  await within('connect', 5000, once(client, 'connect'))
  client.end()
  await waitFor('every buffer up to the client to fill', () => (front?.pairs[0]?.[0].writableLength ?? 0) >= 16 * 1024, 30_000)
  t.pass(`the client's kernel buffers filled after ${sentBytes} bytes`)
  const got = await within('the whole transfer', 30_000, slowRead(client))
  t.same(got, { bytes: sentBytes, sha256: sent.digest('hex') }, 'every byte, in order, unchanged')
  await waitFor('the tunnel to close', () => tunnels.size === 0)
  await waitFor('no socket left open', () => tcpSocketCount() === 0)
  t.pass('nothing left open')
})

t.test('idle sweep: traffic one way only keeps a tunnel open; silence closes it, never early', async (t) => {
  const idle = 300
  const tunnels = new Tunnels({ maxConnections: 10, idleTimeoutMs: idle })
  t.ok(tunnels.sweepMs > 0 && tunnels.sweepMs <= idle / 4, `sweeps every ${tunnels.sweepMs} ms`)
  const TALK_MS = 1000 // more than three idle periods
  // The replica talks without listening to a client that says `TALK`, and only listens
  // otherwise.
  const replica = createServer({ allowHalfOpen: true }, (s) => {
    s.on('error', () => {})
    s.once('end', () => s.end())
    s.once('data', (first: Buffer) => {
      s.resume()
      if (!first.toString().startsWith('TALK')) return
      const started = Date.now()
      const ticker = setInterval(() => {
        if (Date.now() - started >= TALK_MS || s.destroyed) clearInterval(ticker)
        else s.write('tick')
      }, 50)
      s.once('close', () => clearInterval(ticker))
    })
  })
  const front = await tunnelFront(t, tunnels, await listenLocal(t, replica), false)

  /** A client that records when it last received a byte and when it was closed. */
  const client = async (): Promise<{ socket: Socket; lastByte: () => number; closedAt: Promise<number> }> => {
    const socket = connect({ host: '127.0.0.1', port: front.port })
    socket.on('error', () => {})
    let last = Date.now()
    socket.on('data', () => (last = Date.now()))
    const closedAt = new Promise<number>((resolve) => socket.once('close', () => resolve(Date.now())))
    await within('connect', 5000, once(socket, 'connect'))
    return { socket, lastByte: () => last, closedAt }
  }

  const listener = await client() // hears ticks, says nothing after its first message
  listener.socket.write('TALK')
  const talker = await client() // talks, hears nothing
  talker.socket.write('hello')
  let lastSent = Date.now()
  const started = Date.now()
  while (Date.now() - started < TALK_MS) {
    await sleep(50)
    talker.socket.write('tick')
    lastSent = Date.now()
  }
  t.notOk(listener.socket.closed, 'replica -> client traffic alone kept a tunnel open for three idle periods')
  t.notOk(talker.socket.closed, 'client -> replica traffic alone kept a tunnel open for three idle periods')

  const latest = idle + 2 * tunnels.sweepMs + 300 // the sweep's own lateness, plus slack for a busy machine
  const [listenerClosed, talkerClosed] = await within('both to be closed once silent', 5000, Promise.all([listener.closedAt, talker.closedAt]))
  const listenerIdle = listenerClosed - listener.lastByte()
  const talkerIdle = talkerClosed - lastSent
  // A few ms of slack below: the timestamps are taken by the test's callbacks, not by the sweep.
  t.ok(listenerIdle >= idle - 20 && listenerIdle <= latest, `closed ${listenerIdle} ms after the replica's last byte (idle timeout ${idle} ms)`)
  t.ok(talkerIdle >= idle - 20 && talkerIdle <= latest, `closed ${talkerIdle} ms after the client's last byte (idle timeout ${idle} ms)`)
  await waitFor('the tunnels to be gone', () => tunnels.size === 0)
  await waitFor('no socket left open', () => tcpSocketCount() === 0)
  t.pass('nothing left open')
})
