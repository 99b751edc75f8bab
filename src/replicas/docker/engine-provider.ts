/**
 * What the Docker and Swarm providers share: the engine client, the replica image, the
 * network, the owner label, whether replicas outlive the balancer, the start timeout (with
 * their defaults from defaults.ts, which config.ts shows too), and the lifecycle state.
 */
import Docker from 'dockerode'
import { DEFAULT_START_TIMEOUT_MS } from '../provider.js'
import { DEFAULT_NETWORK, DEFAULT_OWNER } from './defaults.js'

export interface EngineProviderOptions {
  /** Replica image; with Swarm every node that may run a replica needs it. */
  image: string
  /** The replicas' network, created if missing (default `net1`): a bridge (docker; or `host`), an attachable overlay (swarm). */
  network?: string
  /** Label value identifying this balancer's containers or services (default `ring-balancer`). */
  owner?: string
  /** Leave the replicas running on close(), for a later run to adopt (default false). */
  keep?: boolean
  /** How long a new replica has, from its creation, to answer `GET /heartbeat` with 200 (default 15000 ms). */
  startTimeoutMs?: number
  /** Engine client; default `new Docker()` (DOCKER_HOST or /var/run/docker.sock). */
  docker?: Docker
}

export abstract class EngineProvider {
  readonly docker: Docker
  readonly image: string
  readonly network: string
  readonly owner: string
  readonly keep: boolean
  readonly startTimeoutMs: number
  /** init() has run (it must, once, before anything else). */
  protected initialized = false
  /** close() has begun: nothing new starts. */
  protected closed = false

  constructor(options: EngineProviderOptions) {
    this.docker = options.docker ?? new Docker()
    this.image = options.image
    this.network = options.network ?? DEFAULT_NETWORK
    this.owner = options.owner ?? DEFAULT_OWNER
    this.keep = options.keep ?? false
    this.startTimeoutMs = options.startTimeoutMs ?? DEFAULT_START_TIMEOUT_MS
  }
}
