// End to end through Docker Compose (issue 3, item 4b): the user-facing compose files with the
// host-networking override, from the prebuilt images (CI builds them with
// scripts/docker-build-images.sh before npm test; this file never builds). Up, every endpoint
// over loopback, a replica container killed with `docker kill` is replaced, down with nothing
// left. All traffic goes to 127.0.0.1: the balancer and its replicas run on host networking.
//
// Skips with a reason when there is no engine, no Compose or no images, unless REQUIRE_DOCKER=1
// (CI), where that is a failure. Env: COMPOSE (e.g. "docker-compose" or "docker compose") picks
// the Compose command, COMPOSE_TEST_PORT the balancer's loopback port (default: a free one).
import t from 'tap'
import Docker from 'dockerode'
import { execFile } from 'node:child_process'
import { createServer } from 'node:net'
import { randomBytes } from 'node:crypto'
import { projectRoot } from '../src/paths.js'
import { LABELS } from '../src/replicas/docker.js'
import { call, waitFor, type Reply } from './fixtures/http.js'
import { fromDeadRun } from './fixtures/runs.js'
import { engineUnavailable, runsHere } from './fixtures/engine.js'

const STANDIN = 'ring-balancer/node-standin:20'
const IMAGES = ['ring-balancer:latest', 'ring-balancer-replica:latest', STANDIN]
const FILES = ['-f', 'docker-compose.yml', '-f', 'docker-compose.host.yml']
const PROJECT_LABEL = 'com.docker.compose.project'
/** Project and owner are `rbcompose-<pid>-<random>`: a crashed run's leftovers are found by the pid. */
const NAME = `rbcompose-${process.pid}-${randomBytes(3).toString('hex')}`

const docker = new Docker()

interface Run {
  code: number
  out: string
}

function run(cmd: string[], env: NodeJS.ProcessEnv = process.env, timeoutMs = 60_000): Promise<Run> {
  return new Promise((resolve) => {
    execFile(cmd[0]!, cmd.slice(1), { cwd: projectRoot, env, timeout: timeoutMs, maxBuffer: 4 << 20 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0
      resolve({ code, out: `${stdout}${stderr}`.trim() + (err?.killed ? `\n(killed after ${timeoutMs} ms)` : '') })
    })
  })
}

/** The Compose command: $COMPOSE, else `docker compose` (v2) when present, else `docker-compose` (v1). */
async function composeCommand(): Promise<string[] | undefined> {
  const candidates = process.env.COMPOSE ? [process.env.COMPOSE.split(/\s+/).filter(Boolean)] : [['docker', 'compose'], ['docker-compose']]
  for (const cmd of candidates) if ((await run([...cmd, 'version'], process.env, 20_000)).code === 0) return cmd
  return undefined
}

function freeLoopbackPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.on('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number }
      server.close(() => resolve(port))
    })
  })
}

async function labelled(label: string, value?: string): Promise<Docker.ContainerInfo[]> {
  return docker.listContainers({ all: true, filters: JSON.stringify({ label: [value === undefined ? label : `${label}=${value}`] }) })
}

async function networksOf(project: string): Promise<Docker.NetworkInspectInfo[]> {
  return docker.listNetworks({ filters: JSON.stringify({ label: [`${PROJECT_LABEL}=${project}`] }) })
}

/** Remove containers (balancer first, so it starts no more replicas) and networks by label. */
async function removeByLabel(project: (name: string | undefined) => boolean): Promise<void> {
  for (const label of [PROJECT_LABEL, LABELS.owner]) {
    const found = (await labelled(label)).filter((c) => project(c.Labels[label]))
    await Promise.all(found.map((c) => docker.getContainer(c.Id).remove({ force: true, v: true }).catch(() => undefined)))
  }
  const networks = await docker.listNetworks({ filters: JSON.stringify({ label: [PROJECT_LABEL] }) })
  await Promise.all(networks.filter((n) => project(n.Labels?.[PROJECT_LABEL])).map((n) => docker.getNetwork(n.Id).remove().catch(() => undefined)))
}

/** Why this file cannot run here, or undefined when it can (with the Compose command). */
async function unavailable(): Promise<{ reason?: string; compose?: string[] }> {
  const reason = await engineUnavailable(docker)
  if (reason) return { reason }
  const compose = await composeCommand()
  if (!compose) {
    return {
      reason: process.env.COMPOSE
        ? `COMPOSE=${JSON.stringify(process.env.COMPOSE)}: \`${process.env.COMPOSE} version\` fails`
        : 'neither `docker compose` nor `docker-compose` works; install Compose (scripts/docker-up.sh does)',
    }
  }
  return { reason: await engineUnavailable(docker, ...IMAGES), compose }
}

