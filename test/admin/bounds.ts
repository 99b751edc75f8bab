// Bounded admin work (issue 15): no admin request, whatever its body, stalls or exhausts the
// balancer. Real balancer, real replica processes, real sockets; /home keeps being measured
// while the hostile requests arrive.
import t from 'tap'
import { Agent } from 'node:http'
import { connect } from 'node:net'
import { once } from 'node:events'
import { monitorEventLoopDelay } from 'node:perf_hooks'
import { startTestApp } from '../fixtures/app.js'
import { call } from '../fixtures/http.js'
import { fail, refused, snapshot, unchanged } from '../fixtures/admin.js'
import { MAX_JSON_DEPTH } from '../../src/admin/json.js'

/** The request of the adversarial run, byte for byte (68 bytes). */
const HANG = 'POST /add HTTP/1.1\r\nHost: t\r\nContent-Length: 17\r\n\r\n{"n": 1000000000}'

/** Send raw bytes, resolve with everything received until the server closes or `until` matches. */
async function raw(port: number, bytes: string, until: RegExp): Promise<string> {
  const socket = connect({ port, host: '127.0.0.1' })
  await once(socket, 'connect')
  socket.write(bytes)
  let text = ''
  for await (const chunk of socket) {
    text += String(chunk)
    if (until.test(text)) break
  }
  socket.destroy()
  return text
}

// One balancer for every test below that must change nothing (each checks that it did not).
const app = await startTestApp(t)

t.test('the 68-byte hang request is answered at once with 400 and changes nothing', async (t) => {
  t.equal(Buffer.byteLength(HANG), 68)
  const port = Number(new URL(app.url).port)
  const before = snapshot(app)
  const started = performance.now()
  const answer = await raw(port, HANG, /"status":"failure"\}$/)
  const ms = performance.now() - started
  t.comment(`answered in ${ms.toFixed(1)} ms`)
  t.match(answer, /^HTTP\/1\.1 400 /)
  t.ok(answer.endsWith(JSON.stringify(fail('Cannot add 1000000000 replica(s): 3 present, at most 100 allowed (--max-replicas)'))))
  t.ok(ms < 1000, `answered in ${ms.toFixed(1)} ms, not never`)
  unchanged(t, app, before)
  t.equal((await call(`${app.url}/home`)).status, 200, 'and the balancer still answers')
})

t.test('/home keeps answering while /add asks for 1e5, 1e9 and 1e300 replicas', async (t) => {
  const before = snapshot(app)
  const agent = new Agent({ keepAlive: true, maxSockets: 1 })
  t.teardown(() => agent.destroy())
  const delay = monitorEventLoopDelay({ resolution: 1 })

  let stop = false
  const latencies: number[] = []
  const homes = (async () => {
    while (!stop) {
      const started = performance.now()
      const reply = await call(`${app.url}/home`, 'GET', undefined, {}, agent)
      latencies.push(performance.now() - started)
      if (reply.status !== 200) throw new Error(`/home answered ${reply.status}`)
    }
  })()
  // Some /home answers before, then the hostile requests, all at once, each repeated.
  while (latencies.length < 20) await new Promise((r) => setImmediate(r))
  delay.enable()
  const asks = ['1e5', '1e9', '1e300', '100000', '1000000000']
  const replies = await Promise.all(
    asks.flatMap((n) => [1, 2, 3].map(() => call(`${app.url}/add`, 'POST', `{"n": ${n}}`, { 'content-type': 'application/json' }))),
  )
  const during = latencies.length
  while (latencies.length < during + 20) await new Promise((r) => setImmediate(r))
  delay.disable()
  stop = true
  await homes

  replies.forEach((reply, i) => {
    const n = Number(asks[Math.floor(i / 3)])
    t.equal(reply.status, 400)
    t.same(reply.json, fail(`Cannot add ${n} replica(s): 3 present, at most 100 allowed (--max-replicas)`))
  })
  unchanged(t, app, before)
  const worst = Math.max(...latencies)
  const loopMax = delay.max / 1e6
  t.comment(`/home: ${latencies.length} answers, worst ${worst.toFixed(1)} ms; event loop delay max ${loopMax.toFixed(1)} ms`)
  // Before the bound: n = 1e5 alone stalled everything for 0.9 s and 1e9 forever.
  t.ok(worst < 500, `worst /home latency ${worst.toFixed(1)} ms`)
  t.ok(loopMax < 500, `event loop never blocked long (${loopMax.toFixed(1)} ms)`)
})

