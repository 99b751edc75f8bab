/**
 * The `docker` replica provider: each replica is a container from the replica image, made
 * through dockerode. Containers carry labels (owner balancer, real hostname, port), so a
 * restarted balancer finds the ones an earlier run left: it adopts the running, healthy ones
 * and removes the rest. Two network modes:
 *   - a user-defined bridge network (default `net1`, created if missing): the replica listens
 *     on 5000 and the balancer, on the same network, reaches it by its container name (also a
 *     network alias, with the hostname itself when that is a valid DNS name);
 *   - `host`: host networking, each replica on its own free loopback port, reached at
 *     127.0.0.1:port (what the tests use: traffic stays on loopback).
 * Failures become DockerProviderError with a stable `code` and a message that says what to do.
 */
import { createHash } from 'node:crypto'
import { request } from 'node:http'
import { createServer } from 'node:net'
import Docker from 'dockerode'
import type { ReplicaHandle, ReplicaProvider } from './provider.js'

export interface DockerProviderOptions {
  /** Replica image (`ring-balancer-replica:latest`). */
  image: string
  /** User-defined bridge network, created if missing (default `net1`), or `host`. */
  network?: string
  /** Label value identifying this balancer instance's containers (default `ring-balancer`). */
  owner?: string
  /** Leave the containers running on close(), for a later run to adopt (default false). */
  keep?: boolean
  /** How long a started container has to answer `GET /heartbeat` with 200 (default 15000 ms). */
  startTimeoutMs?: number
  /** Engine client; default `new Docker()` (DOCKER_HOST or /var/run/docker.sock). */
  docker?: Docker
}

/** Labels on every container this provider creates. */
export const LABELS = {
  owner: 'ring-balancer.owner',
  hostname: 'ring-balancer.hostname',
  port: 'ring-balancer.port',
} as const

/** Port the replica listens on inside a bridge-networked container. */
export const REPLICA_PORT = 5000

export type DockerErrorCode =
  | 'ENGINE_UNREACHABLE'
  | 'ENGINE_ERROR'
  | 'IMAGE_MISSING'
  | 'BAD_NETWORK'
  | 'NAME_CONFLICT'
  | 'ALREADY_RUNNING'
  | 'NOT_INITIALIZED'
  | 'START_FAILED'
  | 'CLOSED'

export class DockerProviderError extends Error {
  override name = 'DockerProviderError'
  constructor(
    readonly code: DockerErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options)
  }
}

/**
 * A valid, unique container name for a replica hostname: `Server 1` -> `rb-server-1-<hash>`.
 * The hash covers the exact hostname and the owner, so `Server 1` and `server-1` (or two
 * balancers' `Server 1`) never collide. At most 52 characters, a valid DNS label.
 */
export function containerName(owner: string, hostname: string): string {
  const slug =
    hostname
      .toLowerCase()
      .replace(/[^a-z0-9]+/g, '-')
      .slice(0, 40)
      .replace(/^-+|-+$/g, '') || 'replica'
  const hash = createHash('sha256').update(owner).update('\0').update(hostname).digest('hex').slice(0, 8)
  return `rb-${slug}-${hash}`
}

const DNS_LABEL = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/i

interface Replica {
  handle: ReplicaHandle
  container: Docker.Container
  /** Set while we stop it ourselves, so its `die` event is not reported as a death. */
  stopping: boolean
}

/** A host-networked replica lost its port to someone else between our probe and its bind. */
class PortTaken extends Error {}

export class DockerProvider implements ReplicaProvider {
  readonly kind = 'docker'
  readonly docker: Docker
  readonly image: string
  readonly network: string
  readonly owner: string
  readonly keep: boolean
  readonly startTimeoutMs: number
  private readonly replicas = new Map<string, Replica>()
  private readonly starting = new Map<string, Promise<ReplicaHandle>>()
  private readonly exitListeners: Array<(name: string) => void> = []
  /** Loopback ports of host-networked replicas, running or starting: never handed out twice. */
  private readonly ports = new Set<number>()
  private imageId: string | undefined
  private events: NodeJS.ReadableStream | undefined
  private initialized = false
  private closed = false

  constructor(options: DockerProviderOptions) {
    this.docker = options.docker ?? new Docker()
    this.image = options.image
    this.network = options.network ?? 'net1'
    this.owner = options.owner ?? 'ring-balancer'
    this.keep = options.keep ?? false
    this.startTimeoutMs = options.startTimeoutMs ?? 15_000
  }

