/**
 * HTTP upgrades (WebSocket) through the balancer's HTTP port, end to end over real loopback
 * sockets: the real balancer in front of in-process node:http replicas that speak WebSocket
 * (test/fixtures/socket-replicas.ts), with a small WebSocket client on node:http's 'upgrade'
 * (test/fixtures/websocket.ts). Every test checks that nothing is left open.
 */
import t, { type Test } from 'tap'
import { randomBytes } from 'node:crypto'
import type { App } from '../../src/app.js'
import { requestIdOf } from '../../src/route/keys.js'
import { loadConfig } from '../../src/config.js'
import { startApp } from '../../src/app.js'
import { FixtureProvider, assertSettled, startSocketApp } from '../fixtures/socket-replicas.js'
import { Conn, open, waitFor, within } from '../fixtures/sockets.js'
import { FrameParser, OP, UpgradeRefused, acceptKey, encodeFrame, upgradeRequestText, wsConnect, type WsClient } from '../fixtures/websocket.js'
import { setTimeout as sleep } from 'node:timers/promises'
import { createServer as createNetServer, type AddressInfo, type Socket } from 'node:net'
import type { ReplicaHandle } from '../../src/replicas/provider.js'

const SLOTS = 512

async function wsApp(t: Test, argv: string[] = []): Promise<{ app: App; provider: FixtureProvider }> {
  const provider = new FixtureProvider('http')
  const app = await startSocketApp(t, provider, ['--key', 'header:x-user', ...argv])
  return { app, provider }
}

function pickFor(app: App, user: string): string {
  return app.balancer.ring.pick(requestIdOf(user, SLOTS))!.name
}

async function refusal(promise: Promise<WsClient>): Promise<UpgradeRefused> {
  try {
    const ws = await promise
    ws.socket.destroy()
  } catch (err) {
    if (err instanceof UpgradeRefused) return err
    throw err
  }
  throw new Error('the upgrade was accepted')
}

async function closeWs(ws: WsClient): Promise<void> {
  ws.send(Buffer.from([0x03, 0xe8]), OP.close)
  const reply = await ws.next()
  if (reply?.opcode !== OP.close) throw new Error(`expected a close frame, got ${JSON.stringify(reply)}`)
  await within('the WebSocket to close', 5000, ws.closedPromise)
}

t.test('a WebSocket goes to the replica the ring picks and talks both ways', async (t) => {
  const { app, provider } = await wsApp(t)
  for (const user of ['alice', 'bob', 'carol', 'dave', 'erin']) {
    const ws = await wsConnect(`${app.url}/ws`, { 'x-user': user })
    t.equal(ws.response.statusCode, 101, `${user}: 101 Switching Protocols, with a valid Sec-WebSocket-Accept`)
    t.equal(ws.headers['x-replica'], pickFor(app, user), `${user}: answered by ${pickFor(app, user)}, the ring's pick (the 101's headers are relayed)`)
    t.equal(await ws.echo(`hi from ${user}`), `hi from ${user}`, 'a text frame comes back')
    const big = randomBytes(200_000)
    ws.send(big)
    const frame = await ws.next()
    t.ok(frame?.opcode === OP.binary && frame.payload.equals(big), 'a 200 kB binary frame comes back intact')
    ws.send('are you there', OP.ping)
    t.same((await ws.next())?.opcode, OP.pong, 'ping -> pong')
    await closeWs(ws)
  }
  t.same(Object.values(provider.sessionCounts()).reduce((a, b) => a + b, 0), 5, 'five sessions, no retries')
  await assertSettled(t, app, provider, 'http')
})

t.test('bytes that come with the upgrade request and with the 101 are not lost', async (t) => {
  const { app, provider } = await wsApp(t)
  const key = randomBytes(16).toString('base64')
  const c = await open(Number(new URL(app.url).port))
  // The request and a first frame in one write: the frame arrives as the upgrade's `head`.
  c.write(Buffer.concat([Buffer.from(upgradeRequestText('/ws?greet=1', key)), encodeFrame(OP.text, 'early bird', true)]))
  const text = await c.until('the 101, the greeting and the echo', (s) => s.includes('early bird'))
  const headEnd = text.indexOf('\r\n\r\n')
  t.match(text.slice(0, headEnd), /^HTTP\/1\.1 101 Switching Protocols\r\n/)
  t.ok(text.slice(0, headEnd).includes(`Sec-WebSocket-Accept: ${acceptKey(key)}`), 'the replica handshake is relayed verbatim')
  const frames = new FrameParser().push(c.data.subarray(Buffer.byteLength(text.slice(0, headEnd + 4))))
  const replica = [...provider.replicas.values()].find((r) => r.sessions === 1)!.name
  t.equal(frames.length, 2, 'two frames after the 101')
  t.equal(frames[0]?.payload.toString(), `hello from ${replica}`, 'the greeting the replica sent with its 101 arrives first')
  t.equal(frames[1]?.payload.toString(), 'early bird', 'the frame sent with the request reached the replica and came back')
  c.socket.destroy()
  await assertSettled(t, app, provider, 'http')
})

