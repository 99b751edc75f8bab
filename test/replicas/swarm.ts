// The Swarm provider against a real single-node swarm (initialised here when the engine is not
// in swarm mode, and left again only if this run initialised it): start, stop, a killed task
// reported, a rescheduled task followed, adoption on restart, a follower, errors. The
// balancer reaches the tasks at their host-mode published ports on 127.0.0.1 (`reach: host`):
// the host must never send traffic to overlay addresses. Needs the replica image
// (scripts/docker-build-images.sh replica). Without an engine or image the file skips with a
// reason, unless REQUIRE_DOCKER=1 (CI), where that is a failure.
import t from 'tap'
import Docker from 'dockerode'
import { SwarmProvider, TASK_OWNER_LABEL, WEIGHT_LABEL, WRITER_LABEL, type SwarmProviderOptions, type SwarmTask } from '../../src/replicas/swarm.js'
import { LABELS, containerName } from '../../src/replicas/docker.js'
import type { ReplicaChange } from '../../src/replicas/provider.js'
import { withSwarm } from '../fixtures/swarm.js'
import { waitFor } from '../fixtures/http.js'

const IMAGE = process.env.REPLICA_IMAGE ?? 'ring-balancer-replica:latest'
const docker = new Docker()
/** Owners are `rbswarm-<pid>-<n>`: leftovers of a crashed run are found by the pid. */
const OWNER = `rbswarm-${process.pid}-1`
const NETWORK = `rbswarm-${process.pid}-net`

function provider(options: Partial<SwarmProviderOptions> = {}): SwarmProvider {
  return new SwarmProvider({ image: IMAGE, network: NETWORK, owner: OWNER, reach: 'host', startTimeoutMs: 60_000, pollMs: 250, docker, ...options })
}

async function home(host: string, port: number): Promise<string> {
  const res = await fetch(`http://${host}:${port}/home`)
  return ((await res.json()) as { message: string }).message
}

async function tasksOf(serviceId: string): Promise<SwarmTask[]> {
  return (await docker.listTasks({ filters: JSON.stringify({ service: [serviceId] }) })) as SwarmTask[]
}

async function serviceExists(id: string): Promise<boolean> {
  return docker.getService(id).inspect().then(() => true, (err: { statusCode?: number }) => (err.statusCode === 404 ? false : Promise.reject(err)))
}

