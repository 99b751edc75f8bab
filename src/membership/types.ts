/**
 * The words membership speaks to the rest of the app: the /rep body, the events a balancer
 * emits, a member's health, and how a transport is made for a replica that joins.
 */
import type { Upstream } from '../upstream/upstream.js'
import type { ReplicaHandle } from '../replicas/provider.js'

export interface Membership {
  N: number
  replicas: string[]
}

export interface BalancerEvents {
  /** A replica joined the ring (after its heartbeat answered). */
  joined: [upstream: Upstream]
  /**
   * A replica left (removed or dead: after it was stopped; shutdown: after provider.close(),
   * which may leave it running for a later start to adopt, e.g. --docker-keep; moved: its
   * provider runs it at another address now, and a new Upstream with the same name joined).
   */
  left: [name: string, reason: 'removed' | 'dead' | 'shutdown' | 'moved', upstream: Upstream]
  /** A connection to it failed while proxying: out of the ring until the checker decides. */
  suspect: [upstream: Upstream]
  /** A suspect the health checker found healthy is back in the ring. */
  restored: [upstream: Upstream]
  /** Found dead: out of the ring, its in-flight requests aborted (and retried where safe). */
  dead: [upstream: Upstream]
  /** A dead replica's replacement joined, so N is back. */
  replaced: [dead: string, fresh: string]
  /** Something went wrong outside a request (e.g. a replacement failed to start). */
  error: [err: Error]
}

/** Builds the transport for a replica that joins (app.ts passes one sharing its batcher and stall clock). */
export type TransportFactory = (handle: ReplicaHandle) => Upstream

/**
 * A member's health as membership sees it: `up`, `suspect` (a connection to it failed; out of
 * the ring until the health checker confirms or clears it) or `dead` (out for good, being
 * replaced). Owned by membership, not by the transport: only membership changes it.
 */
export type MemberState = 'up' | 'suspect' | 'dead'
