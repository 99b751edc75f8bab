/**
 * The health checker in its worker thread, against real replica processes (and small
 * in-process servers where a test needs to see the probes arrive).
 */
import t, { type Test } from 'tap'
import { createServer, type RequestListener, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { HealthMonitor, type HealthReport, type HealthTarget, type MonitorOptions } from '../../src/health/monitor.js'
import { busy, freeze, nextEvent, signal, startReplicas } from '../fixtures/health.js'
import { setTimeout as sleep } from 'node:timers/promises'

type Report = HealthReport<HealthTarget>

// Probes every 50 ms; a timeout well above loopback latency, so that a loaded test machine
// (other test files run in parallel) does not make healthy replicas look dead.
const FAST = { intervalMs: 50, timeoutMs: 250, rise: 2, fall: 3 }

async function monitor(t: Test, options: MonitorOptions = FAST): Promise<HealthMonitor<HealthTarget>> {
  const m = new HealthMonitor<HealthTarget>(options)
  t.teardown(() => m.close())
  await m.start()
  return m
}

/** Collect every report, to assert that some never came. */
function record(m: HealthMonitor<HealthTarget>): Report[] {
  const all: Report[] = []
  m.on('down', (r) => all.push(r))
  m.on('up', (r) => all.push(r))
  return all
}

async function serve(t: Test, handler: RequestListener): Promise<{ server: Server; target: HealthTarget }> {
  const server = createServer(handler)
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => {
    server.close(() => resolve())
    server.closeAllConnections()
  }))
  return { server, target: { name: 'local', host: '127.0.0.1', port: (server.address() as AddressInfo).port } }
}

t.test('the worker loads (from src/ under the TypeScript loader) and leaves healthy replicas alone', async (t) => {
  const { handles } = await startReplicas(t, ['A', 'B'])
  const m = await monitor(t)
  const reports = record(m)
  for (const h of handles) m.watch(h)
  // Twenty intervals: enough probes for any false alarm to show.
  await sleep(20 * FAST.intervalMs)
  t.same(reports, [], 'no state change for healthy replicas')
  t.same(m.watching().map((h) => h.name), ['A', 'B'])
})

t.test('probes GET /heartbeat over one kept-alive connection, on the interval', async (t) => {
  const seen: string[] = []
  let connections = 0
  const { server, target } = await serve(t, (req, res) => {
    seen.push(`${req.method} ${req.url}`)
    res.end()
  })
  server.on('connection', () => connections++)
  // A generous timeout: a timed-out probe closes its connection, which is not what this checks.
  const m = await monitor(t, { ...FAST, timeoutMs: 2000 })
  m.watch(target)
  const started = Date.now()
  await new Promise<void>((resolve) => {
    const check = setInterval(() => {
      if (seen.length >= 10) {
        clearInterval(check)
        resolve()
      }
    }, 5)
  })
  const elapsed = Date.now() - started
  t.ok(seen.every((s) => s === 'GET /heartbeat'), 'only GET /heartbeat')
  // One connection normally; a second only if a probe on a heavily loaded machine still timed
  // out (which closes its connection). Ten probes over at most two connections is reuse.
  t.ok(connections >= 1 && connections <= 2, `${connections} connection(s) for ${seen.length} probes: kept alive and reused`)
  t.ok(elapsed >= 9 * FAST.intervalMs, `10 probes in ${elapsed} ms at a ${FAST.intervalMs} ms interval: not more often`)
  t.ok(elapsed < 100 * FAST.intervalMs, 'and not stalled')
})

t.test('a non-200 heartbeat counts as a failure; fall failures make it down, rise successes bring it back', async (t) => {
  let status = 200
  const { target } = await serve(t, (_req, res) => {
    res.statusCode = status
    res.end()
  })
  const m = await monitor(t)
  const reports = record(m)
  m.watch(target)
  status = 503
  const [down] = await nextEvent<[Report]>(m, 'down', () => true, 10_000)
  t.equal(down.reason, 'status 503')
  t.equal(down.probes, FAST.fall, `down after fall = ${FAST.fall} failed probes`)
  t.ok(down.at - down.since < 5000, `detected ${down.at - down.since} ms after the first failure`)
  status = 200
  const [up] = await nextEvent<[Report]>(m, 'up', () => true, 10_000)
  t.equal(up.probes, FAST.rise, `up after rise = ${FAST.rise} good probes`)
  t.same(reports.map((r) => r.state), ['down', 'up'], 'only the two transitions were posted')
})

t.test('a killed replica is reported down (refused), the others are not', async (t) => {
  const { handles, pid } = await startReplicas(t, ['A', 'B', 'C'])
  const m = await monitor(t)
  const reports = record(m)
  for (const h of handles) m.watch(h)
  signal(pid('B'), 'SIGKILL')
  const [down] = await nextEvent<[Report]>(m, 'down', () => true, 10_000)
  t.equal(down.target.name, 'B')
  t.equal(down.reason, 'ECONNREFUSED')
  await sleep(5 * FAST.intervalMs)
  t.same(reports.map((r) => `${r.target.name} ${r.state}`), ['B down'])
})

t.test('a frozen replica (SIGSTOP) times out and is reported down; thawed, it comes back up', async (t) => {
  const { handles, pid } = await startReplicas(t, ['A', 'B'])
  const m = await monitor(t)
  for (const h of handles) m.watch(h)
  freeze(t, pid('A'))
  const [down] = await nextEvent<[Report]>(m, 'down', () => true, 10_000)
  t.equal(down.target.name, 'A')
  t.match(down.reason, /^timeout after 250 ms$/)
  signal(pid('A'), 'SIGCONT')
  const [up] = await nextEvent<[Report]>(m, 'up', () => true, 10_000)
  t.equal(up.target.name, 'A')
})

