/**
 * How the balancer reaches its Swarm replicas, decided once at start:
 *   - `overlay`: at each task's own address on the overlay network, port 5000. Only possible
 *     when the balancer itself is attached to that network (it runs as a Swarm service of the
 *     stack, or as a container on the attachable overlay).
 *   - `host`: at the port each task publishes in host mode on its node: 127.0.0.1 for tasks on
 *     the balancer's own node, the node's address for the others.
 *   - `auto` (default): `overlay` when one of this process's network interfaces has an address
 *     inside the overlay's subnet, else `host`.
 */
import { networkInterfaces } from 'node:os'

export type SwarmReach = 'auto' | 'overlay' | 'host'

/** Is `address` (IPv4) inside `cidr` (`10.0.1.0/24`)? */
export function inSubnet(address: string, cidr: string): boolean {
  const [base, bitsText] = cidr.split('/')
  const bits = Number(bitsText)
  const a = ipv4(address)
  const b = ipv4(base ?? '')
  if (a === undefined || b === undefined || !Number.isInteger(bits) || bits < 0 || bits > 32) return false
  const mask = bits === 0 ? 0 : (~0 << (32 - bits)) >>> 0
  return ((a & mask) >>> 0) === ((b & mask) >>> 0)
}

function ipv4(text: string): number | undefined {
  const parts = text.split('.')
  if (parts.length !== 4) return undefined
  let n = 0
  for (const part of parts) {
    if (!/^\d{1,3}$/.test(part) || Number(part) > 255) return undefined
    n = n * 256 + Number(part)
  }
  return n
}

/** This process's IPv4 addresses (every interface). */
export function localAddresses(): string[] {
  return Object.values(networkInterfaces())
    .flatMap((list) => list ?? [])
    .filter((i) => i.family === 'IPv4')
    .map((i) => i.address)
}

/** `overlay` or `host` for `auto`, from the overlay's subnets and our own addresses. */
export function resolveReach(reach: SwarmReach, subnets: readonly string[], addresses: readonly string[] = localAddresses()): 'overlay' | 'host' {
  if (reach !== 'auto') return reach
  return addresses.some((a) => subnets.some((s) => inSubnet(a, s))) ? 'overlay' : 'host'
}
