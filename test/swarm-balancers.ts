// Two balancers in front of the same Swarm replicas (a real single-node swarm, initialised here
// when the engine is not in swarm mode and left again only if this run initialised it): the
// writer (`--provider swarm`) and a follower (`--swarm-follow`). /add, /rm and a killed task
// replaced with a new name on the writer; the follower refuses membership changes, follows
// each of them, and the two agree on the routing-table digest and on where 10,000 keys go:
// the owner each ring picks for every key, and real requests for every 10th key through both
// balancers, whose answers name the replica. All traffic goes to 127.0.0.1 (the tasks
// publish their port in host mode). Skips with a reason without an engine or the replica
// image, unless REQUIRE_DOCKER=1 (CI).
import t from 'tap'
import Docker from 'dockerode'
import { Agent } from 'node:http'
import type { App } from '../src/app.js'
import { SwarmProvider, type SwarmTask } from '../src/replicas/swarm.js'
import { requestIdOf } from '../src/route/keys.js'
import { startTestApp } from './fixtures/app.js'
import { call, waitFor } from './fixtures/http.js'
import { withSwarm } from './fixtures/swarm.js'

const IMAGE = process.env.REPLICA_IMAGE ?? 'ring-balancer-replica:latest'
const docker = new Docker()
/** `rbswarmlb-<pid>-...`: leftovers of a crashed run are found by the pid. */
const OWNER = `rbswarmlb-${process.pid}-1`
const NETWORK = `rbswarmlb-${process.pid}-net`
const KEYS = 10_000
/** Real requests for every SAMPLE-th key (the rest are compared on the two rings' picks). */
const SAMPLE = 10

function flags(...extra: string[]): string[] {
  return ['--provider', 'swarm', '--network', NETWORK, '--owner', OWNER, '--image', IMAGE, '--swarm-reach', 'host', '--key', 'header:x-key', '--start-timeout', '60000', '--drain-timeout', '1000', ...extra]
}

function members(app: App): string[] {
  return app.balancer.membership().replicas.slice().sort()
}

/** The follower has the writer's members and the same routing table. */
async function agreeing(writer: App, follower: App, what: string): Promise<void> {
  await waitFor(`the follower to agree (${what})`, () => members(follower).join() === members(writer).join() && follower.balancer.tableDigest() === writer.balancer.tableDigest(), 60_000, 50)
}

/** The replica `app`'s ring picks first for each key 0..KEYS-1 (`x-key: user-<k>`). */
function owners(app: App): string[] {
  return Array.from({ length: KEYS }, (_, k) => app.balancer.ring.pick(requestIdOf(`user-${k}`, app.config.slots))?.name ?? '')
}

/** Who answers every SAMPLE-th key through `app`, from the replicas' own answers (index: key / SAMPLE). */
async function answers(app: App): Promise<string[]> {
  const agent = new Agent({ keepAlive: true, maxSockets: 16 })
  const who = new Array<string>(KEYS / SAMPLE)
  let next = 0
  await Promise.all(
    Array.from({ length: 16 }, async () => {
      while (next < who.length) {
        const index = next++
        const key = index * SAMPLE
        const reply = await call(`${app.url}/home`, 'GET', undefined, { 'x-key': `user-${key}` }, agent)
        who[index] = reply.status === 200 ? /Hello from Server: (.+)$/.exec((reply.json as { message: string }).message)?.[1] ?? reply.body : `HTTP ${reply.status}`
      }
    }),
  )
  agent.destroy()
  return who
}