t.test('n past the ring room is RING_FULL before any name is made up; --max-replicas is a flag', async (t) => {
  const capped = await startTestApp(t, ['--max-replicas', '5'])
  await refused(t, capped, 'POST', '/add', '{"n": 3}', 400, fail('Cannot add 3 replica(s): 3 present, at most 5 allowed (--max-replicas)'))
  t.equal((await call(`${capped.url}/add`, 'POST', '{"n": 2}')).status, 200, 'up to the cap is fine')
  await refused(t, capped, 'POST', '/add', '{"n": 1}', 400, fail('Cannot add 1 replica(s): 5 present, at most 5 allowed (--max-replicas)'))

  const roomy = await startTestApp(t, ['--max-replicas', '1000'])
  // 512 slots / 9 per replica: 56 fit, 3 are there.
  await refused(t, roomy, 'POST', '/add', '{"n": 54}', 400, fail('The ring has no room for 54 more server(s): 512 slots, 9 virtual servers each, 3 present'))
  await refused(t, roomy, 'POST', '/add', '{"n": 1e300}', 400, fail('Cannot add 1e+300 replica(s): 3 present, at most 1000 allowed (--max-replicas)'))
})

t.test('numbers JSON cannot hold and deeply nested bodies get 400, never 500', async (t) => {
  const deep = (depth: number, inner = '1'): string => `${'['.repeat(depth)}${inner}${']'.repeat(depth)}`
  const nested = fail(`Invalid JSON payload: nested more than ${MAX_JSON_DEPTH} levels deep`)
  await refused(t, app, 'POST', '/add', '{"n": 1e400}', 400, fail('n must be a positive integer, got Infinity'))
  await refused(t, app, 'POST', '/add', '{"n": -1e400}', 400, fail('n must be a positive integer, got -Infinity'))
  await refused(t, app, 'DELETE', '/rm', '{"n": 1e400}', 400, fail('n must be a positive integer, got Infinity'))
  await refused(t, app, 'DELETE', '/rm', '{"n": 1e300}', 400, fail('Cannot remove 1e+300 replica(s): only 3 exist'))
  await refused(t, app, 'POST', '/add', `{"n": ${deep(10_000)}}`, 400, nested)
  await refused(t, app, 'POST', '/add', `{"n": 1, "weights": ${deep(10_000)}}`, 400, nested)
  await refused(t, app, 'DELETE', '/rm', `{"n": 1, "hostnames": ${deep(10_000, '"x"')}}`, 400, nested)
  // Within the depth bound, a nested value is still only previewed one level deep.
  await refused(t, app, 'POST', '/add', `{"n": ${deep(3)}}`, 400, fail('n must be a positive integer, got [[…]]'))
  await refused(t, app, 'POST', '/add', `{"n": 1, "weights": [${deep(5)}, 2]}`, 400, fail('weights must be a list of integers from 1 to 256, one per new replica, got [[…],2]'))
})

t.test('client text in error messages is short and escaped', async (t) => {
  const long = `evil\u001b[2J\n${'A'.repeat(60_000)}`
  const reply = await refused(t, app, 'DELETE', '/rm', JSON.stringify({ n: 1, hostnames: [long] }), 400, fail(`Hostname 'evil\\u001b[2J\\n${'A'.repeat(55)}…' does not exist`))
  t.ok(reply.body.length < 300, `answer of ${reply.body.length} bytes for a 60 KB name`)
  await refused(t, app, 'POST', '/add', JSON.stringify({ n: 1, hostnames: [long] }), 400, fail(`Invalid hostname "evil\\u001b[2J\\n${'A'.repeat(55)}…": use 1-63 letters, digits, single spaces, '.', '_' or '-', starting and ending with a letter or digit`))
  await refused(t, app, 'POST', '/add', JSON.stringify({ n: 'x'.repeat(10_000) }), 400, fail(`n must be a positive integer, got "${'x'.repeat(64)}…"`))
})

t.test('an admin body that arrives too slowly gets 408 and the connection is closed', async (t) => {
  const slow = await startTestApp(t, ['--admin-body-timeout', '300', '--replicas', '1'])
  const before = snapshot(slow)
  const port = Number(new URL(slow.url).port)
  const started = performance.now()
  // Headers and 1 byte of a 17-byte body, then nothing: the server must end it, not the client.
  const answer = await raw(port, 'POST /add HTTP/1.1\r\nHost: t\r\nContent-Length: 17\r\n\r\n{', /"status":"failure"\}$/)
  const ms = performance.now() - started
  t.match(answer, /^HTTP\/1\.1 408 /)
  t.match(answer, /\r\nConnection: close\r\n/i)
  t.ok(answer.endsWith(JSON.stringify(fail('Request body not received within 300 ms'))))
  t.ok(ms >= 290, `not before the timeout (${ms.toFixed(0)} ms)`)
  unchanged(t, slow, before)
})
