/**
 * How the Docker provider names and marks its containers: the labels that record ownership
 * (so a restarted balancer finds its containers), and a valid, unique container name for any
 * replica hostname, stable across runs (so adoption finds the same container again).
 */
import { createHash } from 'node:crypto'

/** Labels on every container this provider creates. */
export const LABELS = {
  owner: 'ring-balancer.owner',
  hostname: 'ring-balancer.hostname',
  port: 'ring-balancer.port',
} as const

/** Port the replica listens on inside a bridge-networked container. */
export const REPLICA_PORT = 5000

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

/** Network aliases of a bridge-networked replica: its container name, and its hostname when that is a valid DNS name. */
export function networkAliases(cname: string, hostname: string): string[] {
  return [cname, ...(DNS_LABEL.test(hostname) ? [hostname] : [])]
}
