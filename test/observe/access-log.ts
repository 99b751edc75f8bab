// The access log: the two formats with every field, hostile request targets, buffering (a
// line is written on the timer, at the size bound and at close, not per request), a sink that
// cannot keep up (lines dropped and counted, memory bounded), and the log of a real balancer.
import t from 'tap'
import { PassThrough, Writable } from 'node:stream'
import { readFile, mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { AccessLog, clfTime, combinedLine, isoTime, jsonLine } from '../../src/observe/access-log.js'
import { rng as seededRandom } from '../fixtures/rng.js'
import type { FinishedRequest } from '../../src/observe/request-observer.js'
import { startTestApp } from '../fixtures/app.js'
import { call, waitFor } from '../fixtures/http.js'

function finished(over: Partial<FinishedRequest> = {}, headers: Record<string, string> = {}): FinishedRequest {
  return {
    incoming: { method: 'GET', url: '/home?x=1', httpVersion: '1.1', headers, socket: { remoteAddress: '127.0.0.1' } },
    status: 200,
    startedAt: 0,
    upstreamMs: 1.23456,
    bytesIn: 0,
    bytesOut: 61,
    flag: '-',
    replicaName: 'Server 1',
    ...over,
  }
}
const at = Date.UTC(2026, 11, 2, 9, 5, 7, 89)

t.test('json lines carry every field', async (t) => {
  const line = jsonLine(finished({ bytesIn: 5 }), 2.5, at)
  t.ok(line.endsWith('\n'))
  t.same(JSON.parse(line), {
    time: '2026-12-02T09:05:07.089Z',
    client: '127.0.0.1',
    method: 'GET',
    target: '/home?x=1',
    protocol: 'HTTP/1.1',
    status: 200,
    bytes_in: 5,
    bytes_out: 61,
    duration_ms: 2.5,
    upstream_ms: 1.235,
    replica: 'Server 1',
    flags: '-',
  })
  const local = JSON.parse(jsonLine(finished({ status: 503, upstreamMs: -1, replicaName: undefined, flag: 'UH' }), 0.1, at))
  t.equal(local.upstream_ms, null)
  t.equal(local.replica, null)
  t.equal(local.flags, 'UH')
})

t.test('json lines are exactly what JSON.stringify of the same object gives, for any string a client sends', async (t) => {
  const reference = (r: FinishedRequest, totalMs: number, now: number): string =>
    `${JSON.stringify({
      time: new Date(now).toISOString(),
      client: r.incoming.socket.remoteAddress ?? '-',
      method: r.incoming.method ?? '-',
      target: r.incoming.url ?? '-',
      protocol: `HTTP/${r.incoming.httpVersion ?? '1.1'}`,
      status: r.status,
      bytes_in: r.bytesIn,
      bytes_out: r.bytesOut,
      duration_ms: Math.round(totalMs * 1000) / 1000,
      upstream_ms: r.upstreamMs < 0 ? null : Math.round(r.upstreamMs * 1000) / 1000,
      replica: r.replicaName ?? null,
      flags: r.flag,
    })}\n`
  const random = seededRandom(20261202)
  // Quotes, backslashes, control bytes, DEL, Latin-1, astral characters and lone surrogates.
  const alphabet = ['a', '/', '"', '\\', '\n', '\r', '\t', '\x00', '\x1f', '\x7f', 'é', '\u2028', '😀', '\ud800', '\udfff', '%', ' ']
  const text = (): string => Array.from({ length: Math.floor(random() * 12) }, () => alphabet[Math.floor(random() * alphabet.length)]).join('')
  let mismatches = 0
  for (let i = 0; i < 2000; i++) {
    const r = finished({ flag: text(), replicaName: i % 7 === 0 ? undefined : text(), upstreamMs: i % 5 === 0 ? -1 : random() * 100 }, {})
    const incoming = { ...r.incoming, method: text(), url: text(), httpVersion: i % 3 === 0 ? undefined : text(), socket: { remoteAddress: i % 11 === 0 ? undefined : text() } }
    const hostile = { ...r, incoming }
    const now = at + Math.floor(random() * 5000)
    const total = random() * 1000
    if (jsonLine(hostile, total, now) !== reference(hostile, total, now)) mismatches++
  }
  t.equal(mismatches, 0, '2000 seeded hostile requests, byte for byte')
  t.equal(JSON.parse(jsonLine(finished(), Number.NaN, at)).duration_ms, null, 'a number JSON cannot hold is null, as JSON.stringify writes it')
})

t.test('time stamps formatted once a second are the same as formatted every time', async (t) => {
  let wrong = 0
  for (let ms = at - 2500; ms < at + 2500; ms += 7) {
    if (isoTime(ms) !== new Date(ms).toISOString()) wrong++
  }
  for (const ms of [0, 999, 1000, at, at + 999, at + 1000, Date.UTC(2024, 1, 29, 23, 59, 59, 999)]) t.equal(isoTime(ms), new Date(ms).toISOString())
  t.equal(wrong, 0, 'every 7 ms over 5 s, across second boundaries and back again')
  t.equal(clfTime(at), '[02/Dec/2026:09:05:07 +0000]')
  t.equal(clfTime(at + 1000), '[02/Dec/2026:09:05:08 +0000]')
  t.equal(clfTime(at), '[02/Dec/2026:09:05:07 +0000]', 'going back a second recomputes')
})

t.test('combined lines: Apache combined, then replica, total ms, upstream ms, flags', async (t) => {
  const line = combinedLine(finished({}, { referer: 'http://a/', 'user-agent': 'curl/8.5.0' }), 2.5, at)
  t.equal(line, '127.0.0.1 - - [02/Dec/2026:09:05:07 +0000] "GET /home?x=1 HTTP/1.1" 200 61 "http://a/" "curl/8.5.0" "Server 1" 2.5 1.235 -\n')
  const none = combinedLine(finished({ upstreamMs: -1, replicaName: undefined, flag: 'DC', status: 499 }), 1, at)
  t.match(none, /" 499 61 "-" "-" "-" 1 - DC\n$/)
})

t.test('hostile targets and headers cannot forge a line or a field', async (t) => {
  const evil = finished({}, { 'user-agent': 'x" 200 "\nfake line' })
  const withTarget = { ...evil, incoming: { ...evil.incoming, url: '/a"b\\c\r\nGET /forged' } }
  const combined = combinedLine(withTarget, 1, at)
  t.equal(combined.split('\n').length, 2, 'one line')
  t.match(combined, /"GET \/a\\x22b\\x5cc\\x0d\\x0aGET \/forged HTTP\/1.1"/)
  t.match(combined, /"x\\x22 200 \\x22\\x0afake line"/)
  const json = jsonLine(withTarget, 1, at)
  t.equal(json.split('\n').length, 2, 'one line')
  t.equal(JSON.parse(json).target, '/a"b\\c\r\nGET /forged', 'JSON keeps the exact target')
})

t.test('lines are buffered: written on the timer, at the size bound and at close', async (t) => {
  const writes: string[] = []
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      writes.push(chunk.toString())
      done()
    },
  })
  const log = new AccessLog({ format: 'json', sink, flushMs: 50, maxBufferBytes: 1_000_000 })
  for (let i = 0; i < 10; i++) log.request(finished(), 1)
  t.equal(writes.length, 0, 'nothing written per request')
  await waitFor('the timer flush', () => writes.length === 1, 2000)
  t.equal(writes[0]!.split('\n').length - 1, 10, 'ten lines in one write')

  const small = new AccessLog({ format: 'json', sink, flushMs: 60_000, maxBufferBytes: 1000 })
  for (let i = 0; i < 6; i++) small.request(finished(), 1)
  t.equal(writes.length, 2, 'the size bound flushed without waiting for the timer')
  small.request(finished(), 1)
  await small.close()
  t.equal(writes.length, 3, 'close flushed the rest')
  await log.close()
})