const { reason, compose } = await unavailable()
if (runsHere(t, reason) && compose) {
  t.setTimeout(170_000)
  await removeByLabel((name) => fromDeadRun('rbcompose', name))

  const port = Number(process.env.COMPOSE_TEST_PORT ?? (await freeLoopbackPort()))
  const url = `http://127.0.0.1:${port}`
  const adminPort = await freeLoopbackPort()
  // Nothing the calling shell set for the balancer leaks in: only these LB_ values reach it.
  const env: NodeJS.ProcessEnv = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('LB_')))
  Object.assign(env, {
    COMPOSE_PROJECT_NAME: NAME,
    LB_PORT: String(port),
    // Never the default 5050: a colleague's balancer may hold it.
    LB_ADMIN_PORT: String(adminPort),
    LB_OWNER: NAME,
    LB_REPLICAS: '3',
    LB_DOCKER_KEEP: 'false',
    // Containers copy their image on the vfs storage driver: slow under a parallel test run.
    LB_START_TIMEOUT: '60000',
  })
  const composeRun = (args: string[], timeoutMs = 60_000): Promise<Run> => run([...compose, '-p', NAME, ...FILES, ...args], env, timeoutMs)
  const owned = (): Promise<Docker.ContainerInfo[]> => labelled(LABELS.owner, NAME)
  const rep = async (): Promise<{ N: number; replicas: string[] }> => {
    const r = await call(`${url}/rep`)
    if (r.status !== 200) throw new Error(`GET /rep: ${r.status} ${r.body}`)
    return (r.json as { message: { N: number; replicas: string[] } }).message
  }
  const json = (body: unknown): [string, Record<string, string>] => [JSON.stringify(body), { 'content-type': 'application/json' }]
  const balancerLogs = async (): Promise<string> => {
    const [c] = await labelled(PROJECT_LABEL, NAME)
    if (!c) return '(no balancer container)'
    const raw = (await docker.getContainer(c.Id).logs({ stdout: true, stderr: true, tail: 40 })) as unknown as Buffer
    return raw.toString('utf8').replace(/[\x00-\x08]/g, '')
  }

  // Always: down, then anything still labelled ours (a failed down, a balancer that died).
  t.teardown(async () => {
    await composeRun(['down', '-t', '20'], 60_000)
    await removeByLabel((name) => name === NAME)
  })

  const timing: Record<string, number> = {}
  let started = Date.now()

  t.test('docker-compose.yml builds both images on the host network (no DNS on the default build bridge here)', async (t) => {
    const config = await run([...compose, '-f', 'docker-compose.yml', 'config'], env, 30_000)
    t.equal(config.code, 0, 'compose config') || t.comment(config.out)
    for (const service of ['replica', 'balancer']) {
      const block = new RegExp(`\\n  ${service}:\\n((?:    .*\\n|\\n)*)`).exec(config.out)?.[1] ?? ''
      const build = /\n?    build:\n((?: {6}.*\n)*)/.exec(block)?.[1] ?? ''
      t.match(build, /^ {6}network: host$/m, `${service}: build.network is host`)
    }
  })

  t.test('a build that cannot reach the npm registry fails within a minute and says why', async (t) => {
    // The real Dockerfile's build stage with no network at all (what a build network without
    // DNS looks like to npm). --no-cache: a cached `npm ci` layer would hide the failure.
    const begin = Date.now()
    const build = await run(['docker', 'build', '--network', 'none', '--no-cache', '--force-rm', '--target', 'build', '--build-arg', `NODE_IMAGE=${STANDIN}`, '-f', 'replica/Dockerfile', '.'], env, 150_000)
    const seconds = (Date.now() - begin) / 1000
    t.not(build.code, 0, 'the build fails')
    t.match(build.out, /ERROR: the build cannot reach the npm registry: registry\.npmjs\.org (does not resolve|did not resolve within 15 s)/, 'naming the registry')
    t.match(build.out, /build with host networking/, 'and what to do')
    t.ok(seconds < 60, `within a minute (${seconds.toFixed(0)} s, including the image layers on vfs)`)
    t.same(
      (await docker.listContainers({ filters: JSON.stringify({ status: ['running'], ancestor: [STANDIN] }) })).filter((c) => /npm (ci|install)/.test(c.Command)),
      [],
      'no build container left running npm',
    )
  })

  t.test('up: the balancer container starts 3 replica containers and serves on loopback', async (t) => {
    const up = await composeRun(['up', '-d', '--no-build', 'balancer-host'], 90_000)
    t.equal(up.code, 0, `${compose.join(' ')} up`) || t.comment(up.out)
    try {
      await waitFor('GET /rep to answer N = 3', async () => (await rep().catch(() => ({ N: 0 }))).N === 3, 90_000, 250)
    } catch (err) {
      t.fail((err as Error).message, { logs: await balancerLogs() })
      return
    }
    timing.up = Date.now() - started
    const [balancer, ...more] = await labelled(PROJECT_LABEL, NAME)
    t.equal(more.length, 0, 'one container for the project: the balancer')
    t.equal(balancer?.HostConfig.NetworkMode, 'host', 'the balancer on host networking')
    const replicas = await owned()
    t.equal(replicas.length, 3, 'three replica containers with the owner label')
    t.ok(replicas.every((c) => c.State === 'running' && c.HostConfig.NetworkMode === 'host' && c.Image === 'ring-balancer-replica:latest'))
    t.same(replicas.map((c) => c.Labels[LABELS.hostname]).sort(), ['Server 1', 'Server 2', 'Server 3'])
  })

  t.test('GET /rep and /home', async (t) => {
    const r = await call(`${url}/rep`)
    t.equal(r.status, 200)
    t.same(r.json, { message: { N: 3, replicas: ['Server 1', 'Server 2', 'Server 3'] }, status: 'successful' })
    const seen = new Set<string>()
    for (let i = 0; i < 30; i++) {
      const home = await call(`${url}/home`)
      t.equal(home.status, 200)
      const body = home.json as { message: string; status: string }
      t.equal(body.status, 'successful')
      seen.add(body.message)
    }
    t.ok(seen.size > 1, `random keys spread over the replicas (${[...seen].join(', ')})`)
    t.ok([...seen].every((m) => /^Hello from Server: Server [123]$/.test(m)), 'every answer from one of the replicas')
  })

  t.test('POST /add and DELETE /rm change the containers; errors as in the SPEC', async (t) => {
    const add = await call(`${url}/add`, 'POST', ...json({ n: 2, hostnames: ['S5'] }))
    t.equal(add.status, 200, 'POST /add answers 200', { body: add.body })
    const added = (add.json as { message: { N: number; replicas: string[] } }).message
    t.equal(added.N, 5)
    t.same(added.replicas.slice(0, 4), ['Server 1', 'Server 2', 'Server 3', 'S5'], 'joined in order, named first')
    t.equal(added.replicas.length, 5)
    t.same((await owned()).map((c) => c.Labels[LABELS.hostname]).sort(), [...added.replicas].sort(), 'a container for each')
    const random = added.replicas[4]!

    t.same((await call(`${url}/add`, 'POST', ...json({ n: 1, hostnames: ['a', 'b'] }))).json, {
      message: '<Error> Length of hostname list is more than newly added instances',
      status: 'failure',
    })
    const rm = await call(`${url}/rm`, 'DELETE', ...json({ n: 2, hostnames: ['S5'] }))
    t.equal(rm.status, 200, 'DELETE /rm answers 200', { body: rm.body })
    const left = (rm.json as { message: { N: number; replicas: string[] } }).message
    t.equal(left.N, 3)
    t.notOk(left.replicas.includes('S5'), 'the named one is gone')
    t.same(left.replicas, ['Server 1', 'Server 2', 'Server 3', random].filter((n) => left.replicas.includes(n)), 'the rest in join order')
    t.same((await owned()).map((c) => c.Labels[LABELS.hostname]).sort(), [...left.replicas].sort(), '/rm removed the containers')
    t.same((await call(`${url}/rm`, 'DELETE', ...json({ n: 1, hostnames: ['a', 'b'] }))).json, {
      message: '<Error> Length of hostname list is more than removable instances',
      status: 'failure',
    })
    const missing: Reply = await call(`${url}/other`)
    t.equal(missing.status, 400)
    t.same(missing.json, { message: "<Error> '/other' endpoint does not exist in server replicas", status: 'failure' })
  })

  t.test('a replica container killed with docker kill is replaced by a new one with a new name', async (t) => {
    const before = (await rep()).replicas
    const victim = before[0]!
    const [container] = (await owned()).filter((c) => c.Labels[LABELS.hostname] === victim)
    t.ok(container, `the container of ${victim}`)
    if (!container) return
    started = Date.now()
    await docker.getContainer(container.Id).kill()
    let now: string[] = before
    await waitFor(
      'N back to 3 with a new name',
      async () => {
        now = (await rep().catch(() => ({ replicas: before }))).replicas
        return now.length === 3 && !now.includes(victim)
      },
      60_000,
      100,
    )
    timing.replaced = Date.now() - started
    const fresh = now.filter((n) => !before.includes(n))
    t.equal(fresh.length, 1, `one new replica: ${fresh.join(', ')}`)
    t.same(now.filter((n) => before.includes(n)), before.filter((n) => n !== victim), 'the others stay')
    await waitFor('the dead container to be removed', async () => !(await owned()).some((c) => c.Id === container.Id), 30_000, 200)
    t.same((await owned()).map((c) => c.Labels[LABELS.hostname]).sort(), [...now].sort(), 'one container per replica, the dead one removed')
    t.equal((await call(`${url}/home`)).status, 200)
  })

  t.test('down leaves no container and no network behind', async (t) => {
    started = Date.now()
    const down = await composeRun(['down', '-t', '30'], 90_000)
    timing.down = Date.now() - started
    t.equal(down.code, 0, `${compose.join(' ')} down`) || t.comment(down.out)
    t.same(await owned(), [], 'no replica container with the owner label')
    t.same(await labelled(PROJECT_LABEL, NAME), [], 'no container of the project')
    t.same(await networksOf(NAME), [], 'no network of the project')
    await t.rejects(call(`${url}/rep`), 'nothing listens on the port')
    t.comment(`${compose.join(' ')}: up ${timing.up} ms to N = 3, killed -> replaced ${timing.replaced} ms, down ${timing.down} ms`)
  })
}