t.test('closing either end closes the other', async (t) => {
  const { app, provider } = await wsApp(t)

  // The client drops the connection (no close frame): the replica side closes.
  const a = await wsConnect(`${app.url}/ws`, { 'x-user': 'alice' })
  t.equal(await a.echo('one'), 'one')
  const replicaA = provider.get(pickFor(app, 'alice'))
  t.equal(replicaA.live.size, 1)
  a.socket.destroy()
  await waitFor('the replica side to close', () => replicaA.live.size === 0)
  t.pass('client gone -> replica connection closed')

  // The replica closes its connection: the client's closes.
  const b = await wsConnect(`${app.url}/ws`, { 'x-user': 'bob' })
  t.equal(await b.echo('two'), 'two')
  const [replicaSocket] = provider.get(pickFor(app, 'bob')).live
  replicaSocket!.end()
  await within('the client to close', 5000, b.closedPromise)
  t.pass('replica gone -> client connection closed')

  // The replica resets: the client sees its connection break.
  const c = await wsConnect(`${app.url}/ws`, { 'x-user': 'carol' })
  t.equal(await c.echo('three'), 'three')
  const [resetSocket] = provider.get(pickFor(app, 'carol')).live
  resetSocket!.resetAndDestroy()
  await within('the client to close', 5000, c.closedPromise)
  t.pass('replica reset -> client connection closed')
  await assertSettled(t, app, provider, 'http')
})

t.test('a replica dying mid-tunnel: the client is closed, the replica replaced, new upgrades served', async (t) => {
  const { app, provider } = await wsApp(t)
  const ws = await wsConnect(`${app.url}/ws`, { 'x-user': 'alice' })
  t.equal(await ws.echo('before'), 'before')
  const victim = pickFor(app, 'alice')
  await provider.crash(victim)
  await within('the client to close', 5000, ws.closedPromise)
  await waitFor('the replacement', () => app.balancer.membership().N === 3 && !app.balancer.membership().replicas.includes(victim))
  const again = await wsConnect(`${app.url}/ws`, { 'x-user': 'alice' })
  t.equal(await again.echo('after'), 'after', `served again, now by ${String(again.headers['x-replica'])}`)
  await closeWs(again)
  await assertSettled(t, app, provider, 'http')
})

t.test('a non-101 answer is relayed as a normal response', async (t) => {
  const { app, provider } = await wsApp(t)
  const refused = await refusal(wsConnect(`${app.url}/reject`, { 'x-user': 'alice' }))
  t.equal(refused.status, 403, 'the status')
  t.equal(refused.body, 'forbidden here', 'the body')
  t.equal(refused.headers['x-replica'], pickFor(app, 'alice'), 'the headers')

  const missing = await refusal(wsConnect(`${app.url}/nope?x=1`, { 'x-user': 'alice' }))
  t.equal(missing.status, 400, "a replica's 404 becomes the balancer's 400, as for any request")
  t.same(JSON.parse(missing.body), { message: "<Error> '/nope' endpoint does not exist in server replicas", status: 'failure' })
  await assertSettled(t, app, provider, 'http')
})

t.test('a replica that refuses the connection: the upgrade goes to another replica', async (t) => {
  const { app, provider } = await wsApp(t)
  const dead = pickFor(app, 'alice')
  const deadReplica = provider.get(dead)
  void deadReplica.deafen()
  const ws = await wsConnect(`${app.url}/ws`, { 'x-user': 'alice' })
  t.ok(typeof ws.headers['x-replica'] === 'string' && ws.headers['x-replica'] !== dead, `served by ${String(ws.headers['x-replica'])}, not ${dead}`)
  t.equal(deadReplica.sessions, 0, `${dead} got nothing`)
  t.notOk(app.balancer.ring.has(dead), `${dead} is out of the ring (suspect, then replaced by the health checker)`)
  t.equal(await ws.echo('hello'), 'hello')
  await closeWs(ws)
  await assertSettled(t, app, provider, 'http')
})

