/**
 * The `swarm` replica provider: each replica is a Swarm service of one task (spec.ts), made
 * through dockerode on a manager node; Swarm picks the node. Services carry the same labels
 * as the Docker provider's containers (owner, hostname, port) and the same names
 * (`rb-<slug>-<hash>`), so a restarted balancer adopts them.
 *
 * The balancer reaches each task at its own address (reach.ts): its overlay address when the
 * balancer runs on the overlay, or the port it publishes in host mode when the balancer runs on
 * a host. Every `pollMs` (and at once when one of the owner's task containers dies on this
 * node) the provider compares its replicas with the Swarm state:
 *   - a service removed by someone else, or whose task ended, is reported through `onExit`
 *     (the balancer replaces it with a new name; Swarm's restart policy is `none`);
 *   - a task that Swarm runs somewhere else now (rescheduled to another node, or a forced
 *     update) is followed: `onChange({ kind: 'moved' })` with the new address, same name.
 *
 * A follower (`follow: true`, `--swarm-follow`) never creates or removes a service: it adopts
 * the owner's running services at start and then reports `appeared` / `gone` as the writer
 * (the one balancer that changes membership) adds and removes them.
 */
import { hostname as osHostname } from 'node:os'
import Docker from 'dockerode'
import type { ReplicaChange, ReplicaHandle, ReplicaProvider, StartOptions } from '../provider.js'
import { DockerProviderError, engineError, imageMissing, nameConflict, statusOf } from '../docker/errors.js'
import { DieEvents } from '../docker/events.js'
import { EngineProvider, type EngineProviderOptions } from '../docker/engine-provider.js'
import { LABELS, REPLICA_PORT, containerName } from '../docker/names.js'
import { setTimeout as sleep } from 'node:timers/promises'
import { heartbeatReason } from '../heartbeat.js'
import { MAX_WEIGHT } from '../../ring/ring.js'
import { validateHostname } from '../../membership/names.js'
import { resolveReach, type SwarmReach } from './reach.js'
import { TASK_OWNER_LABEL, WEIGHT_LABEL, WRITER_LABEL, replicaServiceSpec } from './spec.js'
import { isRunning, isTerminal, liveTask, overlayAddress, publishedPort, taskError, type SwarmTask } from './tasks.js'

export interface SwarmProviderOptions extends EngineProviderOptions {
  /** How the balancer reaches the tasks (default `auto`, see reach.ts). */
  reach?: SwarmReach
  /** Follow the services another balancer (the writer) makes instead of making any (default false). */
  follow?: boolean
  /** ms between two comparisons with the Swarm state (default 1000). */
  pollMs?: number
  /** The name a writer records on its services, which followers quote (default os.hostname()). */
  identity?: string
}

interface Replica {
  handle: ReplicaHandle
  serviceId: string
  /** Set while we remove it ourselves, or once its end was reported: not reported (again). */
  stopping: boolean
}

interface Network {
  id: string
  name: string
  subnets: string[]
}

export class SwarmProvider extends EngineProvider implements ReplicaProvider {
  readonly kind = 'swarm'
  readonly follow: boolean
  readonly pollMs: number
  readonly identity: string
  /** Set on a follower (see ReplicaProvider.follows): the writer named on the services it saw. */
  readonly follows?: () => string
  private readonly requestedReach: SwarmReach
  /** `overlay` or `host`, decided by init(). */
  reach: 'overlay' | 'host' = 'host'
  private readonly replicas = new Map<string, Replica>()
  private readonly starting = new Map<string, Promise<ReplicaHandle>>()
  private readonly exitListeners: Array<(name: string) => void> = []
  private readonly changeListeners: Array<(change: ReplicaChange) => void> = []
  private readonly events: DieEvents
  /** Addresses of other nodes (host reach), by node id. */
  private readonly nodeAddresses = new Map<string, string>()
  /** The writer named on the services seen last (followers quote it). */
  private writerSeen: string | undefined
  private net: Network | undefined
  private nodeId = ''
  private timer: NodeJS.Timeout | undefined
  private polling: Promise<void> | undefined
  private pollAgain = false