t.test('a sink that cannot keep up: lines are dropped and counted, memory stays bounded', async (t) => {
  // A stream nobody reads: its buffer fills and stays full.
  const stuck = new PassThrough({ highWaterMark: 16 })
  stuck.pause()
  const log = new AccessLog({ format: 'json', sink: stuck, flushMs: 60_000, maxBufferBytes: 4096, maxPendingBytes: 64 * 1024 })
  for (let i = 0; i < 5000; i++) log.request(finished(), 1)
  t.ok(log.dropped > 0, `dropped ${log.dropped} lines`)
  t.ok(stuck.writableLength < 64 * 1024 + 8192, `pending bytes bounded (${stuck.writableLength})`)
  await log.close()
  stuck.destroy()
})

t.test('a balancer logs every request to its file, flushed at close', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'rb-access-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const file = join(dir, 'access.log')
  const app = await startTestApp(t, ['--replicas', '2', '--access-log', 'json', '--access-log-file', file])
  for (let i = 0; i < 5; i++) t.equal((await call(`${app.url}/home?i=${i}`)).status, 200)
  t.equal((await call(`${app.url}/nothing-here`)).status, 400)
  // Whatever the replica makes of a POST, the log says what the client got.
  const post = await call(`${app.url}/home`, 'POST', 'hello')
  await app.close()
  const lines = (await readFile(file, 'utf8')).trim().split('\n').map((l) => JSON.parse(l))
  t.equal(lines.length, 7, 'one line per request')
  t.same(lines.slice(0, 5).map((l) => l.target), ['/home?i=0', '/home?i=1', '/home?i=2', '/home?i=3', '/home?i=4'])
  for (const l of lines) {
    t.ok(l.duration_ms >= l.upstream_ms && l.upstream_ms >= 0, 'total >= upstream time')
    t.equal(l.client, '127.0.0.1')
    t.equal(l.flags, '-')
    t.ok(typeof l.replica === 'string' && l.replica.length > 0)
  }
  t.equal(lines[5].status, 400, "the replica's 404, as the SPEC's 400")
  t.equal(lines[6].method, 'POST')
  t.equal(lines[6].status, post.status)
  t.equal(lines[6].bytes_in, 5, 'request body bytes')
  t.ok(lines[0].bytes_out > 0, 'response body bytes')
})
