// A bounded, seeded fuzz loop over the table's rows (rows.ts): each case mutates a row's bytes a
// little (a byte swapped for CR, LF, NUL, SP, ':' ...; a byte dropped; a line repeated; a framing
// header inserted; the tail cut), sends it and half-closes. Whatever the input: the balancer does
// not crash, answers no 5xx of its own (501 and 505 are the edge's deliberate answers), and every
// request the replica received whole was answered to the client (nothing smuggled past the edge).
// The seed is printed; FUZZ_SEED and FUZZ_CASES reproduce or extend a run.
import t from 'tap'
import { ROWS } from './fixtures/rows.js'
import { Client, FRONTS, rig } from './fixtures/harness.js'
import { rng } from '../fixtures/rng.js'

const SEED = Number(process.env.FUZZ_SEED ?? 20261202)
const CASES = Number(process.env.FUZZ_CASES ?? 150)
const PALETTE = [13, 10, 0, 32, 9, 58, 44, 48, 97, 0xff, 59, 47]
const INSERTS = ['Transfer-Encoding: chunked\r\n', 'Content-Length: 5\r\n', 'Host: x\r\n', 'Connection: close\r\n', '\r\n', 'GET /smuggled HTTP/1.1\r\n']

function mutate(input: Buffer, random: () => number): Buffer {
  let buf = input
  const n = 1 + Math.floor(random() * 3)
  for (let k = 0; k < n && buf.length > 0; k++) {
    const at = Math.floor(random() * buf.length)
    switch (Math.floor(random() * 5)) {
      case 0: {
        buf = Buffer.from(buf)
        buf[at] = PALETTE[Math.floor(random() * PALETTE.length)]!
        break
      }
      case 1:
        buf = Buffer.concat([buf.subarray(0, at), buf.subarray(at + 1)])
        break
      case 2: {
        const lineStart = buf.lastIndexOf('\n', at) + 1
        const lineEnd = buf.indexOf('\n', at)
        if (lineEnd !== -1) buf = Buffer.concat([buf.subarray(0, lineEnd + 1), buf.subarray(lineStart, lineEnd + 1), buf.subarray(lineEnd + 1)])
        break
      }
      case 3: {
        const firstLine = buf.indexOf('\n') + 1
        const insert = Buffer.from(INSERTS[Math.floor(random() * INSERTS.length)]!, 'latin1')
        buf = Buffer.concat([buf.subarray(0, firstLine), insert, buf.subarray(firstLine)])
        break
      }
      case 4:
        buf = buf.subarray(0, Math.max(1, at))
        break
    }
  }
  return buf
}

for (const kind of FRONTS) {
  t.test(`fuzz through the ${kind} front (seed ${SEED}, ${CASES} cases)`, async (t) => {
    const r = await rig(t, kind, { headerTimeoutMs: 1000, clientTimeoutMs: 1000 })
    const random = rng(SEED)
    let failures = 0
    for (let i = 0; i < CASES && failures < 5; i++) {
      const row = ROWS[Math.floor(random() * ROWS.length)]!
      const bytes = mutate(Buffer.from(row.send, 'latin1'), random)
      r.seen.length = 0
      const c = new Client(t, r.port)
      c.send(bytes)
      c.socket.end()
      await c.waitEnd(6000)
      c.socket.destroy()
      const answers = c.answers()
      const own5xx = answers.filter((a) => a.status >= 500 && a.status !== 501 && a.status !== 505)
      const answered = answers.filter((a) => a.status === 200).map((a) => /\r\nx-seen: ([^\r]*)/i.exec(a.headers)?.[1] ?? '?').sort()
      const received = r.seen.map((s) => `${s.method} ${s.url}`).sort()
      const ok = own5xx.length === 0 && JSON.stringify(received) === JSON.stringify(answered)
      if (!ok) {
        failures++
        t.fail(`case ${i} (row "${row.name}"): ${JSON.stringify(bytes.toString('latin1'))} -> statuses ${answers.map((a) => a.status)}, replica received ${JSON.stringify(received)}, answered ${JSON.stringify(answered)}`)
      }
    }
    t.equal(failures, 0, `${CASES} mutated cases: no 5xx of the balancer's own, nothing the client was not answered for reached the replica`)
    const after = new Client(t, r.port)
    after.send('GET /alive HTTP/1.1\r\nHost: t\r\n\r\n')
    t.equal((await after.waitAnswers(1))[0]?.status, 200, 'still serving after the fuzz')
  })
}
