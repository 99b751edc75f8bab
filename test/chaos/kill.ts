/**
 * Chaos: under steady concurrent load, SIGKILL a replica, then another (its replacement).
 * No GET may fail, N must come back to 3 with new random names, and the replacements must
 * serve traffic. Prints detection time and time-to-replacement. Bounded: at most 30,000
 * requests and about 30 s.
 */
import t from 'tap'
import type { Upstream } from '../../src/upstream/upstream.js'
import type { ProcessProvider } from '../../src/replicas/process.js'
import { startTestApp, startTestCluster } from '../fixtures/app.js'
import { call } from '../fixtures/http.js'
import { nextEvent, signal, startLoad } from '../fixtures/health.js'

// Also with --workers 2: two worker processes carry the load; passive detection in either one
// and the primary's checker must keep every GET whole just the same.
for (const workers of [1, 2]) {
  t.test(`SIGKILL a replica, then another, under load: zero failed GETs, N restored${workers > 1 ? ` (--workers ${workers})` : ''}`, async (t) => {
    // Default health settings: what users get.
    const app = workers > 1 ? await startTestCluster(t, ['--replicas', '3']) : await startTestApp(t, ['--replicas', '3'])
    const provider = app.balancer.provider as ProcessProvider
    const load = startLoad(t, app.url, { concurrency: 16, maxRequests: 30_000, maxMs: 40_000 })
    await load.more(300)

    const kill = async (victim: string): Promise<string> => {
      const pid = provider.pidOf(victim)!
      // Whichever sees it first: the proxy (refused/reset -> suspect) or the process exit.
      const out = Promise.race([
        nextEvent(app.balancer, 'suspect', (u: Upstream) => u.name === victim, 10_000),
        nextEvent(app.balancer, 'dead', (u: Upstream) => u.name === victim, 10_000),
      ]).then(() => Date.now())
      const replaced = nextEvent<[string, string]>(app.balancer, 'replaced', (dead) => dead === victim, 20_000)
      const killedAt = Date.now()
      signal(pid, 'SIGKILL')
      const detectedAt = await out
      const [, fresh] = await replaced
      const replacedAt = Date.now()
      t.comment(`killed ${victim} (pid ${pid}): out of the ring after ${detectedAt - killedAt} ms, replaced by ${fresh} after ${replacedAt - killedAt} ms`)
      t.notOk(app.balancer.ring.has(victim), `${victim} is out of the ring`)
      // Let the new replica take its share of the load before the next kill.
      await load.more(300)
      return fresh
    }

    const first = await kill('Server 2')
    const second = await kill(first)
    const stats = await load.stop()

    t.comment(`${stats.sent} requests, ${stats.ok} ok, slowest ${stats.maxLatencyMs} ms, served by ${JSON.stringify(Object.fromEntries(stats.servedBy))}`)
    t.same(stats.failures.slice(0, 10), [], 'no failed GET')
    t.equal(stats.failures.length, 0)
    t.equal(stats.ok, stats.sent, 'every request answered 200')
    const rep = (await call(`${app.url}/rep`)).json as { message: { N: number; replicas: string[] } }
    t.equal(rep.message.N, 3, 'N is back to 3')
    t.same(rep.message.replicas, ['Server 1', 'Server 3', second], 'both dead names gone, the replacement listed')
    t.equal(app.balancer.ring.size, 3, 'all three in the ring')
    t.ok((stats.servedBy.get(first) ?? 0) > 0, `the first replacement ${first} served requests`)
    t.ok((stats.servedBy.get(second) ?? 0) > 0, `the second replacement ${second} served requests`)
  })
}
