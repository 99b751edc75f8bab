/**
 * Membership as the primary posts it to every worker (Envoy's model: the main thread owns
 * membership and health, workers read an immutable copy). A snapshot is whole, not a diff:
 * the full member list with each member's address, weight and state, the members' join order
 * for /rep, and the ring's placements, so a worker rebuilds exactly the primary's table
 * (HashRing.restore) whatever the preset. Versions only grow; a worker applies only a newer
 * one and acknowledges it.
 */
import type { Balancer } from '../membership/balancer.js'
import type { Placement } from '../ring/ring.js'
import type { Upstream } from '../upstream/upstream.js'

/**
 * `active`: in the ring. `suspect`: out of the ring until the primary's checker decides (its
 * connections stay). `draining`: leaving (/rm, shutdown): no new requests, in-flight ones
 * finish. `down`: found dead: its connections are closed at once (in-flight requests fail and
 * are retried where safe).
 */
export type MemberState = 'active' | 'suspect' | 'draining' | 'down'

export interface MemberEntry {
  readonly name: string
  readonly host: string
  readonly port: number
  readonly weight: number
  readonly state: MemberState
}

export interface Snapshot {
  readonly version: number
  /** GET /rep's list: members in join order. */
  readonly replicas: readonly string[]
  readonly members: readonly MemberEntry[]
  /** The ring's members in its join order, each where the primary placed it. */
  readonly ring: readonly Placement[]
  /** The primary's Balancer.tableDigest(), for workers (and tests) to compare with their own. */
  readonly digest: string
}

/** A replica at one address: a member that moved (Swarm) is a new one, its old connections drain. */
export function memberKey(m: { readonly name: string; readonly host: string; readonly port: number }): string {
  return `${m.name}\n${m.host}:${m.port}`
}

const STATE = { up: 'active', suspect: 'suspect', dead: 'down' } as const

/** The balancer's membership now, as version `version`; `draining` are members leaving that workers must drain. */
export function takeSnapshot(balancer: Balancer, version: number, draining: Iterable<Upstream>): Snapshot {
  const members: MemberEntry[] = balancer.upstreams().map((u) => ({
    name: u.name,
    host: u.host,
    port: u.port,
    weight: balancer.weightOf(u.name) ?? 1,
    state: STATE[balancer.stateOf(u)],
  }))
  const listed = new Set(members.map(memberKey))
  for (const u of draining) {
    if (!listed.has(memberKey(u))) members.push({ name: u.name, host: u.host, port: u.port, weight: 1, state: 'draining' })
  }
  const ring = balancer.ring.placements().map(({ name, serverId, weight, slots }) => ({ name, serverId, weight, slots: [...slots] }))
  return { version, replicas: balancer.membership().replicas, members, ring, digest: balancer.tableDigest() }
}