  constructor(options: SwarmProviderOptions) {
    super(options)
    this.follow = options.follow ?? false
    this.pollMs = options.pollMs ?? 1000
    this.identity = options.identity ?? osHostname()
    this.requestedReach = options.reach ?? 'auto'
    this.events = new DieEvents(this.docker, this.owner, () => this.pollSoon(), TASK_OWNER_LABEL)
    if (this.follow) this.follows = () => this.writerSeen ?? `the writer of owner '${this.owner}'`
  }

  async init(): Promise<ReplicaHandle[]> {
    if (this.initialized) return []
    if (this.network === 'host' || this.network === 'bridge' || this.network === 'none') {
      throw new DockerProviderError('BAD_NETWORK', `network ${JSON.stringify(this.network)} cannot be used with --provider swarm: replicas need an overlay network (e.g. --network rb-overlay)`)
    }
    let info: { Swarm?: { LocalNodeState?: string; ControlAvailable?: boolean; NodeID?: string } }
    try {
      await this.docker.ping()
      info = await this.docker.info()
    } catch (err) {
      throw engineError(this.docker, err)
    }
    if (info.Swarm?.LocalNodeState !== 'active' || !info.Swarm.ControlAvailable) {
      throw new DockerProviderError(
        'NOT_SWARM_MANAGER',
        `the Docker engine is not a Swarm manager (swarm state: ${info.Swarm?.LocalNodeState ?? 'unknown'}): run docker swarm init (or run the balancer on a manager node: placement constraint node.role == manager), or use --provider docker`,
      )
    }
    this.nodeId = info.Swarm.NodeID ?? ''
    if (!this.follow) await this.checkImage()
    this.net = await this.ensureNetwork()
    this.reach = resolveReach(this.requestedReach, this.net.subnets)
    const adopted = await this.adoptOrRemove()
    this.initialized = true
    this.events.watch()
    this.schedulePoll()
    return adopted
  }

  start(name: string, options: StartOptions = {}): Promise<ReplicaHandle> {
    if (this.closed) return Promise.reject(new DockerProviderError('CLOSED', 'the Swarm provider is closed'))
    if (!this.initialized) return Promise.reject(new DockerProviderError('NOT_INITIALIZED', 'SwarmProvider.init() must run before start()'))
    if (this.follows) return Promise.reject(new DockerProviderError('FOLLOWER', `this balancer follows ${this.follows()} and starts no replica`))
    if (this.replicas.has(name) || this.starting.has(name)) {
      return Promise.reject(new DockerProviderError('ALREADY_RUNNING', `replica ${JSON.stringify(name)} is already running (service ${containerName(this.owner, name)})`))
    }
    const pending = this.create(name, options.weight ?? 1).finally(() => this.starting.delete(name))
    this.starting.set(name, pending)
    return pending
  }

  /** Create the service, wait for its task and heartbeat; on any failure remove the service and throw. */
  private async create(name: string, weight: number): Promise<ReplicaHandle> {
    // Creating the task's container can take seconds (the vfs driver copies the image): it counts.
    const deadline = Date.now() + this.startTimeoutMs
    const service = containerName(this.owner, name)
    const spec = replicaServiceSpec({ service, hostname: name, owner: this.owner, writer: this.identity, weight, image: this.image, network: this.net!.name, publish: this.reach === 'host' })
    let serviceId: string
    try {
      serviceId = (await this.docker.createService(spec)).id
    } catch (err) {
      if (statusOf(err) === 409) throw nameConflict(service, err, 'service')
      throw engineError(this.docker, err, `creating service ${service}`)
    }
    try {
      const handle = { ...(await this.waitReady(name, serviceId, deadline)), weight }
      if (this.closed) throw new DockerProviderError('CLOSED', 'the Swarm provider was closed while the replica started')
      this.replicas.set(name, { handle, serviceId, stopping: false })
      return handle
    } catch (err) {
      await this.removeService(serviceId).catch(() => undefined)
      if (err instanceof DockerProviderError) throw err
      throw engineError(this.docker, err, `starting service ${service}`)
    }
  }

