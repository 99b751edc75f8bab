// The Docker provider against a real engine: start, stop, adopt, clean-up, errors.
// Host networking only, so every request goes to 127.0.0.1. Needs the replica image
// (scripts/docker-build-images.sh replica). Without an engine or image the file skips with
// a reason, unless REQUIRE_DOCKER=1 (CI), where that is a failure.
import t from 'tap'
import Docker from 'dockerode'
import { containerName, DockerProvider, LABELS, type DockerProviderOptions } from '../../src/replicas/docker.js'
import { startApp } from '../../src/app.js'
import { loadConfig } from '../../src/config.js'
import { fromDeadRun } from '../fixtures/runs.js'
import { engineUnavailable, runsHere } from '../fixtures/engine.js'
import { waitFor as waitUntil } from '../fixtures/http.js'

/** Containers take seconds: a longer default deadline and a slower poll than the fixture's. */
const waitFor = (what: string, check: () => boolean | Promise<boolean>, timeoutMs = 20_000): Promise<void> => waitUntil(what, check, timeoutMs, 100)
import { setTimeout as sleep } from 'node:timers/promises'

const IMAGE = process.env.REPLICA_IMAGE ?? 'ring-balancer-replica:latest'
/** Label on containers the test makes itself (not through the provider). */
const TEST_LABEL = 'ring-balancer.test-owner'
/** Test owners are `rbtest-<pid>-<n>`: leftovers of a crashed run are found by the pid. */
const OWNER_PREFIX = `rbtest-${process.pid}-`

const docker = new Docker()
const owners: string[] = []
let ownerSeq = 0

function newOwner(): string {
  const owner = `${OWNER_PREFIX}${++ownerSeq}`
  owners.push(owner)
  return owner
}

function provider(owner: string, options: Partial<DockerProviderOptions> = {}): DockerProvider {
  return new DockerProvider({ image: IMAGE, network: 'host', owner, startTimeoutMs: 30_000, docker, ...options })
}

/** Containers (any state) carrying `label=value`. */
async function labelled(label: string, value: string): Promise<Docker.ContainerInfo[]> {
  return docker.listContainers({ all: true, filters: JSON.stringify({ label: [`${label}=${value}`] }) })
}

async function removeAll(infos: Docker.ContainerInfo[]): Promise<void> {
  await Promise.all(infos.map((c) => docker.getContainer(c.Id).remove({ force: true, v: true }).catch(() => undefined)))
}

/** Remove the containers and networks earlier runs of this file left when they crashed. */
async function removeLeftovers(): Promise<void> {
  for (const label of [LABELS.owner, TEST_LABEL]) {
    const all = await docker.listContainers({ all: true, filters: JSON.stringify({ label: [label] }) })
    await removeAll(all.filter((c) => fromDeadRun('rbtest', c.Labels[label])))
  }
  const networks = await docker.listNetworks()
  await Promise.all(networks.filter((n) => fromDeadRun('rbtest', n.Name)).map((n) => docker.getNetwork(n.Id).remove().catch(() => undefined)))
}

async function exists(id: string): Promise<boolean> {
  try {
    await docker.getContainer(id).inspect()
    return true
  } catch (err) {
    if ((err as { statusCode?: number }).statusCode === 404) return false
    throw err
  }
}

async function get(url: string): Promise<{ status: number; body: string }> {
  const res = await fetch(url)
  return { status: res.status, body: await res.text() }
}

