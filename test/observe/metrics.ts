// Metrics are exact: a known number of requests with known keys (--key header:x-k), the
// expected count per replica computed here from the ring itself, then /metrics must say the
// same for the counters, the histogram counts and the slot gauges. Then: series go when a
// replica leaves, the balancer's own answers are counted in their family, health probes count.
import t from 'tap'
import { startTestApp, startTestCluster } from '../fixtures/app.js'
import { call, waitFor } from '../fixtures/http.js'
import { observeUrl, parseMetrics, valueOf } from '../fixtures/observe.js'
import { requestIdOf } from '../../src/route/keys.js'
import { DURATION_BUCKETS } from '../../src/observe/replica-stats.js'
import type { ProcessProvider } from '../../src/replicas/process.js'
import { OP, wsConnect } from '../fixtures/websocket.js'
import { connect } from 'node:net'
import { once } from 'node:events'

// With --workers 2 the requests spread over two worker processes (a new connection each) and
// the primary's /metrics sums their counters per replica: the same numbers must come out.
for (const [fastFront, workers] of [[true, 1], [false, 1], [true, 2]] as const) {
  t.test(`counters, histograms and slots are exact (fast front ${fastFront}${workers > 1 ? `, --workers ${workers}` : ''})`, async (t) => {
    const argv = ['--key', 'header:x-k', '--replicas', '3', `--fast-front=${fastFront}`]
    const app = workers > 1 ? await startTestCluster(t, argv) : await startTestApp(t, argv)
    const base = await observeUrl(t, app)
    const ring = app.balancer.ring
    const expected = new Map<string, number>()
    const keys = Array.from({ length: 120 }, (_, i) => `user-${i * 7919}`)
    for (const key of keys) {
      const owner = ring.pick(requestIdOf(key, ring.slots))!.name
      expected.set(owner, (expected.get(owner) ?? 0) + 1)
    }
    t.equal(expected.size, 3, 'the keys reach every replica')
    for (const key of keys) {
      const r = await call(`${app.url}/home`, 'GET', undefined, { 'x-k': key })
      t.equal(r.status, 200)
    }
    // Three requests the replica answers 404 (the SPEC's 400) on a known replica.
    const notFoundKey = keys[0]!
    const notFoundOwner = ring.pick(requestIdOf(notFoundKey, ring.slots))!.name
    for (let i = 0; i < 3; i++) t.equal((await call(`${app.url}/missing`, 'GET', undefined, { 'x-k': notFoundKey })).status, 400)

    const text = (await call(`${base}/metrics`)).body
    const samples = parseMetrics(text)
    let slotSum = 0
    for (const u of app.balancer.upstreams()) {
      const name = u.name
      const ok = expected.get(name) ?? 0
      const bad = name === notFoundOwner ? 3 : 0
      t.equal(valueOf(samples, 'ring_balancer_requests_total', { replica: name, code: '2xx' }), ok, `${name}: 2xx`)
      t.equal(valueOf(samples, 'ring_balancer_requests_total', { replica: name, code: '4xx' }), bad, `${name}: 4xx`)
      t.equal(valueOf(samples, 'ring_balancer_requests_total', { replica: name, code: '5xx' }), 0, `${name}: 5xx`)
      t.equal(valueOf(samples, 'ring_balancer_request_duration_seconds_count', { replica: name }), ok + bad, `${name}: histogram count`)
      t.equal(valueOf(samples, 'ring_balancer_request_duration_seconds_bucket', { replica: name, le: '+Inf' }), ok + bad, `${name}: +Inf bucket`)
      // Buckets are cumulative and end at the count.
      const buckets = DURATION_BUCKETS.map((b) => valueOf(samples, 'ring_balancer_request_duration_seconds_bucket', { replica: name, le: String(b) })!)
      t.ok(buckets.every((v, i) => i === 0 || v >= buckets[i - 1]!), `${name}: buckets never decrease`)
      t.ok(valueOf(samples, 'ring_balancer_request_duration_seconds_sum', { replica: name })! > 0, `${name}: duration sum`)
      const slots = valueOf(samples, 'ring_balancer_replica_slots', { replica: name })!
      t.equal(slots, ring.shares().get(name), `${name}: slots as the ring table says`)
      slotSum += slots
      t.equal(valueOf(samples, 'ring_balancer_replica_up', { replica: name }), 1)
      t.equal(valueOf(samples, 'ring_balancer_replica_weight', { replica: name }), 1)
      t.equal(valueOf(samples, 'ring_balancer_inflight_requests', { replica: name }), 0)
    }
    t.equal(slotSum, ring.slots, 'the slot gauges sum to M')
    t.equal(valueOf(samples, 'ring_balancer_replicas'), 3)
    t.equal(valueOf(samples, 'ring_balancer_membership_changes_total', { change: 'add' }), 3)
    t.ok(valueOf(samples, 'ring_balancer_open_connections', { listener: 'http' })! >= 0)
    for (const name of ['process_cpu_seconds_total', 'process_resident_memory_bytes', 'process_start_time_seconds', 'nodejs_eventloop_lag_seconds']) t.ok(valueOf(samples, name)! > 0, name)
    t.match(text, /^# TYPE ring_balancer_request_duration_seconds histogram$/m)
    t.match((await call(`${base}/metrics`)).headers['content-type'], /^text\/plain; version=0\.0\.4/)
  })
}

t.test('a replica that leaves takes its series with it; changes are counted', async (t) => {
  const app = await startTestApp(t, ['--replicas', '2'])
  const base = await observeUrl(t, app)
  await call(`${app.url}/home`)
  // A name with a space, as a label value.
  const leaving = 'Leaving one'
  t.equal((await call(`${app.url}/add`, 'POST', JSON.stringify({ n: 1, hostnames: [leaving] }))).status, 200)
  let samples = parseMetrics((await call(`${base}/metrics`)).body)
  t.equal(valueOf(samples, 'ring_balancer_replicas'), 3)
  t.equal(valueOf(samples, 'ring_balancer_replica_up', { replica: leaving }), 1)
  t.equal((await call(`${app.url}/rm`, 'DELETE', JSON.stringify({ n: 1, hostnames: [leaving] }))).status, 200)
  samples = parseMetrics((await call(`${base}/metrics`)).body)
  t.equal(samples.filter((s) => s.labels.replica === leaving).length, 0, 'no series of the replica that left')
  t.equal(valueOf(samples, 'ring_balancer_replicas'), 2)
  t.equal(valueOf(samples, 'ring_balancer_membership_changes_total', { change: 'add' }), 3)
  t.equal(valueOf(samples, 'ring_balancer_membership_changes_total', { change: 'remove' }), 1)
  let slotSum = 0
  for (const name of app.balancer.membership().replicas) slotSum += valueOf(samples, 'ring_balancer_replica_slots', { replica: name })!
  t.equal(slotSum, app.balancer.ring.slots, 'the two left own every slot')

  // A killed replica is replaced: the dead one's series go, the new one's appear, a replace is counted.
  const victim = app.balancer.upstreams()[0]!
  const pid = (app.balancer.provider as ProcessProvider).pidOf(victim.name)
  t.ok(pid, 'the process provider knows the pid')
  process.kill(pid!, 'SIGKILL')
  await waitFor('the replacement', () => app.balancer.get(victim.name) === undefined && app.balancer.membership().N === 2, 20_000)
  samples = parseMetrics((await call(`${base}/metrics`)).body)
  t.equal(samples.filter((s) => s.labels.replica === victim.name).length, 0, 'no series of the dead replica')
  for (const name of app.balancer.membership().replicas) t.equal(valueOf(samples, 'ring_balancer_replica_up', { replica: name }), 1, `${name} has its series`)
  await waitFor('the replace count', async () => valueOf(parseMetrics((await call(`${base}/metrics`)).body), 'ring_balancer_membership_changes_total', { change: 'replace' }) === 1)
  samples = parseMetrics((await call(`${base}/metrics`)).body)
  t.equal(valueOf(samples, 'ring_balancer_membership_changes_total', { change: 'add' }), 3, 'a replacement is not an add')
})

t.test('answers the balancer writes itself are counted by status; health probes are counted', async (t) => {
  const app = await startTestApp(t, ['--replicas', '1', '--health-interval', '50'])
  const base = await observeUrl(t, app)
  const name = app.balancer.membership().replicas[0]!
  await waitFor('two probes', async () => (valueOf(parseMetrics((await call(`${base}/metrics`)).body), 'ring_balancer_health_checks_total', { replica: name, result: 'success' }) ?? 0) >= 2)
  const stats = (await call(`${base}/stats`)).json as { replicas: Array<{ name: string; health: { last: { ok: boolean } | null } }>; ring: { digest?: string } }
  t.equal(stats.replicas[0]!.health.last?.ok, true, '/stats shows the last check')
  t.match(stats.ring.digest, /^[0-9a-f]{16}$/, '/stats shows the routing-table digest')
  t.equal(stats.ring.digest, app.balancer.tableDigest(), 'the same digest the balancer logs')
  t.equal((await call(`${app.url}/rm`, 'DELETE', JSON.stringify({ n: 1 }))).status, 200)
  for (let i = 0; i < 4; i++) t.equal((await call(`${app.url}/home`)).status, 503)
  t.equal((await call(`${app.url}/home`, 'POST', 'x')).status, 503, 'through node:http too')
  const samples = parseMetrics((await call(`${base}/metrics`)).body)
  t.equal(valueOf(samples, 'ring_balancer_local_responses_total', { code: '503' }), 5)
  t.equal(valueOf(samples, 'ring_balancer_replicas'), 0)
})

t.test('the pages answer GET and HEAD only, and 404 with metrics off', async (t) => {
  const app = await startTestApp(t, ['--replicas', '1'])
  const base = await observeUrl(t, app)
  const post = await call(`${base}/metrics`, 'POST', 'x')
  t.equal(post.status, 405)
  t.equal(post.headers.allow, 'GET, HEAD')
  t.equal(base, app.adminUrl, 'served by the admin listener')
  const proxied = await call(`${app.url}/metrics`)
  t.equal(proxied.status, 400, 'never on the proxied port: /metrics there goes to a replica (its 404, the SPEC 400)')
  t.notMatch(proxied.body, /ring_balancer_/)
  const head = await call(`${base}/stats`, 'HEAD')
  t.equal(head.status, 200)
  t.equal(head.body, '')
  const off = await startTestApp(t, ['--replicas', '1', '--metrics=false'])
  const offBase = await observeUrl(t, off)
  t.equal((await call(`${offBase}/metrics`)).status, 404)
  t.equal(off.balancer.upstreams()[0]!.stats, undefined, 'nothing is counted')
  t.equal(off.observe.observer, undefined, 'the request path has no observer')
})

t.test('WebSocket upgrades and TCP-mode connections are counted on their replica', async (t) => {
  const app = await startTestApp(t, ['--replicas', '2', '--key', 'header:x-user', '--tcp-port', '0'])
  const base = await observeUrl(t, app)
  const owner = app.balancer.ring.pick(requestIdOf('alice', app.balancer.ring.slots))!.name
  const ws = await wsConnect(`${app.url}/ws`, { 'x-user': 'alice' })
  t.equal(await ws.echo('hi'), 'hi')
  ws.send(Buffer.from([0x03, 0xe8]), OP.close)
  t.equal((await ws.next())?.opcode, OP.close)
  await ws.closedPromise
  // A TCP-mode connection: an HTTP request over the L4 port, then closed.
  const sock = connect(app.tcpPort!, '127.0.0.1')
  sock.end('GET /home HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')
  let got = 0
  sock.on('data', (c: Buffer) => (got += c.length))
  await once(sock, 'close')
  t.ok(got > 0, 'the replica answered over TCP mode')
  await waitFor('the TCP connection counted at close', async () => {
    const s = parseMetrics((await call(`${base}/metrics`)).body)
    return app.balancer.membership().replicas.reduce((sum, name) => sum + valueOf(s, 'ring_balancer_tcp_connections_total', { replica: name })!, 0) === 1
  })
  const samples = parseMetrics((await call(`${base}/metrics`)).body)
  t.equal(valueOf(samples, 'ring_balancer_requests_total', { replica: owner, code: '1xx' }), 1, 'the 101 on the replica the key picks')
  const tcpOwner = app.balancer.membership().replicas.find((name) => valueOf(samples, 'ring_balancer_tcp_connections_total', { replica: name }) === 1)!
  t.equal(valueOf(samples, 'ring_balancer_tcp_bytes_total', { replica: tcpOwner, direction: 'from_replica' }), got, 'bytes from the replica, exactly')
  t.ok(valueOf(samples, 'ring_balancer_tcp_bytes_total', { replica: tcpOwner, direction: 'to_replica' })! > 40, 'bytes to the replica')
})