  /**
   * Until the deadline: wait for the service's task to run, then for its heartbeat. A task
   * that ends on the way (no such image, a crash) fails the start at once with Swarm's reason.
   */
  private async waitReady(name: string, serviceId: string, deadline: number): Promise<ReplicaHandle> {
    let last = 'no task yet'
    for (;;) {
      const left = deadline - Date.now()
      if (left <= 0) throw new DockerProviderError('START_FAILED', `no heartbeat from service ${containerName(this.owner, name)} within ${this.startTimeoutMs} ms (last: ${last})`)
      const tasks = (await this.docker.listTasks({ filters: JSON.stringify({ service: [serviceId] }) })) as SwarmTask[]
      const live = liveTask(tasks, serviceId)
      const ended = tasks.find(isTerminal)
      if (!live && ended) {
        const reason = taskError(ended)
        if (/No such image/i.test(reason)) throw imageMissing(this.image, new Error(reason))
        throw new DockerProviderError('START_FAILED', `the service's ${reason}`)
      }
      if (live && isRunning(live)) {
        const address = await this.addressOf(live)
        if (!address) {
          last = `task ${live.ID} has no ${this.reach === 'overlay' ? `address on ${this.network}` : 'published port'}`
        } else {
          const probe = await heartbeatReason(address.host, address.port, Math.max(50, Math.min(1000, left)))
          if (probe === true) return { name, ...address, id: serviceId }
          last = probe
        }
      } else if (live) {
        last = `task ${live.Status?.State ?? 'unknown'}`
      }
      await sleep(Math.min(200, Math.max(0, deadline - Date.now())))
    }
  }

  /** Writer: remove the service and wait until Swarm has no task of it left. Follower: forget it here only. */
  async stop(name: string): Promise<void> {
    const replica = this.replicas.get(name)
    if (!replica) return
    replica.stopping = true
    try {
      if (!this.follow) await this.removeService(replica.serviceId)
    } catch (err) {
      throw engineError(this.docker, err, `removing service ${containerName(this.owner, name)}`)
    } finally {
      this.replicas.delete(name)
    }
  }

  private async removeService(serviceId: string): Promise<void> {
    try {
      await this.docker.getService(serviceId).remove()
    } catch (err) {
      if (statusOf(err) !== 404) throw err
    }
    // The task stops (SIGTERM, up to the grace period) and Swarm then forgets it.
    const deadline = Date.now() + 30_000
    while (Date.now() < deadline) {
      const tasks = (await this.docker.listTasks()) as SwarmTask[]
      if (!tasks.some((t) => t.ServiceID === serviceId)) return
      await sleep(250)
    }
  }

  list(): ReplicaHandle[] {
    return [...this.replicas.values()].map((r) => r.handle)
  }

  /** The service id of a replica (tests and chaos runs act on it from outside). */
  serviceOf(name: string): string | undefined {
    return this.replicas.get(name)?.serviceId
  }

  onExit(listener: (name: string) => void): void {
    this.exitListeners.push(listener)
  }

  onChange(listener: (change: ReplicaChange) => void): void {
    this.changeListeners.push(listener)
  }

  /** Writer: remove every service, or with `keep` leave them running for the next start to adopt. Follower: forget them. */
  async close(): Promise<void> {
    this.closed = true
    this.events.close()
    clearTimeout(this.timer)
    await Promise.allSettled(this.starting.values())
    await this.polling
    if (this.keep || this.follow) {
      this.replicas.clear()
      return
    }
    const results = await Promise.allSettled([...this.replicas.keys()].map((name) => this.stop(name)))
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected')
    if (failed) throw failed.reason
  }

  private async checkImage(): Promise<void> {
    try {
      await this.docker.getImage(this.image).inspect()
    } catch (err) {
      if (statusOf(err) === 404) throw imageMissing(this.image, err)
      throw engineError(this.docker, err, `inspecting image ${this.image}`)
    }
  }

