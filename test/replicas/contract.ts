// The replica provider contract (src/replicas/provider.ts), one suite run over every provider,
// as hono's runTest({ newRouter }) runs one router suite over every router: the process
// provider (child processes) and the Docker provider (containers on a real engine, host
// networking). What each provider does beyond the contract has its own file (process.ts,
// docker.ts). Without a Docker engine or the replica image the Docker half skips with the
// reason, unless REQUIRE_DOCKER=1 (CI), where that is a failure.
import t from 'tap'
import Docker from 'dockerode'
import { setTimeout as sleep } from 'node:timers/promises'
import type { ReplicaHandle, ReplicaProvider } from '../../src/replicas/provider.js'
import { ProcessProvider } from '../../src/replicas/process.js'
import { DockerProvider, LABELS } from '../../src/replicas/docker.js'
import { call, waitFor } from '../fixtures/http.js'
import { fromDeadRun } from '../fixtures/runs.js'
import { engineUnavailable, runsHere } from '../fixtures/engine.js'

/** How to make a provider for one case, and how to kill one of its replicas behind its back. */
interface ProviderKit {
  newProvider(): ReplicaProvider
  /** End the replica abruptly, as a crash would (SIGKILL, `docker kill`). */
  kill(provider: ReplicaProvider, handle: ReplicaHandle): Promise<void>
}

/** Does anything answer the replica's heartbeat? */
async function answers(h: ReplicaHandle): Promise<boolean> {
  try {
    return (await call(`http://${h.host}:${h.port}/heartbeat`)).status === 200
  } catch {
    return false
  }
}

function providerContract(name: string, kit: ProviderKit): void {
  t.test(name, async (t) => {
    t.test('start resolves once the heartbeat answers, list shows it, stop ends it', async (t) => {
      const p = kit.newProvider()
      t.teardown(() => p.close())
      t.same(await p.init(), [], 'nothing to adopt')
      const h = await p.start('Server 1')
      t.equal(h.name, 'Server 1')
      t.equal(h.host, '127.0.0.1')
      t.ok(h.port > 0)
      t.ok(await answers(h), 'the heartbeat answers 200 when start resolves')
      t.same((await call(`http://${h.host}:${h.port}/home`)).json, { message: 'Hello from Server: Server 1', status: 'successful' })
      t.same(p.list().map((x) => x.name), ['Server 1'])
      await t.rejects(p.start('Server 1'), 'a second start of a running name is refused')
      t.same(p.list().map((x) => x.name), ['Server 1'], 'and changes nothing')
      await p.stop('Server 1')
      t.same(p.list(), [])
      t.notOk(await answers(h), 'nothing answers once stop resolves')
      await p.stop('Server 1')
      t.pass('stopping an unknown name is a no-op')
    })

    t.test('a replica that ends on its own is reported once; one stopped on purpose is not', async (t) => {
      const p = kit.newProvider()
      t.teardown(() => p.close())
      await p.init()
      const exits: string[] = []
      p.onExit((n) => exits.push(n))
      const [a] = await Promise.all([p.start('a'), p.start('b')])
      await kit.kill(p, a)
      await waitFor('the exit notice for a', () => exits.length === 1, 30_000)
      t.same(exits, ['a'])
      await p.stop('b')
      await sleep(200)
      t.same(exits, ['a'], 'no notice for a deliberate stop')
    })

    t.test('close stops every replica', async (t) => {
      const p = kit.newProvider()
      await p.init()
      const handles = await Promise.all(['a', 'b'].map((n) => p.start(n)))
      for (const h of handles) t.ok(await answers(h), `${h.name} answers`)
      await p.close()
      for (const h of handles) t.notOk(await answers(h), `${h.name} is gone`)
    })
  })
}

providerContract('process provider', {
  newProvider: () => new ProcessProvider({ startTimeoutMs: 10_000 }),
  kill: async (p, h) => {
    process.kill((p as ProcessProvider).pidOf(h.name)!, 'SIGKILL')
  },
})

const IMAGE = process.env.REPLICA_IMAGE ?? 'ring-balancer-replica:latest'
const docker = new Docker()
/** Owners are `rbcontract-<pid>-<n>`: leftovers of a crashed run are found by the pid. */
const owners: string[] = []

async function removeOwned(match: (owner: string | undefined) => boolean): Promise<void> {
  const all = await docker.listContainers({ all: true, filters: JSON.stringify({ label: [LABELS.owner] }) })
  await Promise.all(all.filter((c) => match(c.Labels[LABELS.owner])).map((c) => docker.getContainer(c.Id).remove({ force: true, v: true }).catch(() => undefined)))
}

const reason = await engineUnavailable(docker, IMAGE)
if (reason !== undefined) {
  t.test('docker provider', (t) => void runsHere(t, reason))
} else {
  await removeOwned((owner) => fromDeadRun('rbcontract', owner))
  // Every container this file made, by its owner label, even when a case failed or threw.
  t.teardown(() => removeOwned((owner) => owner !== undefined && owners.includes(owner)))
  providerContract('docker provider', {
    newProvider: () => {
      const owner = `rbcontract-${process.pid}-${owners.length + 1}`
      owners.push(owner)
      return new DockerProvider({ image: IMAGE, network: 'host', owner, startTimeoutMs: 30_000, docker })
    },
    kill: async (_p, h) => {
      await docker.getContainer(h.id).kill()
    },
  })
}
