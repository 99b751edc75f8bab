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
 * On close() it removes its containers, or leaves them running for the next start to adopt
 * (`keep`). Failures become DockerProviderError with a stable `code` (errors.ts).
 */
import Docker from 'dockerode'
import type { ReplicaHandle, ReplicaProvider } from '../provider.js'
import { EngineProvider, type EngineProviderOptions } from './engine-provider.js'
import { containerLogs, lastLine, removeQuietly, stopAndRemove } from './containers.js'
import { DockerProviderError, PortTaken, engineError, engineMessage, imageMissing, nameConflict, statusOf } from './errors.js'
import { DieEvents } from './events.js'
import { LABELS, REPLICA_PORT, containerName, networkAliases } from './names.js'
import { setTimeout as sleep } from 'node:timers/promises'
import { heartbeatReason } from '../heartbeat.js'
import { freeLoopbackPort } from '../free-port.js'

/** See EngineProviderOptions; `network` may also be `host` (host networking, loopback ports). */
export type DockerProviderOptions = EngineProviderOptions

interface Replica {
  handle: ReplicaHandle
  container: Docker.Container
  /** Set while we stop it ourselves, so its `die` event is not reported as a death. */
  stopping: boolean
}

export class DockerProvider extends EngineProvider implements ReplicaProvider {
  readonly kind = 'docker'
  private readonly replicas = new Map<string, Replica>()
  private readonly starting = new Map<string, Promise<ReplicaHandle>>()
  private readonly exitListeners: Array<(name: string) => void> = []
  /** Loopback ports of host-networked replicas, running or starting: never handed out twice. */
  private readonly ports = new Set<number>()
  private readonly events: DieEvents
  private imageId: string | undefined

  constructor(options: DockerProviderOptions) {
    super(options)
    this.events = new DieEvents(this.docker, this.owner, (id) => this.onDie(id))
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
      throw engineError(this.docker, err)
    }
    try {
      this.imageId = (await this.docker.getImage(this.image).inspect()).Id
    } catch (err) {
      if (statusOf(err) === 404) throw imageMissing(this.image, err)
      throw engineError(this.docker, err, `inspecting image ${this.image}`)
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
    // Creating a container can take seconds (the vfs driver copies the image): it counts.
    const deadline = Date.now() + this.startTimeoutMs
    const env = [`SERVER_ID=${name}`, `PORT=${port}`]
    if (this.hostMode) env.push('HOST=127.0.0.1')
    let container: Docker.Container
    try {
      container = await this.docker.createContainer({
        name: cname,
        Image: this.image,
        Env: env,
        Labels: { [LABELS.owner]: this.owner, [LABELS.hostname]: name, [LABELS.port]: String(port) },
        ...(this.hostMode ? {} : { Hostname: cname }),
        HostConfig: { NetworkMode: this.network, RestartPolicy: { Name: 'no' } },
        ...(this.hostMode ? {} : { NetworkingConfig: { EndpointsConfig: { [this.network]: { Aliases: networkAliases(cname, name) } } } }),
      })
    } catch (err) {
      const status = statusOf(err)
      if (status === 409) throw nameConflict(cname, err)
      if (status === 404 && /image/i.test(engineMessage(err))) throw imageMissing(this.image, err)
      throw engineError(this.docker, err, `creating container ${cname}`)
    }
    const host = this.hostMode ? '127.0.0.1' : cname
    try {
      await container.start()
      await this.waitReady(container, host, port, deadline)
    } catch (err) {
      await removeQuietly(container)
      if (err instanceof PortTaken || err instanceof DockerProviderError) throw err
      throw engineError(this.docker, err, `starting container ${cname}`)
    }
    return { handle: { name, host, port, id: container.id }, container, stopping: false }
  }

  /**
   * Poll the heartbeat until 200 or the deadline (checked before each probe, so a replica
   * never joins after it); check the container now and then so a crash fails fast.
   */
  private async waitReady(container: Docker.Container, host: string, port: number, deadline: number): Promise<void> {
    let lastError = 'no answer yet'
    let lastInspect = 0
    for (;;) {
      const left = deadline - Date.now()
      if (left <= 0) {
        const hint = /ENOTFOUND|EAI_AGAIN/.test(lastError)
          ? `; ${host} resolves only on the Docker network ${this.network}, so the balancer must run in a container on it (docker compose up), or use --network host`
          : ''
        throw new DockerProviderError('START_FAILED', `no heartbeat from ${host}:${port} within ${this.startTimeoutMs} ms (last: ${lastError})${hint}`)
      }
      const probe = await heartbeatReason(host, port, Math.max(50, Math.min(1000, left)))
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
      throw engineError(this.docker, err, `removing container ${containerName(this.owner, name)}`)
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

  /** Remove every container, or with `keep` leave them running for the next start to adopt. */
  async close(): Promise<void> {
    this.closed = true
    this.events.close()
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
      if (statusOf(err) !== 404) throw engineError(this.docker, err, `inspecting network ${this.network}`)
    }
    try {
      await this.docker.createNetwork({ Name: this.network, Driver: 'bridge', CheckDuplicate: true, Labels: { 'ring-balancer.created-by': this.owner } })
    } catch (err) {
      // Someone (compose, a second balancer) made it first: fine.
      if (statusOf(err) === 409) return
      throw engineError(this.docker, err, `creating network ${this.network}`)
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
      throw engineError(this.docker, err, 'listing containers')
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
      if ((await heartbeatReason(host, port, 1000)) === true) return true
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

  /** Die events matter once there is a listener and something to watch. */
  private watchEvents(): void {
    if (this.initialized && !this.closed && this.exitListeners.length > 0) this.events.watch()
  }

  /** A container of ours died: tell the listeners, unless we are stopping it ourselves. */
  private onDie(id: string): void {
    for (const replica of this.replicas.values()) {
      if (replica.handle.id !== id || replica.stopping) continue
      for (const listener of this.exitListeners) listener(replica.handle.name)
    }
  }
}