  /** The overlay network, created attachable if missing (so a balancer container can join it too). */
  private async ensureNetwork(): Promise<Network> {
    const inspect = async (): Promise<Network | undefined> => {
      try {
        let info = await this.docker.getNetwork(this.network).inspect()
        // Seen once under load: a network being created or removed answered without a driver.
        for (let i = 0; i < 20 && !info.Driver; i++) {
          await sleep(250)
          info = await this.docker.getNetwork(this.network).inspect()
        }
        if (info.Driver !== 'overlay') {
          throw new DockerProviderError('BAD_NETWORK', `network ${this.network} is a ${info.Driver || 'driverless'} network; Swarm replicas need an overlay network: pick another --network (it is created) or docker network create -d overlay --attachable NAME`)
        }
        const configs = (info.IPAM as { Config?: Array<{ Subnet?: string }> } | undefined)?.Config ?? []
        return { id: info.Id as string, name: info.Name as string, subnets: configs.flatMap((c) => (c.Subnet ? [c.Subnet] : [])) }
      } catch (err) {
        if (statusOf(err) === 404) return undefined
        throw engineError(this.docker, err, `inspecting network ${this.network}`)
      }
    }
    const found = await inspect()
    if (found) return found
    try {
      await this.docker.createNetwork({ Name: this.network, Driver: 'overlay', Attachable: true, CheckDuplicate: true, Labels: { 'ring-balancer.created-by': this.owner } })
    } catch (err) {
      // Someone (the stack, another balancer) made it first: fine.
      if (statusOf(err) !== 409) throw engineError(this.docker, err, `creating network ${this.network}`)
    }
    const made = await inspect()
    if (!made) throw new DockerProviderError('BAD_NETWORK', `network ${this.network} could not be created`)
    return made
  }

  /**
   * The owner's services from an earlier run (or, on a follower, the writer's): those whose
   * task runs, is reachable and answers its heartbeat are adopted, oldest first. A writer
   * removes every other one; a follower leaves them to the writer (and picks them up later
   * if they come up).
   */
  private async adoptOrRemove(): Promise<ReplicaHandle[]> {
    const { services, tasks } = await this.snapshot()
    services.sort((a, b) => (a.CreatedAt ?? '').localeCompare(b.CreatedAt ?? ''))
    const handles = await Promise.all(services.map((s) => this.adoptable(s, tasks)))
    const adopted: ReplicaHandle[] = []
    const remove: string[] = []
    services.forEach((service, i) => {
      const handle = handles[i]
      if (handle && !this.replicas.has(handle.name)) {
        this.replicas.set(handle.name, { handle, serviceId: service.ID, stopping: false })
        adopted.push(handle)
      } else if (!this.follow) {
        remove.push(service.ID)
      }
    })
    await Promise.all(remove.map((id) => this.removeService(id).catch(() => undefined)))
    return adopted
  }

  /**
   * A service's handle when it can join now: labelled with a valid hostname and weight, named as
   * we name it, running, reachable, healthy. (Labels are input like any other: anyone with the
   * socket can make a service that carries our owner label.)
   */
  private async adoptable(service: Docker.Service, tasks: readonly SwarmTask[]): Promise<ReplicaHandle | undefined> {
    const labels = service.Spec?.Labels ?? {}
    const name = labels[LABELS.hostname]
    if (!name || !validName(name) || service.Spec?.Name !== containerName(this.owner, name)) return undefined
    const weight = Number(labels[WEIGHT_LABEL] ?? '1')
    if (!Number.isSafeInteger(weight) || weight < 1 || weight > MAX_WEIGHT) return undefined
    if (labels[WRITER_LABEL]) this.writerSeen = labels[WRITER_LABEL].slice(0, 100)
    // A writer restarted with another image replaces the old replicas (as the Docker provider does).
    if (!this.follow && service.Spec?.TaskTemplate && (service.Spec.TaskTemplate as { ContainerSpec?: { Image?: string } }).ContainerSpec?.Image !== this.image) return undefined
    const live = liveTask(tasks, service.ID)
    if (!live || !isRunning(live)) return undefined
    const address = await this.addressOf(live)
    if (!address) return undefined
    for (let i = 0; i < 3; i++) {
      if ((await heartbeatReason(address.host, address.port, 1000)) === true) return { name, ...address, id: service.ID, weight }
      await sleep(200)
    }
    return undefined
  }

  /** Where the balancer reaches a running task, or undefined if it cannot (yet). */
  private async addressOf(task: SwarmTask): Promise<{ host: string; port: number } | undefined> {
    if (this.reach === 'overlay') {
      const host = overlayAddress(task, this.net!)
      return host ? { host, port: REPLICA_PORT } : undefined
    }
    const port = publishedPort(task, REPLICA_PORT)
    if (!port) return undefined
    if (!task.NodeID || task.NodeID === this.nodeId) return { host: '127.0.0.1', port }
    const host = await this.nodeAddress(task.NodeID)
    return host ? { host, port } : undefined
  }