t.test('errors before any 101: no replicas -> 503, no answer in time -> 504', async (t) => {
  const empty = await wsApp(t, ['--replicas', '0'])
  const none = await refusal(wsConnect(`${empty.app.url}/ws`))
  t.equal(none.status, 503)
  t.same(JSON.parse(none.body), { message: '<Error> No server replicas available', status: 'failure' })
  await assertSettled(t, empty.app, empty.provider, 'http')

  const { app, provider } = await wsApp(t, ['--upstream-timeout', '300'])
  const slow = await refusal(wsConnect(`${app.url}/hang`, { 'x-user': 'alice' }))
  t.equal(slow.status, 504)
  t.match(JSON.parse(slow.body), { message: /did not answer within 300 ms/, status: 'failure' })
  await assertSettled(t, app, provider, 'http')
})

t.test('idle timeout: a silent tunnel is closed, a talking one is not', async (t) => {
  const { app, provider } = await wsApp(t, ['--idle-timeout', '300'])
  const quiet = await wsConnect(`${app.url}/ws`, { 'x-user': 'alice' })
  t.equal(await quiet.echo('then silence'), 'then silence')
  const talker = await wsConnect(`${app.url}/ws`, { 'x-user': 'bob' })
  const started = Date.now()
  for (let i = 0; Date.now() - started < 900; i++) {
    t.equal(await talker.echo(`tick ${i}`), `tick ${i}`)
    await sleep(50)
  }
  t.ok(quiet.closed, 'the silent tunnel was closed')
  t.notOk(talker.closed, 'the one that kept talking for three idle periods is open')
  await within('the talker to be closed once silent', 3000, talker.closedPromise)
  await assertSettled(t, app, provider, 'http')
})

t.test('max connections is shared by TCP connections and tunnels; the extra upgrade gets 503', async (t) => {
  const { app, provider } = await wsApp(t, ['--max-connections', '2'])
  const tcp = await open(app.tcpPort!)
  tcp.write('GET /heartbeat HTTP/1.1\r\nHost: x\r\n\r\n')
  await tcp.until('the heartbeat answer through L4', (s) => s.startsWith('HTTP/1.1 200'))
  const first = await wsConnect(`${app.url}/ws`, { 'x-user': 'alice' })
  const over = await refusal(wsConnect(`${app.url}/ws`, { 'x-user': 'bob' }))
  t.equal(over.status, 503, 'the third connection is refused')
  t.same(JSON.parse(over.body), { message: '<Error> Too many open connections (the limit is 2)', status: 'failure' })
  t.equal(app.tunnels.refused, 1)
  tcp.socket.end()
  await tcp.waitClosed()
  await waitFor('the place to free up', () => app.tunnels.size === 1)
  const second = await wsConnect(`${app.url}/ws`, { 'x-user': 'bob' })
  t.equal(await second.echo('in'), 'in', 'a freed place is reused')
  await closeWs(first)
  await closeWs(second)
  await assertSettled(t, app, provider, 'http')
})

t.test('many concurrent WebSockets', async (t) => {
  const { app, provider } = await wsApp(t)
  const n = 100
  const clients = await within('100 upgrades', 20_000, Promise.all(Array.from({ length: n }, (_, i) => wsConnect(`${app.url}/ws`, { 'x-user': `user-${i}` }))))
  const answers = await within('100 echoes', 20_000, Promise.all(clients.map((ws, i) => ws.echo(`message ${i}`))))
  t.equal(answers.filter((a, i) => a === `message ${i}`).length, n, 'every client got its own message back')
  t.equal(clients.filter((ws, i) => ws.headers['x-replica'] !== pickFor(app, `user-${i}`)).length, 0, "every one on the ring's pick")
  await within('100 closes', 20_000, Promise.all(clients.map(closeWs)))
  await assertSettled(t, app, provider, 'http')
})

t.test('plain requests on the same port are not affected', async (t) => {
  const { app } = await wsApp(t)
  const c = new Conn(Number(new URL(app.url).port))
  c.write('GET /home HTTP/1.1\r\nHost: x\r\nX-User: alice\r\nConnection: close\r\n\r\n')
  await c.waitClosed()
  t.match(c.text, /^HTTP\/1\.1 200 OK/)
  t.ok(c.text.includes(`Hello from Server: ${pickFor(app, 'alice')}`))
  t.equal(app.tunnels.size, 0, 'a plain request is not a tunnel')
})

