/**
 * A short digest of what a ring routes: the hash preset, M, and every slot's owner by name.
 * Two balancers print the same digest exactly when they send every request id (every key) to
 * the same replica first, so operators (and tests) can check that balancers in front of the
 * same replicas agree without sending a single request. Owners are named, not numbered: the
 * table's member indices follow each balancer's own join order, which may differ.
 */
import { createHash } from 'node:crypto'
import type { HashRing } from './ring.js'

/** 16 hex digits of SHA-256 over `<preset>\n<M>\n` and one `<owner>\n` per slot ('' when empty). */
export function tableDigest(ring: HashRing<unknown>): string {
  const hash = createHash('sha256').update(`${ring.hash.name}\n${ring.slots}\n`)
  const names = ring.names()
  if (names.length === 0) {
    hash.update('\n'.repeat(ring.slots))
  } else {
    // One line per owner index, then one update per slot: no string per slot is built twice.
    const lines = names.map((name) => `${name}\n`)
    for (const index of ring.ownerTable()) hash.update(lines[index]!)
  }
  return hash.digest('hex').slice(0, 16)
}