  private get hostMode(): boolean {
    return this.network === 'host'
  }

  async init(): Promise<ReplicaHandle[]> {
    // A second call adopts nothing new (and must not remove what this instance runs).
    if (this.initialized) return []
    if (this.network === 'bridge' || this.network === 'none') {
      throw new DockerProviderError('BAD_NETWORK', `network ${JSON.stringify(this.network)} cannot be used: replicas need a user-defined network (e.g. --network net1) or --network host`)
    }
    try {
      await this.docker.ping()
    } catch (err) {
      throw this.engineError(err)
    }
    try {
      this.imageId = (await this.docker.getImage(this.image).inspect()).Id
    } catch (err) {
      if (statusOf(err) === 404) throw imageMissing(this.image, err)
      throw this.engineError(err, `inspecting image ${this.image}`)
    }
    if (!this.hostMode) await this.ensureNetwork()
    const adopted = await this.adoptOrRemove()
    this.initialized = true
    this.watchEvents()
    return adopted
  }

  start(name: string): Promise<ReplicaHandle> {
    if (this.closed) return Promise.reject(new DockerProviderError('CLOSED', 'the Docker provider is closed'))
    if (!this.initialized) return Promise.reject(new DockerProviderError('NOT_INITIALIZED', 'DockerProvider.init() must run before start()'))
    if (this.replicas.has(name) || this.starting.has(name)) {
      return Promise.reject(new DockerProviderError('ALREADY_RUNNING', `replica ${JSON.stringify(name)} is already running (container ${containerName(this.owner, name)})`))
    }
    const pending = this.startWithRetry(name).finally(() => this.starting.delete(name))
    this.starting.set(name, pending)
    return pending
  }

  private async startWithRetry(name: string): Promise<ReplicaHandle> {
    for (let attempt = 1; ; attempt++) {
      try {
        const replica = await this.startOnce(name)
        if (this.closed) {
          await removeQuietly(replica.container)
          throw new DockerProviderError('CLOSED', 'the Docker provider was closed while the replica started')
        }
        this.replicas.set(name, replica)
        return replica.handle
      } catch (err) {
        if (err instanceof PortTaken && attempt < 3) continue
        throw err instanceof PortTaken ? new DockerProviderError('START_FAILED', err.message) : err
      }
    }
  }

  /** Create, start and wait for the heartbeat; on any failure remove the container and throw. */
  private async startOnce(name: string): Promise<Replica> {
    const cname = containerName(this.owner, name)
    const port = this.hostMode ? await this.reservePort() : REPLICA_PORT
    try {
      return await this.createAndWait(name, cname, port)
    } catch (err) {
      if (this.hostMode) this.ports.delete(port)
      throw err
    }
  }

  /**
   * A free loopback port no replica of ours holds or is about to bind. Without the set, two
   * replicas starting at once could be given the same port, and the loser's heartbeat would
   * be answered by the winner.
   */
  private async reservePort(): Promise<number> {
    for (;;) {
      const port = await freeLoopbackPort()
      if (this.ports.has(port)) continue
      this.ports.add(port)
      return port
    }
  }

  private async createAndWait(name: string, cname: string, port: number): Promise<Replica> {
    const env = [`SERVER_ID=${name}`, `PORT=${port}`]
    if (this.hostMode) env.push('HOST=127.0.0.1')
    const aliases = [cname, ...(DNS_LABEL.test(name) ? [name] : [])]
    let container: Docker.Container
    try {
      container = await this.docker.createContainer({
        name: cname,
        Image: this.image,
        Env: env,
        Labels: { [LABELS.owner]: this.owner, [LABELS.hostname]: name, [LABELS.port]: String(port) },
        ...(this.hostMode ? {} : { Hostname: cname }),
        HostConfig: { NetworkMode: this.network, RestartPolicy: { Name: 'no' } },
        ...(this.hostMode ? {} : { NetworkingConfig: { EndpointsConfig: { [this.network]: { Aliases: aliases } } } }),
      })
    } catch (err) {
      const status = statusOf(err)
      if (status === 409) {
        throw new DockerProviderError(
          'NAME_CONFLICT',
          `container name ${cname} is already in use by another container (not one this provider runs); remove it (docker rm -f ${cname}) or use another hostname`,
          { cause: err },
        )
      }
      if (status === 404 && /image/i.test(engineMessage(err))) throw imageMissing(this.image, err)
      throw this.engineError(err, `creating container ${cname}`)
    }
    const host = this.hostMode ? '127.0.0.1' : cname
    try {
      await container.start()
      await this.waitReady(container, host, port)
    } catch (err) {
      await removeQuietly(container)
      if (err instanceof PortTaken || err instanceof DockerProviderError) throw err
      throw this.engineError(err, `starting container ${cname}`)
    }
    return { handle: { name, host, port, id: container.id }, container, stopping: false }
  }