t.test('real replica processes: WebSocket echo on /ws through the balancer; other upgrades get plain answers', async (t) => {
  const app = await startApp(loadConfig(['--port', '0', '--admin-port', '0', '--host', '127.0.0.1', '--quiet', '--replicas', '2', '--key', 'header:x-user']))
  t.teardown(() => app.close())
  const ws = await wsConnect(`${app.url}/ws`, { 'x-user': 'alice' })
  t.equal(await ws.echo('hello, replica'), 'hello, replica', 'text')
  const big = randomBytes(70_000) // a 64-bit length frame
  ws.send(big)
  t.ok((await ws.next())?.payload.equals(big), 'binary, 70 kB')
  ws.send('x', OP.ping)
  t.equal((await ws.next())?.opcode, OP.pong, 'ping -> pong')
  await closeWs(ws)

  const home = await refusal(wsConnect(`${app.url}/home`, { 'x-user': 'alice' }))
  t.equal(home.status, 200, 'an upgrade request to /home gets the /home answer')
  t.same(JSON.parse(home.body), { message: `Hello from Server: ${pickFor(app, 'alice')}`, status: 'successful' })
  const other = await refusal(wsConnect(`${app.url}/other`, { 'x-user': 'alice' }))
  t.equal(other.status, 400, 'and to an unknown path the usual 400')
  await waitFor('tunnels to close', () => app.tunnels.size === 0 && app.balancer.upstreams().every((u) => u.inflight === 0))
  t.pass('nothing left open')
})

/** One raw replica that records the bytes it receives and answers with the bytes a test gives. */
class RawProvider extends FixtureProvider {
  readonly received: Buffer[] = []
  answer = ''
  private readonly sockets = new Set<Socket>()
  private readonly server = createNetServer((socket) => {
    this.sockets.add(socket)
    socket.once('close', () => this.sockets.delete(socket))
    let head = true
    socket.on('data', (d: Buffer) => {
      this.received.push(d)
      if (head && Buffer.concat(this.received).includes('\r\n\r\n')) {
        head = false
        socket.write(this.answer, 'latin1')
      }
    })
    socket.on('error', () => {})
  })

  override async start(name: string): Promise<ReplicaHandle> {
    if (!this.server.listening) await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve))
    return { name, host: '127.0.0.1', port: (this.server.address() as AddressInfo).port, id: `raw:${name}` }
  }

  override async close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy()
    await new Promise<void>((resolve) => this.server.close(() => resolve()))
  }
}

t.test('on the wire: the bytes the replica receives and the bytes the client gets, 101 and not', async (t) => {
  const provider = new RawProvider('http')
  const app = await startSocketApp(t, provider, ['--replicas', '1', '--health-interval', '60000'])
  const port = Number(new URL(app.url).port)
  const request = `GET /chat?a=1 HTTP/1.1\r\nHost: example.test\r\nUpgrade: websocket\r\nConnection: keep-alive, Upgrade\r\nKeep-Alive: 5\r\nSec-WebSocket-Key: abc\r\nX-Custom:  spaced \r\n\r\n`
  const forwarded = `GET /chat?a=1 HTTP/1.1\r\nHost: example.test\r\nSec-WebSocket-Key: abc\r\nX-Custom: spaced\r\nX-Forwarded-For: 127.0.0.1\r\nX-Forwarded-Proto: http\r\nX-Forwarded-Host: example.test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n`

  provider.answer = 'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: xyz\r\n\r\nEARLY'
  const c = await open(port)
  c.write(request + 'FIRST')
  const got = await c.until('the 101 and the early bytes', (s) => s.endsWith('EARLY'))
  t.equal(got, 'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: xyz\r\n\r\nEARLY', 'the 101 verbatim, then the bytes that came with it')
  await waitFor('the client bytes after the head to reach the replica', () => Buffer.concat(provider.received).toString('latin1').endsWith('FIRST'))
  t.equal(Buffer.concat(provider.received).toString('latin1'), forwarded + 'FIRST', 'hop-by-hop headers dropped, X-Forwarded-* added, the upgrade asked for again')
  c.socket.destroy()

  provider.received.length = 0
  provider.answer = 'HTTP/1.1 403 Forbidden\r\nTransfer-Encoding: chunked\r\nX-A: 1\r\n\r\n3\r\nabc\r\n4\r\ndefg\r\n0\r\n\r\n'
  const d = await open(port)
  d.write(request)
  await d.waitClosed()
  t.equal(d.text, 'HTTP/1.1 403 Forbidden\r\nX-A: 1\r\nConnection: close\r\n\r\nabcdefg', 'a non-101 answer: de-chunked, delimited by the close')
  t.equal(Buffer.concat(provider.received).toString('latin1'), forwarded)
})
