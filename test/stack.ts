// docker-stack.yml end to end on a real single-node swarm (initialised here when the engine is
// not in swarm mode, and left again only if this run initialised it): `docker stack deploy`
// runs the writer balancer and one follower as Swarm services on the overlay; the writer
// starts its replicas as services and reaches them at their overlay addresses; both answer
// `GET /home` on their host-mode ports on 127.0.0.1 with the same replicas and routing table;
// `docker stack rm` leaves nothing (services, task containers, network). The host only ever
// talks to 127.0.0.1. Uses the prebuilt images (CI builds them; STACK_BALANCER_IMAGE picks
// another balancer image). Skips with a reason without an engine, the images or the docker CLI,
// unless REQUIRE_DOCKER=1 (CI).
import t from 'tap'
import Docker from 'dockerode'
import { execFile } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { projectRoot } from '../src/paths.js'
import { LABELS } from '../src/replicas/docker.js'
import { freeLoopbackPort } from '../src/replicas/free-port.js'
import { alive, call, waitFor } from './fixtures/http.js'
import { useSwarm } from './fixtures/swarm.js'
import { engineUnavailable, runsHere } from './fixtures/engine.js'
import { removeOwned, swarmLeftovers } from './fixtures/swarm-services.js'

const BALANCER_IMAGE = process.env.STACK_BALANCER_IMAGE ?? 'ring-balancer:latest'
const REPLICA_IMAGE = process.env.REPLICA_IMAGE ?? 'ring-balancer-replica:latest'
/** Stack, owner and network are `rbstack-<pid>-...`: a crashed run's leftovers are found by the pid. */
const STACK = `rbstack-${process.pid}-${randomBytes(2).toString('hex')}`
const OWNER = `${STACK}-owner`
const NETWORK = `${STACK}-net`
const docker = new Docker()

function run(cmd: string[], env: NodeJS.ProcessEnv = process.env, timeoutMs = 120_000): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    execFile(cmd[0]!, cmd.slice(1), { cwd: projectRoot, env, timeout: timeoutMs, maxBuffer: 4 << 20 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, out: `${stdout}${stderr}`.trim() })
    })
  })
}

/** The stack's own services (writer and follower), by the label `docker stack deploy` puts on them. */
async function stackServices(name: string): Promise<Docker.Service[]> {
  return docker.listServices({ filters: JSON.stringify({ label: [`com.docker.stack.namespace=${name}`] }) })
}

/** The digest in the last `routing table <digest>` line a stack service logged. */
async function lastDigest(service: string): Promise<string | undefined> {
  const logs = await run(['docker', 'service', 'logs', '--raw', service], process.env, 20_000)
  const lines = logs.out.split('\n').filter((line) => line.startsWith('routing table '))
  return lines.at(-1)?.split(' ')[2]
}

async function unavailable(): Promise<string | undefined> {
  const reason = await engineUnavailable(docker, BALANCER_IMAGE, REPLICA_IMAGE)
  if (reason) return reason
  const cli = await run(['docker', 'stack', '--help'], process.env, 20_000)
  if (cli.code !== 0) return `the docker CLI has no 'docker stack' (${cli.out.split('\n')[0]})`
  // An image built before the Swarm provider existed would only fail after minutes.
  const help = await run(['docker', 'run', '--rm', '--network', 'none', BALANCER_IMAGE, '--help'], process.env, 60_000)
  return help.out.includes('--swarm-follow') ? undefined : `${BALANCER_IMAGE} predates --provider swarm; rebuild it: scripts/docker-build-images.sh balancer`
}

/** `docker stack rm`, then wait until the stack, its replicas' services and containers, and the network are gone. */
async function removeStack(name: string, owner: string, network: string): Promise<void> {
  if ((await stackServices(name)).length > 0) await run(['docker', 'stack', 'rm', name])
  // The writer removes its replica services while it stops (SIGTERM, then up to its grace period).
  await waitFor(`stack ${name} to stop`, async () => (await stackServices(name)).length === 0, 90_000, 250)
  await removeOwned(docker, [owner], [network])
}

