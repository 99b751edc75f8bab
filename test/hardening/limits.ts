// The edge's timeouts and limits, through both fronts: slowloris and silent bodies get 408 within
// about a second of the timeout (the sweep runs once a second), idle keep-alive connections close,
// bodies over --max-request-body get 413 before anything is forwarded (or are cut off when chunked),
// at most --max-pipelined requests are read ahead, a client that does not read its answers is not
// read either (at most one read held), and --max-connections counts HTTP connections.
import t from 'tap'
import { Client, FRONTS, rig } from './fixtures/harness.js'
import { waitFor } from '../fixtures/sockets.js'
import type { Socket } from 'node:net'

const H = 'Host: t\r\n'

for (const kind of FRONTS) {
  t.test(`through the ${kind} front`, async (t) => {
    await t.test('slowloris: a head still incomplete at --header-timeout gets 408 and a close', async (t) => {
      const r = await rig(t, kind, { headerTimeoutMs: 1000 })
      const c = new Client(t, r.port)
      const started = Date.now()
      c.send(`GET /slow HTTP/1.1\r\n${H}`)
      // One header line every 300 ms: never idle long, but the head never completes.
      const drip = setInterval(() => c.send('X-A: b\r\n'), 300)
      t.teardown(() => clearInterval(drip))
      const [answer] = await c.waitAnswers(1, 5000)
      const took = Date.now() - started
      clearInterval(drip)
      t.equal(answer?.status, 408)
      t.ok(took >= 1000 && took < 2600, `answered after ${took} ms (timeout 1000 ms, sweep 1 s)`)
      await c.waitEnd()
      t.same(r.seen, [], 'nothing reached the replica')
    })

    await t.test('a body that goes silent gets 408 at --client-timeout; the replica never gets a whole request', async (t) => {
      const r = await rig(t, kind, { clientTimeoutMs: 1000 })
      const c = new Client(t, r.port)
      const started = Date.now()
      c.send(`POST /upload HTTP/1.1\r\n${H}Content-Length: 10\r\n\r\nabc`)
      const [answer] = await c.waitAnswers(1, 5000)
      const took = Date.now() - started
      t.equal(answer?.status, 408)
      t.ok(took >= 1000 && took < 2600, `answered after ${took} ms`)
      await c.waitEnd()
      t.same(r.seen, [])
    })

    await t.test('an idle keep-alive connection is closed at --keep-alive-timeout', async (t) => {
      const r = await rig(t, kind, { keepAliveTimeoutMs: 1000 })
      // The rig's node:http server announces and enforces its own keepAliveTimeout (edge-server.ts).
      const c = new Client(t, r.port)
      c.send(`GET /ka HTTP/1.1\r\n${H}\r\n`)
      await c.waitAnswers(1)
      const answeredAt = Date.now()
      await c.waitEnd(4000)
      const took = Date.now() - answeredAt
      t.ok(took >= 900 && took < 2600, `closed ${took} ms after the answer`)
    })

    await t.test('--max-request-body: 413 before forwarding by Content-Length; a chunked body over it is cut off', async (t) => {
      const r = await rig(t, kind, { maxRequestBody: 10 })
      const small = new Client(t, r.port)
      small.send(`POST /ok HTTP/1.1\r\n${H}Content-Length: 10\r\n\r\n0123456789`)
      t.equal((await small.waitAnswers(1))[0]?.status, 200, 'at the limit: forwarded')
      const big = new Client(t, r.port)
      big.send(`POST /big HTTP/1.1\r\n${H}Content-Length: 11\r\n\r\n`)
      t.equal((await big.waitAnswers(1))[0]?.status, 413, 'the head alone is enough for a 413')
      await big.waitEnd()
      const chunked = new Client(t, r.port)
      chunked.send(`POST /chunked HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n8\r\n01234567\r\n`)
      chunked.send('8\r\n89abcdef\r\n0\r\n\r\n')
      t.equal((await chunked.waitAnswers(1))[0]?.status, 413)
      await chunked.waitEnd()
      t.same(r.seen.map((s) => s.url), ['/ok'], 'only the body within the limit reached the replica whole')
    })

    await t.test('--max-pipelined: requests beyond it are not read until answers drain', async (t) => {
      const r = await rig(t, kind, { maxPipelined: 4 })
      const c = new Client(t, r.port)
      let burst = ''
      for (let i = 0; i < 12; i++) burst += `GET /p${i}?wait=300 HTTP/1.1\r\n${H}\r\n`
      c.send(burst)
      // While the first answers are pending, the replica has seen at most the allowed number ahead.
      await waitFor('the first request at the replica', () => r.seen.length >= 1, 3000, 5)
      const ahead = r.seen.length
      t.ok(ahead <= (kind === 'fast' ? 1 : 4), `${ahead} requests reached the replica before any answer`)
      const answers = await c.waitAnswers(12, 15_000)
      t.same(answers.map((a) => a.body), Array.from({ length: 12 }, (_, i) => `GET /p${i}?wait=300`), 'all answered, in order')
    })

    await t.test('a client that pipelines and never reads: at most one read (64 KiB) is taken from it while a request is in flight', async (t) => {
      const r = await rig(t, kind)
      const accepted: Socket[] = []
      r.front.server.on('connection', (s: Socket) => accepted.push(s))
      const c = new Client(t, r.port)
      // 1 MiB of pipelined GETs; the first answer takes 1.5 s, the client reads nothing.
      c.send(`GET /first?wait=1500 HTTP/1.1\r\n${H}\r\n` + `GET /next HTTP/1.1\r\n${H}\r\n`.repeat(30_000))
      await waitFor('the first request at the replica', () => r.seen.length >= 1, 3000, 5)
      // Long enough for reads the edge did not ask for (a paused stream reads ahead on the next tick).
      await new Promise((resolve) => setTimeout(resolve, 300))
      const server = accepted[0]!
      t.equal(r.seen.length, 1, 'one request at the replica at a time')
      t.ok(server.bytesRead <= 64 * 1024, `${server.bytesRead} bytes read from the client (the rest waits in the kernel)`)
      t.equal(server.readableLength, 0, "nothing waits in the socket stream's own buffer")
    })

    await t.test('--max-connections counts HTTP connections: the one over it gets 503, the others are unaffected', async (t) => {
      const r = await rig(t, kind, {}, undefined, 2)
      const a = new Client(t, r.port)
      a.send(`GET /a HTTP/1.1\r\n${H}\r\n`)
      await a.waitAnswers(1)
      const b = new Client(t, r.port)
      b.send(`GET /b HTTP/1.1\r\n${H}\r\n`)
      await b.waitAnswers(1)
      const over = new Client(t, r.port)
      over.send(`GET /c HTTP/1.1\r\n${H}\r\n`)
      const [answer] = await over.waitAnswers(1)
      t.equal(answer?.status, 503)
      t.match(answer?.body, /Too many open connections \(the limit is 2\)/)
      await over.waitEnd()
      a.send(`GET /a2 HTTP/1.1\r\n${H}\r\n`)
      t.equal((await a.waitAnswers(2))[1]?.status, 200, 'an existing connection still works')
      a.socket.destroy()
      await waitFor('the place to free up', () => r.front.size === 1, 3000, 5)
      const d = new Client(t, r.port)
      d.send(`GET /d HTTP/1.1\r\n${H}\r\n`)
      t.equal((await d.waitAnswers(1))[0]?.status, 200, 'a freed place is taken')
    })
  })
}
