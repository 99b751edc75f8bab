// Membership, below the HTTP layer: start-up names, adoption of replicas a provider already
// runs, the order of changes, and shutdown. Real replica processes throughout.
import t from 'tap'
import { Balancer } from '../../src/membership/balancer.js'
import { loadConfig } from '../../src/config.js'
import { ProcessProvider } from '../../src/replicas/process.js'
import type { ReplicaChange, ReplicaHandle } from '../../src/replicas/provider.js'
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

/** A process provider that reports changes made elsewhere, as the Swarm provider does (a follower when `writer` is set). */
class ChangingProvider extends ProcessProvider {
  private listeners: Array<(change: ReplicaChange) => void> = []
  readonly stopped: string[] = []
  readonly follows?: () => string
  constructor(
    private readonly existing: string[] = [],
    writer?: string,
  ) {
    super({ startTimeoutMs: 10_000 })
    if (writer) this.follows = () => writer
  }

  override async init(): Promise<ReplicaHandle[]> {
    await super.init()
    const handles: ReplicaHandle[] = []
    for (const name of this.existing) handles.push({ ...(await super.start(name)), weight: name === 'heavy' ? 3 : 1 })
    return handles
  }

  override async stop(name: string): Promise<void> {
    this.stopped.push(name)
    return super.stop(name)
  }

  onChange(listener: (change: ReplicaChange) => void): void {
    this.listeners.push(listener)
  }

  tell(change: ReplicaChange): void {
    for (const listener of this.listeners) listener(change)
  }
}

t.test('a follower takes its members from its provider and changes none itself', async (t) => {
  const provider = new ChangingProvider(['a', 'heavy', 'c'], 'writer-1')
  const b = new Balancer(loadConfig(['--replicas', '1', '--quiet']), provider)
  t.teardown(() => b.close())
  t.same(await b.start(), { N: 3, replicas: ['a', 'heavy', 'c'] }, 'all adopted, none started, whatever --replicas says')
  t.equal(b.weightOf('heavy'), 3, 'with the weight its provider recorded')
  t.equal(b.writer, 'writer-1')
  await t.rejects(b.add(1), { code: 'NOT_THE_WRITER', status: 409, message: "This balancer follows 'writer-1' (--swarm-follow) and does not change membership: send /add and /rm to it" })
  await t.rejects(b.remove(1, ['a']), { code: 'NOT_THE_WRITER' })
  t.same(b.membership().replicas, ['a', 'heavy', 'c'])

  // The writer added one (here: a replica process started by hand) and removed one.
  const extra = await new ProcessProvider({ startTimeoutMs: 10_000 }).start('d')
  t.teardown(() => process.kill(Number(extra.id)))
  provider.tell({ kind: 'appeared', handle: { ...extra, weight: 2 } })
  provider.tell({ kind: 'gone', name: 'a' })
  provider.tell({ kind: 'appeared', handle: extra }) // twice: no change
  await b.remove(0).catch(() => undefined) // refused, but only after the queued changes ran
  t.same(b.membership().replicas, ['heavy', 'c', 'd'])
  t.equal(b.weightOf('d'), 2)
  t.same(provider.stopped, [], 'a replica the writer removed is not stopped here')

  const before = b.tableDigest()
  t.equal(await b.replace('c'), undefined, 'a dead replica is not replaced by a follower')
  t.same(b.membership().replicas, ['heavy', 'd'])
  t.same(provider.stopped, ['c'], 'only forgotten by its provider (which may offer it again)')
  t.not(b.tableDigest(), before)
})

t.test('a replica that moved keeps its name, place and slots at its new address', async (t) => {
  const provider = new ChangingProvider()
  const b = new Balancer(loadConfig(['--replicas', '3', '--quiet']), provider)
  t.teardown(() => b.close())
  await b.start()
  const digest = b.tableDigest()
  const old = b.get('Server 2')!
  const elsewhere = await new ProcessProvider({ startTimeoutMs: 10_000 }).start('Server 2 (moved)')
  t.teardown(() => process.kill(Number(elsewhere.id)))
  const events: string[] = []
  b.on('left', (name, reason) => events.push(`left ${name} ${reason}`))
  b.on('joined', (u) => events.push(`joined ${u.name} ${u.port}`))
  provider.tell({ kind: 'moved', handle: { ...elsewhere, name: 'Server 2' } })
  await b.remove(0).catch(() => undefined)
  const fresh = b.get('Server 2')!
  t.not(fresh, old)
  t.equal(fresh.port, elsewhere.port, 'the new address')
  t.same(b.membership().replicas, ['Server 1', 'Server 2', 'Server 3'], 'same place in join order')
  t.equal(b.tableDigest(), digest, 'the routing table did not change')
  t.equal(b.ring.get('Server 2'), fresh, 'the ring routes to the new address')
  t.same(events, ['left Server 2 moved', `joined Server 2 ${elsewhere.port}`])
})