t.test('a suspect is confirmed dead by one failed probe, or restored by rise good ones, at the fast interval', async (t) => {
  // Regular probes a minute apart: only the suspect path can answer within the deadlines below.
  const slow = { intervalMs: 60_000, timeoutMs: 500, rise: 2, fall: 3, fastIntervalMs: 200 }
  const { handles, pid } = await startReplicas(t, ['A', 'B'])
  const m = await monitor(t, slow)
  for (const h of handles) m.watch(h)
  const [a, b] = handles as unknown as [HealthTarget, HealthTarget]

  signal(pid('A'), 'SIGKILL')
  const started = Date.now()
  m.suspect(a)
  const [down] = await nextEvent<[Report]>(m, 'down', () => true, 10_000)
  t.equal(down.target, a, 'the same target object comes back')
  t.equal(down.probes, slow.fall, 'the passive report counts as fall - 1 failures')
  t.comment(`confirmed dead in ${Date.now() - started} ms`)

  m.suspect(b)
  const [up] = await nextEvent<[Report]>(m, 'up', () => true, 10_000)
  t.equal(up.target, b)
  t.equal(up.probes, slow.rise, 'restored after rise good probes')
  t.ok(up.at - up.since >= slow.fastIntervalMs, `${up.at - up.since} ms between the first and last good probe: one fast interval apart`)
})

t.test('the fast interval defaults to a quarter of the interval', async (t) => {
  t.equal(new HealthMonitor({ intervalMs: 1000, timeoutMs: 500, rise: 2, fall: 3 }).options.fastIntervalMs, 250)
  t.equal(new HealthMonitor({ intervalMs: 20, timeoutMs: 5, rise: 2, fall: 3 }).options.fastIntervalMs, 10)
})

t.test('unwatched replicas are no longer probed; newly watched ones are', async (t) => {
  const { handles, pid } = await startReplicas(t, ['A', 'B'])
  const m = await monitor(t)
  const reports = record(m)
  const [a, b] = handles as unknown as [HealthTarget, HealthTarget]
  m.watch(a)
  m.unwatch(a)
  signal(pid('A'), 'SIGKILL')
  m.watch(b)
  signal(pid('B'), 'SIGKILL')
  await nextEvent<[Report]>(m, 'down', (r) => r.target === b, 10_000)
  await sleep(5 * FAST.intervalMs)
  t.same(reports.map((r) => `${r.target.name} ${r.state}`), ['B down'], 'nothing about the unwatched A')
})

t.test('keeps checking while the main thread is blocked longer than fall x interval', async (t) => {
  // The block (4 s) is far longer than fall x interval (300 ms) and than the time the worker
  // needs to find a frozen replica (about fall x timeout = 1.5 s).
  const options = { intervalMs: 100, timeoutMs: 500, rise: 2, fall: 3 }
  const { handles, pid } = await startReplicas(t, ['A', 'B', 'C'])
  const m = await monitor(t, options)
  const reports = record(m)
  for (const h of handles) m.watch(h)
  // Let every checker settle into its loop before the main thread stops.
  await sleep(3 * options.intervalMs)
  freeze(t, pid('A'))
  const blockedFrom = Date.now()
  const blockMs = 4000
  busy(blockMs)
  const blockedUntil = Date.now()
  await nextEvent<[Report]>(m, 'down', (r) => r.target.name === 'A', 10_000)
  await sleep(5 * options.intervalMs)
  t.same(reports.map((r) => `${r.target.name} ${r.state}`), ['A down'], 'healthy B and C were not reported dead')
  const down = reports[0]!
  t.ok(down.at < blockedUntil, `A was found dead ${down.at - blockedFrom} ms into a ${blockMs} ms block of the main thread`)
})

t.test('a worker that dies is restarted with the current list', async (t) => {
  const { handles, pid } = await startReplicas(t, ['A'])
  const m = await monitor(t)
  const errors: Error[] = []
  m.on('error', (e) => errors.push(e))
  m.watch(handles[0]!)
  await (m as unknown as { worker: { terminate(): Promise<number> } }).worker.terminate()
  signal(pid('A'), 'SIGKILL')
  const [down] = await nextEvent<[Report]>(m, 'down', () => true, 10_000)
  t.equal(down.target.name, 'A', 'the restarted worker still checks A')
})

t.test('a suspect still awaiting its verdict when the worker dies is checked by the restarted one', async (t) => {
  // No regular probe within the deadline: only the suspect's fast probes can answer.
  const { handles, pid } = await startReplicas(t, ['A'])
  const m = await monitor(t, { intervalMs: 60_000, timeoutMs: 500, rise: 2, fall: 3, fastIntervalMs: 200 })
  const a = handles[0]!
  m.watch(a)
  signal(pid('A'), 'SIGKILL')
  await (m as unknown as { worker: { terminate(): Promise<number> } }).worker.terminate()
  // Told while no worker runs: only the restarted worker, told again, can confirm it.
  m.suspect(a)
  const [down] = await nextEvent<[Report]>(m, 'down', () => true, 10_000)
  t.equal(down.target, a)
})

t.test('close stops the worker and can be called twice', async (t) => {
  const m = new HealthMonitor<HealthTarget>(FAST)
  await m.start()
  await m.close()
  await m.close()
  t.pass('closed twice')
})