if (runsHere(t, await engineUnavailable(docker, IMAGE))) {
  // Creating a container copies the image on the vfs storage driver: seconds each, slow
  // under load. Well under tap's own kill timeout for the file.
  t.setTimeout(170_000)
  await removeLeftovers()
  // Every container this file made, by label, even when a test failed or threw.
  t.teardown(async () => {
    for (const owner of owners) {
      await removeAll(await labelled(LABELS.owner, owner))
      await removeAll(await labelled(TEST_LABEL, owner))
    }
  })

  t.test('containerName: valid, unique per exact hostname and owner', async (t) => {
    const a = containerName('o', 'Server 1')
    t.match(a, /^rb-server-1-[0-9a-f]{8}$/)
    t.not(a, containerName('o', 'server-1'), 'Server 1 and server-1 never collide')
    t.not(a, containerName('p', 'Server 1'), 'two owners never collide')
    t.equal(a, containerName('o', 'Server 1'), 'stable across runs (adoption finds it)')
    const long = containerName('o', 'x'.repeat(63))
    t.ok(long.length <= 63 && /^[a-z0-9][a-z0-9-]*[a-z0-9]$/.test(long), 'a valid DNS label')
    t.match(containerName('o', '...'), /^rb-replica-[0-9a-f]{8}$/)
  })

  t.test('start waits for the heartbeat; stop removes the container', async (t) => {
    const owner = newOwner()
    const p = provider(owner)
    t.teardown(() => p.close())
    t.same(await p.init(), [], 'nothing to adopt')
    const exits: string[] = []
    p.onExit((name) => exits.push(name))
    const [a, b] = await Promise.all([p.start('Server 1'), p.start('server-1')])
    t.equal(a.host, '127.0.0.1')
    t.ok(a.port > 0 && a.port !== b.port, 'each replica on its own loopback port')
    t.same((await get(`http://127.0.0.1:${a.port}/heartbeat`)), { status: 200, body: '' })
    t.same(JSON.parse((await get(`http://127.0.0.1:${a.port}/home`)).body), { message: 'Hello from Server: Server 1', status: 'successful' })
    t.same(JSON.parse((await get(`http://127.0.0.1:${b.port}/home`)).body).message, 'Hello from Server: server-1')

    const info = await docker.getContainer(a.id).inspect()
    t.equal(info.Name, `/${containerName(owner, 'Server 1')}`)
    t.not(info.Name, `/${containerName(owner, 'server-1')}`)
    t.match(info.Config.Labels, { [LABELS.owner]: owner, [LABELS.hostname]: 'Server 1', [LABELS.port]: String(a.port) })
    t.equal(info.HostConfig.NetworkMode, 'host')
    t.same(p.list().map((h) => h.name).sort(), ['Server 1', 'server-1'])

    await t.rejects(p.start('Server 1'), { code: 'ALREADY_RUNNING' }, 'a duplicate start is refused')
    t.equal((await labelled(LABELS.owner, owner)).length, 2, 'and made no container')

    await p.stop('Server 1')
    t.notOk(await exists(a.id), 'container gone when stop resolves')
    t.same(p.list().map((h) => h.name), ['server-1'])
    await p.stop('Server 1')
    t.pass('stopping an unknown name is a no-op')
    await p.close()
    t.same(await labelled(LABELS.owner, owner), [], 'close removed the rest')
    t.same(p.list(), [])
    await sleep(500)
    t.same(exits, [], 'no exit notice for containers stopped on purpose')
  })

  t.test('a later run adopts running healthy containers and removes dead ones; close cleans up', async (t) => {
    const owner = newOwner()
    const first = provider(owner, { keep: true })
    t.teardown(() => first.close())
    await first.init()
    const exits: string[] = []
    first.onExit((name) => exits.push(name))
    const [s1, s2] = await Promise.all([first.start('S1'), first.start('S2')])
    await docker.getContainer(s2.id).kill()
    await waitFor('the die event of S2', () => exits.includes('S2'))
    t.same(exits, ['S2'], 'a container that dies is reported through the events stream')
    await first.close()
    t.ok(await exists(s1.id), 'keep: close leaves the containers')
    t.ok(await exists(s2.id))

    const second = provider(owner)
    t.teardown(() => second.close())
    const adopted = await second.init()
    t.same(adopted, [s1], 'the running, healthy container is adopted with its port')
    t.same(second.list(), [s1])
    t.notOk(await exists(s2.id), 'the dead one is removed')
    t.equal((await get(`http://127.0.0.1:${s1.port}/heartbeat`)).status, 200)
    await t.rejects(second.start('S1'), { code: 'ALREADY_RUNNING' }, 'an adopted name counts as running')

    const other = provider(newOwner())
    t.same(await other.init(), [], 'another owner adopts nothing of ours')
    t.ok(await exists(s1.id), 'and removes nothing of ours')
    await other.close()

    await second.close()
    t.same(await labelled(LABELS.owner, owner), [], 'close removes every container of the owner')
  })

  t.test('a balancer with keep leaves its containers on close; the next balancer adopts them', async (t) => {
    const owner = newOwner()
    // The whole app as main.ts runs it, configured through the environment twins.
    const env = {
      LB_PROVIDER: 'docker',
      LB_NETWORK: 'host',
      LB_IMAGE: IMAGE,
      LB_OWNER: owner,
      LB_REPLICAS: '2',
      LB_START_TIMEOUT: '30000',
      LB_DRAIN_TIMEOUT: '2000',
    }
    const config = (extra: Record<string, string>) => loadConfig(['--port', '0', '--admin-port', '0', '--host', '127.0.0.1', '--quiet'], { ...env, ...extra })
    const first = await startApp(config({ LB_DOCKER_KEEP: 'true' }))
    t.teardown(() => first.close())
    t.same(first.balancer.membership(), { N: 2, replicas: ['Server 1', 'Server 2'] })
    t.equal((await get(`${first.url}/home`)).status, 200)
    const before = (await labelled(LABELS.owner, owner)).map((c) => c.Id).sort()
    t.equal(before.length, 2)
    await first.close()
    const after = await labelled(LABELS.owner, owner)
    t.same(after.map((c) => c.Id).sort(), before, 'LB_DOCKER_KEEP=true: close left both containers')
    t.ok(after.every((c) => c.State === 'running'), 'still running')

    const second = await startApp(config({}))
    t.teardown(() => second.close())
    // Adopted in creation order, which the engine records to the second: either order here.
    t.same(second.balancer.membership().replicas.slice().sort(), ['Server 1', 'Server 2'], 'the same replicas')
    t.same((await labelled(LABELS.owner, owner)).map((c) => c.Id).sort(), before, 'adopted, not recreated')
    const served = new Set<string>()
    for (let i = 0; i < 20 && served.size < 2; i++) {
      const res = await get(`${second.url}/home`)
      t.equal(res.status, 200)
      served.add((JSON.parse(res.body) as { message: string }).message)
    }
    t.same([...served].sort(), ['Hello from Server: Server 1', 'Hello from Server: Server 2'], 'the adopted containers serve through the second balancer')
    await second.close()
    t.same(await labelled(LABELS.owner, owner), [], 'without keep, close removes them')
  })

  t.test('errors are clear and leave nothing behind', async (t) => {
    await t.test('unreachable engine', async (t) => {
      const p = provider(newOwner(), { docker: new Docker({ socketPath: '/nonexistent/docker.sock' }) })
      const err = await p.init().then(
        () => undefined,
        (e: unknown) => e as Error & { code: string },
      )
      t.match(err, { code: 'ENGINE_UNREACHABLE' })
      t.match(err?.message, /\/nonexistent\/docker\.sock/)
      t.match(err?.message, /start Docker/)
      t.match(err?.message, /docker\.sock:\/var\/run\/docker\.sock/)
      t.match(err?.message, /--provider process/)
    })

    await t.test('missing image', async (t) => {
      const owner = newOwner()
      const p = provider(owner, { image: 'ring-balancer-test/no-such-image:missing' })
      await t.rejects(p.init(), { code: 'IMAGE_MISSING', message: /ring-balancer-test\/no-such-image:missing.*docker-build-images\.sh/ })
      t.same(await labelled(LABELS.owner, owner), [])
    })

    await t.test('a bridge network is created when missing and reused when there', async (t) => {
      // init only: a bridge-networked replica is reachable only from inside that network,
      // and tests send no traffic off loopback.
      const owner = newOwner()
      const network = `${owner}-net`
      t.teardown(() => docker.getNetwork(network).remove().catch(() => undefined))
      t.same(await provider(owner, { network }).init(), [])
      const created = await docker.getNetwork(network).inspect()
      t.equal(created.Driver, 'bridge')
      t.same(await provider(owner, { network }).init(), [], 'a second instance finds it')
      t.equal((await docker.getNetwork(network).inspect()).Id, created.Id, 'the same network')
    })

    await t.test('start before init, bad network', async (t) => {
      await t.rejects(provider(newOwner()).start('x'), { code: 'NOT_INITIALIZED' })
      await t.rejects(provider(newOwner(), { network: 'bridge' }).init(), { code: 'BAD_NETWORK', message: /--network host/ })
    })

    await t.test('name conflict and heartbeat timeout', async (t) => {
      const owner = newOwner()
      const p = provider(owner)
      t.teardown(() => p.close())
      await p.init()
      const stranger = await docker.createContainer({ name: containerName(owner, 'S9'), Image: IMAGE, Labels: { [TEST_LABEL]: owner } })
      const slow = provider(owner, { startTimeoutMs: 1 })
      await slow.init()
      const [conflict, timeout] = await Promise.allSettled([p.start('S9'), slow.start('S8')])
      t.match(conflict, { status: 'rejected', reason: { code: 'NAME_CONFLICT', message: new RegExp(`${containerName(owner, 'S9')}.*already in use`) } })
      t.ok(await exists(stranger.id), 'the container that was in the way is not touched')
      t.match(timeout, { status: 'rejected', reason: { code: 'START_FAILED', message: /no heartbeat from 127\.0\.0\.1:\d+ within 1 ms/ } })
      t.same(await labelled(LABELS.owner, owner), [], 'no half-made container of ours')
      t.same(p.list(), [])
      t.same(slow.list(), [])
      await slow.close()
    })
  })
}