if (await withSwarm(t, docker, { image: IMAGE, prefix: 'rbswarmlb', owner: OWNER, network: NETWORK })) {

  const writerLog: string[] = []
  const followerLog: string[] = []
  const writer = await startTestApp(t, flags('--replicas', '2'), { log: (line) => writerLog.push(line) })
  const follower = await startTestApp(t, flags('--swarm-follow'), { log: (line) => followerLog.push(line) })
  const lastDigest = (log: string[]): string | undefined => log.filter((l) => l.startsWith('routing table ')).at(-1)?.split(' ')[2]

  t.test('the follower starts with the writer’s replicas and the same table', async (t) => {
    t.same(members(writer), ['Server 1', 'Server 2'])
    await agreeing(writer, follower, 'at start')
    t.same(members(follower), ['Server 1', 'Server 2'])
    t.match(writer.balancer.tableDigest(), /^[0-9a-f]{16}$/)
    await waitFor('both to log the digest', () => lastDigest(writerLog) === writer.balancer.tableDigest() && lastDigest(followerLog) === follower.balancer.tableDigest(), 5000)
    t.equal(lastDigest(followerLog), lastDigest(writerLog), 'both logged the same digest')
  })

  t.test('the follower refuses /add and /rm, naming the writer, and changes nothing', async (t) => {
    const add = await call(`${follower.url}/add`, 'POST', JSON.stringify({ n: 1 }))
    t.equal(add.status, 409)
    t.match(add.json, { status: 'failure', message: /^<Error> This balancer follows '.+' \(--swarm-follow\) and does not change membership: send \/add and \/rm to it$/ })
    const rm = await call(`${follower.url}/rm`, 'DELETE', JSON.stringify({ n: 1 }))
    t.equal(rm.status, 409)
    t.same(members(follower), ['Server 1', 'Server 2'])
    t.equal((await docker.listServices({ filters: JSON.stringify({ label: [`ring-balancer.owner=${OWNER}`] }) })).length, 2, 'no service made or removed')
  })

  t.test('/add and /rm on the writer; the follower follows', async (t) => {
    const add = await call(`${writer.url}/add`, 'POST', JSON.stringify({ n: 1, hostnames: ['S3'], weights: [2] }))
    t.equal(add.status, 200, add.body)
    t.same(add.json, { message: { N: 3, replicas: ['Server 1', 'Server 2', 'S3'] }, status: 'successful' })
    await agreeing(writer, follower, 'after /add')
    t.equal(follower.balancer.weightOf('S3'), 2, "the follower uses the writer's weight")
    const rm = await call(`${writer.url}/rm`, 'DELETE', JSON.stringify({ n: 1, hostnames: ['Server 1'] }))
    t.same(rm.json, { message: { N: 2, replicas: ['Server 2', 'S3'] }, status: 'successful' })
    await agreeing(writer, follower, 'after /rm')
    t.same(members(follower), ['S3', 'Server 2'])
  })

  t.test('a killed task is replaced by the writer with a new name; the follower follows', async (t) => {
    const provider = writer.balancer.provider as SwarmProvider
    const [task] = (await docker.listTasks({ filters: JSON.stringify({ service: [provider.serviceOf('Server 2')!] }) })) as SwarmTask[]
    await docker.getContainer(task!.Status!.ContainerStatus!.ContainerID!).kill()
    await waitFor('the writer to replace Server 2', () => !members(writer).includes('Server 2') && writer.balancer.membership().N === 2, 60_000, 50)
    const fresh = members(writer).find((name) => name !== 'S3')!
    t.match(fresh, /^replica-[0-9a-f]{6}$/, 'a new random name')
    await agreeing(writer, follower, 'after the replacement')
    t.same(members(follower), members(writer))
  })

  t.test(`both send each of ${KEYS} keys to the same replica`, async (t) => {
    t.equal(follower.balancer.tableDigest(), writer.balancer.tableDigest())
    const picked = owners(writer)
    const differ = owners(follower).filter((who, key) => who !== picked[key]).length
    t.equal(differ, 0, `no key picked differently (of ${KEYS})`)
    t.same([...new Set(picked)].sort(), members(writer), 'every member owns keys')
    const [a, b] = await Promise.all([answers(writer), answers(follower)])
    t.equal(a.filter((who, i) => who !== b[i]).length, 0, `no key answered by different replicas (${a.length} keys, real requests through both)`)
    t.equal(a.filter((who, i) => who !== picked[i * SAMPLE]).length, 0, 'each answered by the replica the rings picked (no error, no failover)')
  })
}
