/**
 * Health and failure through the whole balancer, with real replica processes: passive
 * detection, suspect/restore, replacement of dead and frozen replicas, requests that must be
 * retried and requests that must not be replayed, and draining.
 */
import t, { type Test } from 'tap'
import { fileURLToPath } from 'node:url'
import { Agent } from 'node:http'
import { loadConfig } from '../../src/config.js'
import { Balancer } from '../../src/membership/balancer.js'
import { attachHealth } from '../../src/health/attach.js'
import { ProcessProvider, type ProcessProviderOptions } from '../../src/replicas/process.js'
import { probeHeartbeat } from '../../src/replicas/heartbeat.js'
import type { App } from '../../src/app.js'
import type { Upstream } from '../../src/upstream/upstream.js'
import { startTestApp } from '../fixtures/app.js'
import { call, type Reply } from '../fixtures/http.js'
import { alive, freeze, nextEvent, signal, waitFor } from '../fixtures/health.js'

const slowReplica = fileURLToPath(new URL('../fixtures/slow-replica.mjs', import.meta.url))

/** A process provider that never reports exits: only the health checks can find a dead replica. */
class NoExitEvents extends ProcessProvider {
  override onExit(): void {}
}

function provider(t: Test, Kind: typeof ProcessProvider, options: Partial<ProcessProviderOptions> = {}): ProcessProvider {
  const p = new Kind({ startTimeoutMs: 10_000, stopTimeoutMs: 1000, ...options })
  // Thaw anything a test froze, so the provider can stop it.
  t.teardown(() => {
    for (const h of p.list()) signal(Number(h.id), 'SIGCONT')
  })
  return p
}

/** A request id (for `--key header:x-key`) that the ring sends to `name`. */
function keyFor(app: App, name: string): string {
  for (let id = 0; id < 100_000; id++) if (app.balancer.ring.pick(id)?.name === name) return String(id)
  throw new Error(`no key routes to ${name}`)
}

function servedBy(body: string): string {
  return (JSON.parse(body) as { message: string }).message.replace(/^(Hello|Slow) from Server: /, '')
}

t.test('passive detection: a refused connection makes the replica suspect at once; the checker confirms; it is replaced', async (t) => {
  const p = provider(t, NoExitEvents)
  // A long interval: only the passive path (and the checker's fast confirmation) can act in time.
  const app = await startTestApp(t, ['--key', 'header:x-key', '--health-interval', '60000', '--health-timeout', '200'], { provider: p })
  const victim = 'Server 2'
  const port = app.balancer.get(victim)!.port
  const key = keyFor(app, victim)
  signal(p.pidOf(victim)!, 'SIGKILL')
  await waitFor('the killed replica to refuse connections', async () => !(await probeHeartbeat('127.0.0.1', port, { timeoutMs: 200 })).ok)

  const suspected = nextEvent(app.balancer, 'suspect', (u: Upstream) => u.name === victim, 5000)
  const replaced = nextEvent<[string, string]>(app.balancer, 'replaced', (dead) => dead === victim, 10_000)
  const res = await call(`${app.url}/home`, 'GET', undefined, { 'x-key': key })
  t.equal(res.status, 200, 'the request was retried on the next replica')
  t.not(servedBy(res.body), victim)
  await suspected
  t.notOk(app.balancer.ring.has(victim), 'out of the ring')
  const [, fresh] = await replaced
  const rep = await call(`${app.url}/rep`)
  const { N, replicas } = (rep.json as { message: { N: number; replicas: string[] } }).message
  t.equal(N, 3, 'N is back to 3')
  t.notOk(replicas.includes(victim), 'the dead name is gone')
  t.ok(replicas.includes(fresh), `the replacement ${fresh} is listed`)
  t.match(fresh, /^replica-[0-9a-f]{6}$/, 'with a new random hostname')
  const again = await call(`${app.url}/home`, 'GET', undefined, { 'x-key': key })
  t.equal(again.status, 200)
})

