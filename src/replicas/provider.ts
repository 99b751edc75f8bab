/**
 * The replica provider interface: how the balancer starts and stops replica servers.
 * The balancer decides membership; a provider only makes replicas exist or stop existing.
 * Implementations: `process` (child processes on loopback, the embedded default) and
 * `docker` (containers through dockerode).
 */

/** ms a new replica may take to answer its heartbeat (config.ts's --start-timeout default too). */
export const DEFAULT_START_TIMEOUT_MS = 15_000

/** A running replica as its provider knows it. */
export interface ReplicaHandle {
  /** The replica's hostname as users see it (`Server 1`); also its SERVER_ID. */
  readonly name: string
  /** Address the balancer connects to (loopback for processes and host-networked containers). */
  readonly host: string
  readonly port: number
  /** Provider-specific identity (pid, container id), for logs and clean-up. */
  readonly id: string
}

export interface ReplicaProvider {
  readonly kind: string
  /**
   * Prepare the provider: for Docker, reach the engine, create the network, adopt or remove
   * containers left by an earlier run. Resolves with the replicas it adopted (alive and owned
   * by this balancer), which the balancer takes as members before starting any more; the
   * process provider adopts nothing. Throws a clear, actionable error when it cannot start.
   */
  init(): Promise<ReplicaHandle[]>
  /**
   * Start one replica named `name` and resolve once its `GET /heartbeat` answers 200.
   * On failure nothing is left behind and the promise rejects with the reason.
   */
  start(name: string): Promise<ReplicaHandle>
  /** Stop and remove the replica. Resolves when it is gone; stopping an unknown name is a no-op. */
  stop(name: string): Promise<void>
  /** The replicas this provider currently runs (in the order they became ready). */
  list(): ReplicaHandle[]
  /**
   * Register a listener told when a replica ends on its own (process exit, container death).
   * Optional fast path; the health checker is the authority.
   */
  onExit(listener: (name: string) => void): void
  /** Stop every replica this provider started (shutdown). */
  close(): Promise<void>
}
