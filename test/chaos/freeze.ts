/**
 * Chaos: under steady concurrent load, freeze a replica with SIGSTOP. It still accepts TCP
 * connections (the kernel does that) but never answers, so neither the proxy nor the process
 * exit can tell: only the health checker can. Requests stuck on it wait until the checker
 * finds it dead, then go to the next replica. No GET may fail; N comes back to 3. Prints
 * detection time and time-to-replacement. Bounded: at most 30,000 requests and about 30 s.
 */
import t from 'tap'
import type { Upstream } from '../../src/upstream/upstream.js'
import type { ProcessProvider } from '../../src/replicas/process.js'
import { startTestApp, startTestCluster } from '../fixtures/app.js'
import { call } from '../fixtures/http.js'
import { freeze, nextEvent, startLoad } from '../fixtures/health.js'

// Also with --workers 2: two worker processes carry the load; passive detection in either one
// and the primary's checker must keep every GET whole just the same.
for (const workers of [1, 2]) {
  t.test(`SIGSTOP a replica under load: the checker finds it, zero failed GETs, N restored${workers > 1 ? ` (--workers ${workers})` : ''}`, async (t) => {
    // Default health settings: what users get.
    const app = workers > 1 ? await startTestCluster(t, ['--replicas', '3']) : await startTestApp(t, ['--replicas', '3'])
    const { intervalMs, timeoutMs, fall } = app.config.health
    const provider = app.balancer.provider as ProcessProvider
    const load = startLoad(t, app.url, { concurrency: 16, maxRequests: 30_000, maxMs: 40_000 })
    await load.more(300)

    const victim = 'Server 1'
    const suspects: string[] = []
    app.balancer.on('suspect', (u) => suspects.push(u.name))
    const dead = nextEvent(app.balancer, 'dead', (u: Upstream) => u.name === victim, 20_000)
    const replaced = nextEvent<[string, string]>(app.balancer, 'replaced', (d) => d === victim, 30_000)
    const frozenAt = Date.now()
    freeze(t, provider.pidOf(victim)!)
    await dead
    const detectedAt = Date.now()
    const [, fresh] = await replaced
    const replacedAt = Date.now()
    t.comment(`froze ${victim}: found dead after ${detectedAt - frozenAt} ms (interval ${intervalMs}, timeout ${timeoutMs}, fall ${fall}), replaced by ${fresh} after ${replacedAt - frozenAt} ms`)
    t.same(suspects, [], 'a frozen replica refuses nothing: no passive suspicion, the checker found it')
    t.ok(detectedAt - frozenAt >= timeoutMs, 'found by timed-out probes')
    await load.more(300)
    const stats = await load.stop()

    t.comment(`${stats.sent} requests, ${stats.ok} ok, slowest ${stats.maxLatencyMs} ms, served by ${JSON.stringify(Object.fromEntries(stats.servedBy))}`)
    t.same(stats.failures.slice(0, 10), [], 'no failed GET')
    t.equal(stats.failures.length, 0)
    // Requests stuck on the frozen replica are moved the moment it is found dead, not when its
    // process finally dies (the provider's stop gives it 3 s after SIGTERM before SIGKILL).
    t.ok(stats.maxLatencyMs < detectedAt - frozenAt + 1500, `slowest request ${stats.maxLatencyMs} ms: stuck ones moved as soon as it was found dead`)
    const rep = (await call(`${app.url}/rep`)).json as { message: { N: number; replicas: string[] } }
    t.same(rep.message, { N: 3, replicas: ['Server 2', 'Server 3', fresh] }, 'N is back to 3 without the frozen replica')
    t.ok((stats.servedBy.get(fresh) ?? 0) > 0, `the replacement ${fresh} served requests`)
  })
}