  /** Poll the heartbeat until 200; check the container now and then so a crash fails fast. */
  private async waitReady(container: Docker.Container, host: string, port: number): Promise<void> {
    const deadline = Date.now() + this.startTimeoutMs
    let lastError = 'no answer yet'
    let lastInspect = 0
    for (;;) {
      const left = deadline - Date.now()
      const probe = await probeHeartbeat(host, port, Math.max(50, Math.min(1000, left)))
      if (probe === true) {
        // On host networking another process could own the port; make sure ours is alive.
        if (this.hostMode) await this.assertRunning(container)
        return
      }
      lastError = probe
      if (Date.now() - lastInspect >= 500) {
        lastInspect = Date.now()
        await this.assertRunning(container)
      }
      if (Date.now() >= deadline) {
        const hint = /ENOTFOUND|EAI_AGAIN/.test(lastError)
          ? `; ${host} resolves only on the Docker network ${this.network}, so the balancer must run in a container on it (docker compose up), or use --network host`
          : ''
        throw new DockerProviderError('START_FAILED', `no heartbeat from ${host}:${port} within ${this.startTimeoutMs} ms (last: ${lastError})${hint}`)
      }
      await sleep(Math.min(100, Math.max(0, deadline - Date.now())))
    }
  }

  private async assertRunning(container: Docker.Container): Promise<void> {
    const info = await container.inspect()
    if (info.State.Running) return
    const logs = await containerLogs(container)
    if (this.hostMode && logs.includes('EADDRINUSE')) throw new PortTaken(`replica could not bind its port: ${lastLine(logs)}`)
    throw new DockerProviderError(
      'START_FAILED',
      `container exited during start (exit code ${info.State.ExitCode}${info.State.Error ? `, ${info.State.Error}` : ''})${logs ? `: ${lastLine(logs)}` : ''}`,
    )
  }

  async stop(name: string): Promise<void> {
    const replica = this.replicas.get(name)
    if (!replica) return
    replica.stopping = true
    try {
      await stopAndRemove(replica.container)
    } catch (err) {
      throw this.engineError(err, `removing container ${containerName(this.owner, name)}`)
    } finally {
      this.replicas.delete(name)
      if (this.hostMode) this.ports.delete(replica.handle.port)
    }
  }

  list(): ReplicaHandle[] {
    return [...this.replicas.values()].map((r) => r.handle)
  }

  /** The container id of a replica, for tests and chaos runs that kill it from outside. */
  containerOf(name: string): string | undefined {
    return this.replicas.get(name)?.handle.id
  }

  onExit(listener: (name: string) => void): void {
    this.exitListeners.push(listener)
    this.watchEvents()
  }

  async close(): Promise<void> {
    this.closed = true
    this.events?.removeAllListeners('data')
    ;(this.events as unknown as { destroy?: () => void } | undefined)?.destroy?.()
    this.events = undefined
    await Promise.allSettled(this.starting.values())
    if (this.keep) {
      this.replicas.clear()
      this.ports.clear()
      return
    }
    const names = [...this.replicas.keys()]
    const results = await Promise.allSettled(names.map((name) => this.stop(name)))
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected')
    if (failed) throw failed.reason
  }

  /** Create the bridge network if missing; an existing one is used as it is. */
  private async ensureNetwork(): Promise<void> {
    try {
      await this.docker.getNetwork(this.network).inspect()
      return
    } catch (err) {
      if (statusOf(err) !== 404) throw this.engineError(err, `inspecting network ${this.network}`)
    }
    try {
      await this.docker.createNetwork({ Name: this.network, Driver: 'bridge', CheckDuplicate: true, Labels: { 'ring-balancer.created-by': this.owner } })
    } catch (err) {
      // Someone (compose, a second balancer) made it first: fine.
      if (statusOf(err) === 409) return
      throw this.engineError(err, `creating network ${this.network}`)
    }
  }