t.test('a suspect the checker finds healthy goes back into the ring; the last replica in the ring is never ejected', async (t) => {
  // Fast probes (every 500 ms) come only after a suspicion; the regular ones are far apart.
  const config = loadConfig(['--quiet', '--replicas', '3', '--health-interval', '2000', '--health-timeout', '500'])
  const balancer = new Balancer(config, provider(t, ProcessProvider))
  const health = await attachHealth(balancer, config.health, { info: () => {}, error: (l) => t.fail(l) })
  t.teardown(async () => {
    await health.close()
    await balancer.close()
  })
  await balancer.start()
  const [a, b, c] = balancer.upstreams() as [Upstream, Upstream, Upstream]
  const reset = Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' })

  const restored = nextEvent(balancer, 'restored', (u: Upstream) => u === a, 5000)
  health.onUpstreamFailure(a, reset)
  t.equal(balancer.stateOf(a), 'suspect')
  t.notOk(balancer.ring.has(a.name), 'out of the ring at once')
  t.same(balancer.membership().replicas, ['Server 1', 'Server 2', 'Server 3'], 'still a member')
  await restored
  t.equal(balancer.stateOf(a), 'up')
  t.ok(balancer.ring.has(a.name), 'back in the ring after rise good probes')

  health.onUpstreamFailure(b, reset)
  health.onUpstreamFailure(c, reset)
  health.onUpstreamFailure(a, reset)
  t.equal(balancer.ring.size, 1, 'two suspects out, the last one kept')
  await waitFor('both suspects to be restored', () => balancer.ring.size === 3, 5000)
})

t.test('a frozen replica is found dead by the checker: idempotent requests in flight are retried, sent bodies are not replayed', async (t) => {
  // A long stop timeout: the frozen process will not die (and reset its connections) soon.
  const p = provider(t, ProcessProvider, { stopTimeoutMs: 10_000 })
  const app = await startTestApp(t, ['--key', 'header:x-key', '--health-interval', '100', '--health-timeout', '300', '--health-fall', '3'], { provider: p })
  const victim = 'Server 3'
  const key = keyFor(app, victim)
  const agent = new Agent({ keepAlive: true })
  t.teardown(() => agent.destroy())
  // Warm a kept-alive connection from the balancer to the victim.
  t.equal((await call(`${app.url}/home`, 'GET', undefined, { 'x-key': key })).status, 200)

  const replaced = nextEvent<[string, string]>(app.balancer, 'replaced', (dead) => dead === victim, 10_000)
  const dead = nextEvent(app.balancer, 'dead', (u: Upstream) => u.name === victim, 10_000).then(() => Date.now())
  freeze(t, p.pidOf(victim)!)
  const answered = (req: Promise<Reply>): Promise<Reply & { at: number }> => req.then((r) => ({ ...r, at: Date.now() }))
  const [get, del, post, put] = await Promise.all([
    answered(call(`${app.url}/home`, 'GET', undefined, { 'x-key': key })),
    answered(call(`${app.url}/home`, 'DELETE', undefined, { 'x-key': key })),
    answered(call(`${app.url}/home`, 'POST', '{"a":1}', { 'x-key': key, 'content-type': 'application/json' })),
    answered(call(`${app.url}/home`, 'PUT', '{"a":1}', { 'x-key': key, 'content-type': 'application/json' })),
  ])
  const deadAt = await dead
  t.equal(get.status, 200, 'the GET stuck on the frozen replica was answered by another')
  for (const r of [get, del, post, put]) t.ok(r.at - deadAt < 1000, `answered ${r.at - deadAt} ms after the replica was found dead`)
  t.not(servedBy(get.body), victim)
  // DELETE has no body: idempotent, retried; a live replica answers 405 (/home is GET/HEAD).
  t.equal(del.status, 405, 'the DELETE was retried on a live replica')
  for (const [method, res] of [['POST', post], ['PUT', put]] as const) {
    t.equal(res.status, 502, `${method} with a body already sent is not replayed: 502`)
    t.match(res.json, { status: 'failure', message: /^<Error> Server replica 'Server 3' could not be reached/ })
  }
  const [, fresh] = await replaced
  t.same((await call(`${app.url}/rep`)).json, { message: { N: 3, replicas: ['Server 1', 'Server 2', fresh] }, status: 'successful' })
})