  private async nodeAddress(nodeId: string): Promise<string | undefined> {
    let address = this.nodeAddresses.get(nodeId)
    if (address) return address
    try {
      const node = (await this.docker.getNode(nodeId).inspect()) as { Status?: { Addr?: string } }
      address = node.Status?.Addr
    } catch {
      return undefined
    }
    if (address) this.nodeAddresses.set(nodeId, address)
    return address
  }

  /**
   * The owner's services and every task, in two calls. (The engine's task filters cannot say
   * "desired state ready or running", and a filter by service fails when one of them was just
   * removed; Swarm keeps only a few old tasks per service, so the whole list stays small.)
   */
  private async snapshot(): Promise<{ services: Docker.Service[]; tasks: SwarmTask[] }> {
    try {
      const [services, tasks] = await Promise.all([
        this.docker.listServices({ filters: JSON.stringify({ label: [`${LABELS.owner}=${this.owner}`] }) }),
        this.docker.listTasks() as Promise<SwarmTask[]>,
      ])
      return { services, tasks }
    } catch (err) {
      throw engineError(this.docker, err, 'listing services')
    }
  }

  private schedulePoll(): void {
    if (this.closed) return
    clearTimeout(this.timer)
    this.timer = setTimeout(() => this.pollSoon(), this.pollMs)
    this.timer.unref()
  }

  /** Compare with the Swarm state now (one comparison at a time; a request during one runs another after it). */
  private pollSoon(): void {
    if (this.closed || !this.initialized) return
    if (this.polling) {
      this.pollAgain = true
      return
    }
    this.polling = this.reconcile()
      .catch(() => undefined) // the engine is briefly unreachable: the next poll tries again
      .finally(() => {
        this.polling = undefined
        if (this.pollAgain) {
          this.pollAgain = false
          this.pollSoon()
        } else {
          this.schedulePoll()
        }
      })
  }

  private async reconcile(): Promise<void> {
    const { services, tasks } = await this.snapshot()
    if (this.closed) return
    const byId = new Map(services.map((s) => [s.ID, s]))
    for (const [name, replica] of this.replicas) {
      if (replica.stopping) continue
      const live = byId.has(replica.serviceId) ? liveTask(tasks, replica.serviceId) : undefined
      if (!live) {
        this.ended(name, replica)
        continue
      }
      if (!isRunning(live)) continue // rescheduled and starting: keep the old address until it runs
      const address = await this.addressOf(live)
      if (!address || (address.host === replica.handle.host && address.port === replica.handle.port)) continue
      // Its new task runs; it joins at its new address once it answers there (else: next poll).
      if ((await heartbeatReason(address.host, address.port, 1000)) !== true) continue
      if (!this.closed && this.replicas.get(name) === replica && !replica.stopping) {
        replica.handle = { ...replica.handle, ...address }
        this.tell({ kind: 'moved', handle: replica.handle })
      }
    }
    if (this.follow) await this.discover(services, tasks)
  }

  /** Its service was removed or its task ended: a writer reports a death, a follower that it is gone. */
  private ended(name: string, replica: Replica): void {
    if (this.follow) {
      this.replicas.delete(name)
      this.tell({ kind: 'gone', name })
      return
    }
    replica.stopping = true
    for (const listener of this.exitListeners) listener(name)
  }

  /** Follower: the writer's services we do not follow yet, once running and healthy. */
  private async discover(services: Docker.Service[], tasks: SwarmTask[]): Promise<void> {
    const known = new Set([...this.replicas.values()].map((r) => r.serviceId))
    const fresh = services.filter((s) => !known.has(s.ID)).sort((a, b) => (a.CreatedAt ?? '').localeCompare(b.CreatedAt ?? ''))
    for (const service of fresh) {
      const handle = await this.adoptable(service, tasks)
      if (!handle || this.closed || this.replicas.has(handle.name)) continue
      this.replicas.set(handle.name, { handle, serviceId: service.ID, stopping: false })
      this.tell({ kind: 'appeared', handle })
    }
  }

  private tell(change: ReplicaChange): void {
    for (const listener of this.changeListeners) listener(change)
  }
}

function validName(name: string): boolean {
  try {
    validateHostname(name)
    return true
  } catch {
    return false
  }
}