  /**
   * Containers labelled with our owner from an earlier run: running ones on our network, made
   * from the current image, that answer their heartbeat are adopted (in creation order); every
   * other one is removed.
   */
  private async adoptOrRemove(): Promise<ReplicaHandle[]> {
    let found: Docker.ContainerInfo[]
    try {
      found = await this.docker.listContainers({ all: true, filters: JSON.stringify({ label: [`${LABELS.owner}=${this.owner}`] }) })
    } catch (err) {
      throw this.engineError(err, 'listing containers')
    }
    found.sort((a, b) => a.Created - b.Created)
    const candidates = await Promise.all(found.map(async (info) => ((await this.adoptable(info)) ? info : undefined)))
    const adopted: ReplicaHandle[] = []
    const remove: Docker.ContainerInfo[] = []
    found.forEach((info, i) => {
      const name = info.Labels[LABELS.hostname]!
      if (candidates[i] && !this.replicas.has(name)) {
        const handle = this.handleOf(info)
        this.replicas.set(name, { handle, container: this.docker.getContainer(info.Id), stopping: false })
        if (this.hostMode) this.ports.add(handle.port)
        adopted.push(handle)
      } else {
        remove.push(info)
      }
    })
    await Promise.all(remove.map((info) => removeQuietly(this.docker.getContainer(info.Id))))
    return adopted
  }

  private async adoptable(info: Docker.ContainerInfo): Promise<boolean> {
    const name = info.Labels[LABELS.hostname]
    const port = Number(info.Labels[LABELS.port])
    if (!name || !Number.isInteger(port) || port <= 0 || info.State !== 'running') return false
    if (info.ImageID !== this.imageId) return false
    const onOurNetwork = this.hostMode ? info.HostConfig.NetworkMode === 'host' : Boolean(info.NetworkSettings?.Networks?.[this.network])
    if (!onOurNetwork || info.Names[0] !== `/${containerName(this.owner, name)}`) return false
    const { host } = this.handleOf(info)
    for (let i = 0; i < 3; i++) {
      if ((await probeHeartbeat(host, port, 1000)) === true) return true
      await sleep(200)
    }
    return false
  }

  private handleOf(info: Docker.ContainerInfo): ReplicaHandle {
    const name = info.Labels[LABELS.hostname]!
    return {
      name,
      host: this.hostMode ? '127.0.0.1' : containerName(this.owner, name),
      port: Number(info.Labels[LABELS.port]),
      id: info.Id,
    }
  }

  /** `die` events of our containers -> exit listeners (a fast path; the health checker decides). */
  private watchEvents(): void {
    if (this.events || !this.initialized || this.closed || this.exitListeners.length === 0) return
    const filters = JSON.stringify({ type: ['container'], event: ['die'], label: [`${LABELS.owner}=${this.owner}`] })
    let buffered = ''
    this.docker.getEvents({ filters }).then(
      (stream) => {
        if (this.closed) return (stream as unknown as { destroy(): void }).destroy()
        this.events = stream
        // Do not keep the process alive just for events.
        ;(stream as unknown as { socket?: { unref?: () => void } }).socket?.unref?.()
        stream.on('error', () => (this.events = undefined))
        stream.on('end', () => (this.events = undefined))
        stream.on('data', (chunk: Buffer) => {
          buffered += chunk.toString('utf8')
          let nl: number
          while ((nl = buffered.indexOf('\n')) !== -1) {
            const line = buffered.slice(0, nl)
            buffered = buffered.slice(nl + 1)
            this.onEvent(line)
          }
        })
      },
      () => undefined,
    )
  }

  private onEvent(line: string): void {
    let id: string | undefined
    try {
      id = (JSON.parse(line) as { id?: string }).id
    } catch {
      return
    }
    for (const replica of this.replicas.values()) {
      if (replica.handle.id !== id || replica.stopping) continue
      for (const listener of this.exitListeners) listener(replica.handle.name)
    }
  }

