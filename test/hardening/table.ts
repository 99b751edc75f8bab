// The edge's table (rows.ts), every row through both fronts: the fast front and node:http only
// (--fast-front=false). Raw sockets, a recording replica, exact bytes.
import t from 'tap'
import { ROWS } from './fixtures/rows.js'
import { Client, FRONTS, rig } from './fixtures/harness.js'

for (const kind of FRONTS) {
  t.test(`through the ${kind} front`, async (t) => {
    const r = await rig(t, kind)
    for (const row of ROWS) {
      await t.test(`${row.name} [${row.rule}]`, async (t) => {
        r.seen.length = 0
        const c = new Client(t, r.port)
        c.send(row.send)
        if (row.fin) c.socket.end()
        const n = row.answers ?? 1
        const answers = await c.waitAnswers(n)
        t.equal(answers[0]?.status, row.status, 'status')
        if (n > 1) t.equal(answers[1]?.status, row.then ?? row.status, 'second status')
        if (row.status >= 400) t.match(answers[0]?.body, /^\{"message":"<Error> .+","status":"failure"\}$/, "the SPEC's error shape")
        if (row.open) {
          c.send('GET /after HTTP/1.1\r\nHost: t\r\n\r\n')
          const more = await c.waitAnswers(n + 1)
          t.equal(more[n]?.status, 200, 'the connection stays open: the next request is answered')
        } else {
          await c.waitEnd()
          t.ok(c.ended || c.closed, 'the connection is closed')
          t.equal(c.error, undefined, 'closed without a reset (lingering close), so the answer is read')
        }
        const seen = r.seen.filter((s) => s.url !== '/after').map((s) => `${s.method} ${s.url}`)
        t.same(seen, row.seen, row.seen.length === 0 ? 'the replica received nothing' : 'what the replica received')
        if (row.host !== undefined) t.equal(r.seen[0]?.host, row.host, 'the Host the replica saw')
      })
    }
  })
}