if (await withSwarm(t, docker, { image: IMAGE, prefix: 'rbswarm', owner: OWNER, network: NETWORK })) {

  const writer = provider({ keep: true, identity: 'writer-under-test' })
  const exits: string[] = []
  const writerChanges: ReplicaChange[] = []
  let serviceOne = ''

  t.test('a writer starts services of one task, reached at their host-mode ports', async (t) => {
    t.same(await writer.init(), [], 'nothing to adopt')
    t.equal(writer.reach, 'host', 'the test process is not on the overlay')
    writer.onExit((name) => exits.push(name))
    writer.onChange((change) => writerChanges.push(change))
    const [one, two] = await Promise.all([writer.start('Server 1', { weight: 2 }), writer.start('server-1')])
    t.equal(one.host, '127.0.0.1')
    t.ok(one.port > 0 && one.port !== two.port, 'each task publishes its own host port')
    t.equal(await home(one.host, one.port), 'Hello from Server: Server 1')
    t.equal(await home(two.host, two.port), 'Hello from Server: server-1')
    t.equal(one.weight, 2)
    serviceOne = one.id

    const info = await docker.getService(one.id).inspect()
    t.equal(info.Spec.Name, containerName(OWNER, 'Server 1'), 'named as the Docker provider names containers')
    t.not(containerName(OWNER, 'Server 1'), containerName(OWNER, 'server-1'))
    t.match(info.Spec.Labels, { [LABELS.owner]: OWNER, [LABELS.hostname]: 'Server 1', [WRITER_LABEL]: 'writer-under-test', [WEIGHT_LABEL]: '2' })
    t.match(info.Spec.TaskTemplate.RestartPolicy, { Condition: 'none' }, "Swarm's restart policy is off: the balancer replaces dead replicas")
    t.equal(info.Spec.Mode.Replicated.Replicas, 1)
    t.equal(info.Spec.EndpointSpec.Mode, 'dnsrr', 'no virtual IP: the ring picks the task')
    t.match(info.Spec.EndpointSpec.Ports, [{ TargetPort: 5000, PublishMode: 'host' }])
    t.same(writer.list().map((h) => h.name).sort(), ['Server 1', 'server-1'])
    await t.rejects(writer.start('Server 1'), { code: 'ALREADY_RUNNING' })
  })

  t.test('a killed task is reported once and its service removed by stop()', async (t) => {
    const id = writer.serviceOf('server-1')!
    const [task] = await tasksOf(id)
    await docker.getContainer(task!.Status!.ContainerStatus!.ContainerID!).kill()
    await waitFor('the exit report', () => exits.includes('server-1'), 30_000, 50)
    t.same(exits, ['server-1'], 'reported once, as the dead replica')
    await writer.stop('server-1')
    t.notOk(await serviceExists(id), 'service gone when stop resolves')
    t.same(await tasksOf(id).catch(() => []), [], 'and no task of it left')
    t.same(writer.list().map((h) => h.name), ['Server 1'])
    await writer.stop('server-1')
    t.pass('stopping an unknown name is a no-op')
  })

  const follower = provider({ follow: true })
  const followerChanges: ReplicaChange[] = []

  t.test("a follower adopts the writer's services and follows what it adds and removes", async (t) => {
    const adopted = await follower.init()
    t.same(adopted.map((h) => [h.name, h.port, h.weight]), [['Server 1', writer.list()[0]!.port, 2]], 'adopted with its weight label')
    t.equal(follower.follows?.(), 'writer-under-test', 'names the writer from its label')
    follower.onChange((change) => followerChanges.push(change))
    await t.rejects(follower.start('S9'), { code: 'FOLLOWER' }, 'a follower starts nothing')

    const three = await writer.start('Server 3')
    await waitFor('the follower to see Server 3', () => followerChanges.some((c) => c.kind === 'appeared' && c.handle.name === 'Server 3'), 30_000, 50)
    t.match(followerChanges.at(-1), { kind: 'appeared', handle: { name: 'Server 3', port: three.port, weight: 1 } })
    await writer.stop('Server 3')
    await waitFor('the follower to see Server 3 go', () => followerChanges.some((c) => c.kind === 'gone' && c.name === 'Server 3'), 30_000, 50)
    t.same(follower.list().map((h) => h.name), ['Server 1'])
  })

  t.test('a task that Swarm runs somewhere else is followed under the same name', async (t) => {
    const before = writer.list()[0]!
    // A forced update replaces the task (new container, new published port), as a reschedule to
    // another node does. Only ForceUpdate changes in the spec inspect() returned.
    const service = docker.getService(serviceOne)
    const info = await service.inspect()
    const spec = info.Spec
    spec.TaskTemplate.ForceUpdate = (spec.TaskTemplate.ForceUpdate ?? 0) + 1
    await service.update({ ...spec, version: info.Version.Index })
    await waitFor('the writer to follow the task', () => writerChanges.some((c) => c.kind === 'moved'), 60_000, 50)
    await waitFor('the follower to follow the task', () => followerChanges.some((c) => c.kind === 'moved'), 10_000, 50)
    const moved = writer.list()[0]!
    t.equal(moved.name, 'Server 1', 'same name')
    t.not(moved.port, before.port, 'new published port')
    t.equal(await home(moved.host, moved.port), 'Hello from Server: Server 1')
    t.same(follower.list()[0], moved, 'the follower has the same address')
    t.same(exits, ['server-1'], 'a moved task is not a dead replica')
  })

  t.test('a restarted writer adopts the services a kept one left; close removes them', async (t) => {
    await follower.close()
    t.ok(await serviceExists(serviceOne), 'a follower never removes a service')
    await writer.close()
    t.ok(await serviceExists(serviceOne), 'keep: left running')
    const next = provider()
    t.teardown(() => next.close())
    const adopted = await next.init()
    t.same(adopted.map((h) => [h.name, h.id, h.weight]), [['Server 1', serviceOne, 2]])
    t.equal(await home(adopted[0]!.host, adopted[0]!.port), 'Hello from Server: Server 1')
    await next.close()
    t.notOk(await serviceExists(serviceOne), 'close removed it')
    const tasks = (await docker.listTasks()) as SwarmTask[]
    t.notOk(tasks.some((task) => task.ServiceID === serviceOne), 'and Swarm has no task of it left')
  })

  t.test('errors say what to do and leave nothing behind', async (t) => {
    const p = provider({ image: 'ring-balancer-no-such-image:never', startTimeoutMs: 60_000 })
    t.teardown(() => p.close())
    await t.rejects(p.init(), { code: 'IMAGE_MISSING', message: /scripts\/docker-build-images\.sh/ })
    await t.rejects(provider({ network: 'host' }).init(), { code: 'BAD_NETWORK' })
    await t.rejects(provider({ network: 'bridge' }).init(), { code: 'BAD_NETWORK' })

    const q = provider()
    t.teardown(() => q.close())
    await q.init()
    // A service that is not ours holds the name.
    const squatter = await docker.createService({
      Name: containerName(OWNER, 'taken'),
      Labels: { [TASK_OWNER_LABEL]: OWNER },
      TaskTemplate: { ContainerSpec: { Image: IMAGE, Env: ['SERVER_ID=squatter'] }, RestartPolicy: { Condition: 'none' } },
      Mode: { Replicated: { Replicas: 0 } },
    })
    t.teardown(() => squatter.remove().catch(() => undefined))
    await t.rejects(q.start('taken'), { code: 'NAME_CONFLICT', message: /docker service rm/ })
  })
}