  /** An engine failure as an error that says what to do. */
  private engineError(err: unknown, doing?: string): DockerProviderError {
    if (err instanceof DockerProviderError) return err
    const e = err as NodeJS.ErrnoException
    const where = engineAddress(this.docker)
    if (e?.code === 'EACCES') {
      return new DockerProviderError(
        'ENGINE_UNREACHABLE',
        `permission denied on the Docker engine at ${where}: run the balancer as root or as a member of the socket's group (see the Dockerfile), or use --provider process`,
        { cause: err },
      )
    }
    if (e && typeof e.code === 'string' && ['ENOENT', 'ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'ENOTFOUND', 'EHOSTUNREACH'].includes(e.code)) {
      return new DockerProviderError(
        'ENGINE_UNREACHABLE',
        `cannot reach the Docker engine at ${where} (${e.code}): start Docker (scripts/docker-up.sh), or when the balancer runs in a container mount the socket (-v /var/run/docker.sock:/var/run/docker.sock), or use --provider process`,
        { cause: err },
      )
    }
    return new DockerProviderError('ENGINE_ERROR', `Docker engine error${doing ? ` while ${doing}` : ''}: ${engineMessage(err)}`, { cause: err })
  }
}

function imageMissing(image: string, cause: unknown): DockerProviderError {
  return new DockerProviderError(
    'IMAGE_MISSING',
    `replica image ${image} not found on the Docker engine: build it with scripts/docker-build-images.sh replica (or: docker build -f replica/Dockerfile -t ${image} .), or run docker compose build`,
    { cause },
  )
}

function statusOf(err: unknown): number | undefined {
  return (err as { statusCode?: number } | undefined)?.statusCode
}

/** The engine's own message (`{"message": ...}` body) when there is one. */
function engineMessage(err: unknown): string {
  const e = err as { json?: { message?: string }; message?: string } | undefined
  return e?.json?.message ?? e?.message ?? String(err)
}

function engineAddress(docker: Docker): string {
  const modem = docker.modem as { socketPath?: string; host?: string; port?: number | string; protocol?: string }
  if (modem.socketPath) return `unix://${modem.socketPath}`
  return `${modem.protocol ?? 'http'}://${modem.host ?? '?'}:${modem.port ?? '?'}`
}

async function stopAndRemove(container: Docker.Container): Promise<void> {
  try {
    await container.stop({ t: 5 })
  } catch (err) {
    // 304: already stopped; 404: already gone.
    const status = statusOf(err)
    if (status === 404) return
    if (status !== 304) throw err
  }
  try {
    await container.remove({ force: true, v: true })
  } catch (err) {
    // 404: gone; 409: removal already in progress (e.g. a concurrent clean-up).
    const status = statusOf(err)
    if (status !== 404 && status !== 409) throw err
  }
}

async function removeQuietly(container: Docker.Container): Promise<void> {
  await container.remove({ force: true, v: true }).catch(() => undefined)
}

/** The container's last output (stdout and stderr demultiplexed), trimmed. */
async function containerLogs(container: Docker.Container): Promise<string> {
  try {
    const raw = (await container.logs({ stdout: true, stderr: true, tail: 20, follow: false })) as unknown as Buffer
    const out: Buffer[] = []
    // Without a TTY the engine frames each chunk: [stream, 0, 0, 0, size (4 bytes BE)] + payload.
    const framed = raw.length >= 8 && raw[0]! <= 2 && raw[1] === 0 && raw[2] === 0 && raw[3] === 0
    let i = 0
    while (framed && i + 8 <= raw.length) {
      const size = raw.readUInt32BE(i + 4)
      out.push(raw.subarray(i + 8, i + 8 + size))
      i += 8 + size
    }
    return (i === 0 ? raw : Buffer.concat(out)).toString('utf8').trim()
  } catch {
    return ''
  }
}

function lastLine(text: string): string {
  const lines = text.split('\n').map((l) => l.trim()).filter(Boolean)
  const error = lines.find((l) => /Error|EADDRINUSE/.test(l))
  return (error ?? lines[lines.length - 1] ?? '').slice(0, 300)
}

/** One probe: true on a 200, else the reason (never rejects). */
function probeHeartbeat(host: string, port: number, timeoutMs: number): Promise<true | string> {
  return new Promise((resolve) => {
    const req = request({ host, port, path: '/heartbeat', method: 'GET', agent: false, timeout: timeoutMs }, (res) => {
      res.resume()
      res.on('end', () => resolve(res.statusCode === 200 ? true : `HTTP ${res.statusCode}`))
      res.on('error', (err) => resolve(err.message))
    })
    req.on('timeout', () => req.destroy(new Error(`timed out after ${timeoutMs} ms`)))
    req.on('error', (err: NodeJS.ErrnoException) => resolve(err.code ? `${err.code} ${host}:${port}` : err.message))
    req.end()
  })
}

/** A loopback port free right now (a race with its next user is handled by retrying). */
function freeLoopbackPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.unref()
    server.on('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const address = server.address()
      const port = typeof address === 'object' && address ? address.port : 0
      server.close(() => resolve(port))
    })
  })
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms))
}
