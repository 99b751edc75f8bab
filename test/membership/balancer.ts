// Membership, below the HTTP layer: start-up names, adoption of replicas a provider already
// runs, the order of changes, and shutdown. Real replica processes throughout.
import t from 'tap'
import { Balancer } from '../../src/membership/balancer.js'
import { loadConfig } from '../../src/config.js'
import { ProcessProvider } from '../../src/replicas/process.js'
import type { ReplicaHandle } from '../../src/replicas/provider.js'
import { alive } from '../fixtures/http.js'

/** A process provider that, like the Docker provider after a restart, finds replicas already running. */
class AdoptingProvider extends ProcessProvider {
  constructor(private readonly existing: string[]) {
    super({ startTimeoutMs: 10_000 })
  }

  override async init(): Promise<ReplicaHandle[]> {
    await super.init()
    const handles: ReplicaHandle[] = []
    for (const name of this.existing) handles.push(await this.start(name))
    return handles
  }
}

t.test('start names replicas Server 1..N, skipping names given by --names', async (t) => {
  const config = loadConfig(['--replicas', '4', '--names', 'Server 2,alpha', '--quiet'])
  const b = new Balancer(config, new ProcessProvider({ startTimeoutMs: 10_000 }))
  t.teardown(() => b.close())
  t.same(await b.start(), { N: 4, replicas: ['Server 2', 'alpha', 'Server 1', 'Server 3'] })
  t.equal(b.ring.size, 4)
  t.same(b.ring.names().slice().sort(), ['Server 1', 'Server 2', 'Server 3', 'alpha'])
})

t.test('start adopts what the provider already runs, stops extras, and fills up to N', async (t) => {
  const few = new AdoptingProvider(['Server 2'])
  const b = new Balancer(loadConfig(['--quiet']), few)
  t.teardown(() => b.close())
  t.same(await b.start(), { N: 3, replicas: ['Server 2', 'Server 1', 'Server 3'] }, 'adopted first, then the missing names')

  const many = new AdoptingProvider(['x1', 'x2', 'x3', 'x4'])
  const c = new Balancer(loadConfig(['--quiet']), many)
  t.teardown(() => c.close())
  t.same(await c.start(), { N: 3, replicas: ['x1', 'x2', 'x3'] })
  t.same(many.list().map((h) => h.name).sort(), ['x1', 'x2', 'x3'], 'the extra adopted replica was stopped')
})

t.test('changes apply in arrival order; a failed one does not block the next', async (t) => {
  const provider = new ProcessProvider({ startTimeoutMs: 10_000 })
  const b = new Balancer(loadConfig(['--replicas', '1', '--quiet']), provider)
  t.teardown(() => b.close())
  await b.start()
  const results = await Promise.allSettled([b.add(1, ['a']), b.add(1, ['a']), b.remove(1, ['Server 1']), b.add(2, ['b', 'c'])])
  t.equal(results[0].status, 'fulfilled')
  t.match(results[1], { status: 'rejected', reason: { code: 'HOSTNAME_IN_USE' } }, 'the second sees the first')
  t.same(results[2], { status: 'fulfilled', value: { N: 1, replicas: ['a'] } })
  t.same(results[3], { status: 'fulfilled', value: { N: 3, replicas: ['a', 'b', 'c'] } })
})

t.test('close stops every replica and refuses later changes', async (t) => {
  const provider = new ProcessProvider({ startTimeoutMs: 10_000 })
  const b = new Balancer(loadConfig(['--quiet']), provider)
  await b.start()
  const pids = b.membership().replicas.map((n) => provider.pidOf(n)!)
  await b.close()
  t.notOk(pids.some(alive))
  t.same(b.membership(), { N: 0, replicas: [] })
  t.equal(b.ring.size, 0)
  await t.rejects(b.add(1), { code: 'SHUTTING_DOWN', status: 503 })
})

t.test('close drains every replica, then leaves stopping to provider.close (which may keep them)', async (t) => {
  /** Like the Docker provider with keep: close() leaves the replicas running. */
  class KeepingProvider extends ProcessProvider {
    readonly calls: string[] = []
    override async stop(name: string): Promise<void> {
      this.calls.push(`stop ${name}`)
      return super.stop(name)
    }
    override async close(): Promise<void> {
      this.calls.push('close')
    }
    stopAll(): Promise<void> {
      return super.close()
    }
  }
  const provider = new KeepingProvider({ startTimeoutMs: 10_000 })
  t.teardown(() => provider.stopAll())
  const b = new Balancer(loadConfig(['--quiet']), provider)
  const left: string[] = []
  b.on('left', (name, reason) => left.push(`${name} ${reason}`))
  await b.start()
  const pids = b.membership().replicas.map((n) => provider.pidOf(n)!)
  await b.close()
  t.same(provider.calls, ['close'], 'no replica stopped by the balancer itself')
  t.ok(pids.every(alive), 'a provider that keeps its replicas keeps them running')
  t.same(b.membership(), { N: 0, replicas: [] })
  t.equal(b.ring.size, 0)
  t.same(left.sort(), ['Server 1 shutdown', 'Server 2 shutdown', 'Server 3 shutdown'], "'left' still reported for each")
})