if (runsHere(t, await unavailable())) {
  t.setTimeout(270_000)
  const release = await useSwarm(docker)
  await swarmLeftovers(docker, 'rbstack')
  for (const stack of (await run(['docker', 'stack', 'ls', '--format', '{{.Name}}'])).out.split('\n')) {
    const m = /^rbstack-(\d+)-/.exec(stack)
    if (m && Number(m[1]) !== process.pid && !alive(Number(m[1]))) await removeStack(stack, `${stack}-owner`, `${stack}-net`)
  }
  t.teardown(async () => {
    await removeStack(STACK, OWNER, NETWORK)
    await release()
  })

  t.test('docker stack deploy: the writer and a follower answer /home on 127.0.0.1', async (t) => {
    const [port, followerPort] = await Promise.all([freeLoopbackPort(), freeLoopbackPort()])
    const env = {
      ...process.env,
      LB_PUBLISH: String(port),
      LB_FOLLOWER_PUBLISH: String(followerPort),
      LB_REPLICAS: '2',
      LB_OWNER: OWNER,
      LB_NETWORK: NETWORK,
      LB_IMAGE: REPLICA_IMAGE,
      LB_BALANCER_IMAGE: BALANCER_IMAGE,
    }
    // --resolve-image never: the images are local, no registry is asked.
    const deploy = await run(['docker', 'stack', 'deploy', '--resolve-image', 'never', '-c', 'docker-stack.yml', STACK], env)
    t.equal(deploy.code, 0, deploy.out)
    const services = await stackServices(STACK)
    t.same(services.map((s) => s.Spec?.Name).sort(), [`${STACK}_balancer`, `${STACK}_follower`])

    const writer = `http://127.0.0.1:${port}`
    const follower = `http://127.0.0.1:${followerPort}`
    const answers = async (url: string): Promise<boolean> => call(`${url}/home`).then((r) => r.status === 200, () => false)
    await waitFor('the writer to answer /home', () => answers(writer), 180_000, 250)
    const home = await call(`${writer}/home`)
    t.match(home.json, { message: /^Hello from Server: Server [12]$/, status: 'successful' }, 'a replica answered through the writer')

    const replicas = await docker.listServices({ filters: JSON.stringify({ label: [`${LABELS.owner}=${OWNER}`] }) })
    t.equal(replicas.length, 2, 'the writer made its replicas as Swarm services')
    t.ok(
      replicas.every((s) => s.Endpoint?.Ports === undefined || s.Endpoint.Ports.length === 0),
      'reached on the overlay: nothing published',
    )

    await waitFor('the follower to answer /home with both replicas', async () => (await answers(follower)) && ((await call(`${follower}/rep`)).json as { message: { N: number } }).message.N === 2, 60_000, 250)
    const names = async (url: string): Promise<string[]> => ((await call(`${url}/rep`)).json as { message: { replicas: string[] } }).message.replicas.sort()
    t.same(await names(follower), await names(writer), 'the follower has the writer’s replicas (in the order it learned them)')
    const refused = await call(`${follower}/add`, 'POST', JSON.stringify({ n: 1 }))
    t.equal(refused.status, 409)
    t.match(refused.json, { message: new RegExp(`follows '${STACK}_balancer-1'`) }, 'naming the writer by its task hostname')
    // No /stats yet: the digest each balancer logs on every change of its routing table.
    await waitFor('both to log the same routing table', async () => {
      const [a, b] = await Promise.all([lastDigest(`${STACK}_balancer`), lastDigest(`${STACK}_follower`)])
      return a !== undefined && a === b
    }, 30_000, 500)
    t.pass('the writer and the follower logged the same routing-table digest')
  })

  t.test('docker stack rm leaves nothing behind', async (t) => {
    await removeStack(STACK, OWNER, NETWORK)
    t.same(await stackServices(STACK), [])
    t.same(await docker.listServices({ filters: JSON.stringify({ label: [`${LABELS.owner}=${OWNER}`] }) }), [], 'no replica service')
    const networks = await docker.listNetworks({ filters: JSON.stringify({ name: [NETWORK] }) })
    t.same(networks.map((n) => n.Name).filter((n) => n === NETWORK), [], 'no network')
  })
}
