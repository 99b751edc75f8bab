// Replica answers are not trusted either (issue 14, item 6): a scripted raw replica sends an
// answer that breaks the framing rules; the client gets 502 (the replica's head never reaches
// it), and the next request goes on a new upstream connection (the broken one is discarded).
import t, { type Test } from 'tap'
import { rawReplica } from '../fixtures/raw-replica.js'
import { Client, FRONTS, rig, type FrontKind } from './fixtures/harness.js'

const GOOD = 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok'

const BAD: ReadonlyArray<[string, string]> = [
  ['Content-Length and Transfer-Encoding (RFC 9112 6.1)', 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n'],
  ['two different Content-Lengths (RFC 9112 6.3)', 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nokk'],
  ['a bare CR in a header (response splitting, RFC 9112 2.2)', 'HTTP/1.1 200 OK\r\nX-A: a\rSet-Cookie: evil=1\r\nContent-Length: 2\r\n\r\nok'],
  ['a bare LF in a header (RFC 9112 2.2)', 'HTTP/1.1 200 OK\r\nX-A: a\nSet-Cookie: evil=1\r\nContent-Length: 2\r\n\r\nok'],
  ['NUL in a header (RFC 9110 5.5)', 'HTTP/1.1 200 OK\r\nX-A: a\x00b\r\nContent-Length: 2\r\n\r\nok'],
  ['an oversized head', `HTTP/1.1 200 OK\r\n${'X-Big: yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy\r\n'.repeat(2000)}Content-Length: 2\r\n\r\nok`],
  ['a bad status line', 'HTTP/1.1 2x0 OK\r\nContent-Length: 2\r\n\r\nok'],
]

/** A replica whose first answer is `answer` and later ones GOOD, behind the `kind` front, and a client of it. */
async function brokenOnce(t: Test, kind: FrontKind, answer: string): Promise<{ replica: Awaited<ReturnType<typeof rawReplica>>; port: number; c: Client }> {
  let n = 0
  const replica = await rawReplica(t, (socket) => {
    socket.write(n++ === 0 ? answer : GOOD, 'latin1')
  })
  const r = await rig(t, kind, {}, replica.port)
  return { replica, port: r.port, c: new Client(t, r.port) }
}

for (const kind of FRONTS) {
  t.test(`through the ${kind} front`, async (t) => {
    for (const [name, answer] of BAD) {
      await t.test(name, async (t) => {
        const { replica, c } = await brokenOnce(t, kind, answer)
        c.send('GET /x HTTP/1.1\r\nHost: t\r\n\r\n')
        const [first] = await c.waitAnswers(1)
        t.equal(first?.status, 502, 'the client gets 502')
        t.notMatch(c.text, /evil/, 'nothing of the broken head reaches the client')
        c.send('GET /y HTTP/1.1\r\nHost: t\r\n\r\n')
        const answers = await c.waitAnswers(2)
        t.equal(answers[1]?.status, 200, 'the client connection still works')
        t.equal(replica.connections(), 2, 'the broken upstream connection was discarded, a new one opened')
      })
    }
    // Broken after the head: the head may already be on its way, so the answer is cut short.
    for (const [name, answer] of [
      ['a bad chunk size (RFC 9112 7.1)', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nok\r\n0\r\n\r\n'],
      ['a bad chunk size after a good chunk', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\nzz\r\n'],
      ['chunk data longer than its size', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nokEXTRA\r\n0\r\n\r\n'],
    ] as const) {
      await t.test(`${name}: the client's answer is aborted`, async (t) => {
        const { replica, port, c } = await brokenOnce(t, kind, answer)
        c.send('GET /x HTTP/1.1\r\nHost: t\r\n\r\n')
        await c.waitEnd()
        t.same(c.answers(), [], 'no complete answer: the client sees it cut short (or nothing)')
        const again = new Client(t, port)
        again.send('GET /y HTTP/1.1\r\nHost: t\r\n\r\n')
        t.equal((await again.waitAnswers(1))[0]?.status, 200)
        t.equal(replica.connections(), 2, 'the broken upstream connection was discarded, a new one opened')
      })
    }
  })
}
