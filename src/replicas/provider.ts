/**
 * The replica provider interface: how the balancer starts and stops replica servers.
 * The balancer decides membership; a provider only makes replicas exist or stop existing.
 * Implementations: `process` (child processes on loopback, the embedded default),
 * `docker` (containers through dockerode) and `swarm` (Swarm services through dockerode).
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
  /** Provider-specific identity (pid, container id, service id), for logs and clean-up. */
  readonly id: string
  /** Its weight on the ring, when the provider recorded one (Swarm services carry it as a label). */
  readonly weight?: number
}

export interface StartOptions {
  /** The replica's weight on the ring, for providers that record it (default 1). */
  readonly weight?: number
}

/**
 * What a provider saw change outside the balancer's own requests (the Swarm provider):
 * `moved`: Swarm runs the replica's task somewhere else now (same name, new address);
 * `appeared` / `gone`: on a follower, the writer added or removed a replica.
 */
export type ReplicaChange =
  | { readonly kind: 'moved'; readonly handle: ReplicaHandle }
  | { readonly kind: 'appeared'; readonly handle: ReplicaHandle }
  | { readonly kind: 'gone'; readonly name: string }

export interface ReplicaProvider {
  readonly kind: string
  /**
   * Set when another balancer decides membership (a Swarm follower, `--swarm-follow`): it
   * returns who that writer is. The balancer then refuses /add and /rm, starts and replaces
   * nothing, and takes its members from `onChange`.
   */
  readonly follows?: () => string
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
  start(name: string, options?: StartOptions): Promise<ReplicaHandle>
  /** Stop and remove the replica. Resolves when it is gone; stopping an unknown name is a no-op. */
  stop(name: string): Promise<void>
  /** The replicas this provider currently runs (in the order they became ready). */
  list(): ReplicaHandle[]
  /**
   * Register a listener told when a replica ends on its own (process exit, container death).
   * Optional fast path; the health checker is the authority.
   */
  onExit(listener: (name: string) => void): void
  /** Optional: register a listener told about replicas that moved, appeared or went (see ReplicaChange). */
  onChange?(listener: (change: ReplicaChange) => void): void
  /** Stop every replica this provider started (shutdown). */
  close(): Promise<void>
}