t.test('a replacement that fails to start is tried again until one starts', async (t) => {
  let failures = 2
  class FailingTwice extends ProcessProvider {
    override async start(name: string) {
      if (name.startsWith('replica-') && failures > 0) {
        failures--
        throw new Error('no room for a new replica right now')
      }
      return super.start(name)
    }
  }
  const p = provider(t, FailingTwice as typeof ProcessProvider)
  const app = await startTestApp(t, [], { provider: p })
  const errors: string[] = []
  app.balancer.on('error', (err) => errors.push(err.message))
  const replaced = nextEvent<[string, string]>(app.balancer, 'replaced', (dead) => dead === 'Server 1', 15_000)
  signal(p.pidOf('Server 1')!, 'SIGKILL')
  const [, fresh] = await replaced
  t.equal(errors.length, 2, 'two failed attempts were reported')
  t.match(errors[0], /^replacement for Server 1 failed \(attempt 1\); trying again in 500 ms: /)
  t.match(errors[1], /\(attempt 2\); trying again in 1000 ms/)
  t.same(app.balancer.membership(), { N: 3, replicas: ['Server 2', 'Server 3', fresh] }, 'N is back after the third attempt')
})

t.test('/rm drains: no new requests to the leaving replica, the one in flight finishes, then it stops', async (t) => {
  const p = provider(t, ProcessProvider, { entry: slowReplica })
  const app = await startTestApp(t, ['--key', 'header:x-key', '--drain-timeout', '10000'], { provider: p })
  const victim = 'Server 1'
  const key = keyFor(app, victim)
  const pid = p.pidOf(victim)!
  const slow = call(`${app.url}/slow?ms=1500`, 'GET', undefined, { 'x-key': key })
  await waitFor('the slow request to be in flight', () => app.balancer.get(victim)!.inflight === 1)
  const rmStarted = Date.now()
  const rm = call(`${app.url}/rm`, 'DELETE', JSON.stringify({ n: 1, hostnames: [victim] }), { 'content-type': 'application/json' })
  await waitFor('the replica to leave the ring', () => !app.balancer.ring.has(victim))
  const during = await call(`${app.url}/home`, 'GET', undefined, { 'x-key': key })
  t.equal(during.status, 200)
  t.not(servedBy(during.body), victim, 'a new request with its key goes elsewhere while it drains')
  t.ok(alive(pid), 'still running while a request is in flight')
  const done = await slow
  t.equal(done.status, 200, 'the in-flight request finished')
  t.equal(servedBy(done.body), victim, 'on the leaving replica')
  const rmRes = await rm
  t.equal(rmRes.status, 200)
  t.ok(Date.now() - rmStarted >= 1000, '/rm answered after the drain')
  t.same((rmRes.json as { message: { replicas: string[] } }).message.replicas, ['Server 2', 'Server 3'])
  await waitFor('the drained replica to exit', () => !alive(pid), 5000)
})

t.test('the drain is bounded by --drain-timeout', async (t) => {
  const p = provider(t, ProcessProvider, { entry: slowReplica })
  const app = await startTestApp(t, ['--key', 'header:x-key', '--drain-timeout', '300'], { provider: p })
  const victim = 'Server 1'
  const key = keyFor(app, victim)
  const slow = call(`${app.url}/slow?ms=60000`, 'GET', undefined, { 'x-key': key }).catch((err: Error) => err)
  await waitFor('the slow request to be in flight', () => app.balancer.get(victim)!.inflight === 1)
  const started = Date.now()
  const rm = await call(`${app.url}/rm`, 'DELETE', JSON.stringify({ n: 1, hostnames: [victim] }), { 'content-type': 'application/json' })
  const took = Date.now() - started
  t.equal(rm.status, 200)
  t.ok(took >= 300 && took < 3000, `/rm returned after ${took} ms, not after the 60 s request`)
  // The cut request is idempotent: it was retried on another replica (and is still slow there).
  await waitFor('the cut request to move to another replica', () => app.balancer.upstreams().some((u) => u.inflight === 1), 5000)
  void slow
})

t.test('closing the balancer drains every replica before stopping it', async (t) => {
  const p = provider(t, ProcessProvider, { entry: slowReplica })
  const app = await startTestApp(t, ['--key', 'header:x-key', '--drain-timeout', '10000'], { provider: p })
  const pids = app.balancer.upstreams().map((u) => p.pidOf(u.name)!)
  const slow = call(`${app.url}/slow?ms=800`, 'GET', undefined, { 'x-key': keyFor(app, 'Server 2') })
  await waitFor('the slow request to be in flight', () => app.balancer.get('Server 2')!.inflight === 1)
  const closed = app.close()
  const res = await slow
  t.equal(res.status, 200, 'the in-flight request finished during shutdown')
  await closed
  t.ok(pids.every((pid) => !alive(pid)), 'every replica stopped')
})
