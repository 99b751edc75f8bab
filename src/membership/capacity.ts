/**
 * How many replicas one /add may ask for, decided from numbers alone before any name is made
 * up or any replica started. A client chooses `n`; without this check the balancer would make
 * up `n` random names first (one request with n = 10^9 never finishes and blocks the event
 * loop for good). Two bounds: the operator's cap on the number of replicas (--max-replicas)
 * and the ring's room: every unit of weight takes K slots, so at most floor(M / K) units fit
 * in all. The ring's exact check (HashRing.fits, which also sees weights and probing) runs
 * afterwards, on at most this many names.
 */
import { BalancerError } from '../errors.js'

/** Default for --max-replicas. */
export const MAX_REPLICAS_DEFAULT = 100

export interface AddRoom {
  /** Replicas present now (members, suspects included). */
  readonly present: number
  /** --max-replicas. */
  readonly maxReplicas: number
  /** Ring size M. */
  readonly slots: number
  /** Slots per unit of weight K. */
  readonly vnodes: number
  /** Units of weight on the ring now. */
  readonly usedUnits: number
}

/** Throws TOO_MANY_REPLICAS or RING_FULL (both 400) unless `n` more replicas could fit. O(1). */
export function assertAddRoom(n: number, room: AddRoom): void {
  if (!(n <= room.maxReplicas - room.present)) {
    throw new BalancerError(
      'TOO_MANY_REPLICAS',
      `Cannot add ${n} replica(s): ${room.present} present, at most ${room.maxReplicas} allowed (--max-replicas)`,
    )
  }
  const freeUnits = Math.floor(room.slots / room.vnodes) - room.usedUnits
  if (!(n <= freeUnits)) {
    throw new BalancerError('RING_FULL', `The ring has no room for ${n} more server(s): ${room.slots} slots, ${room.vnodes} virtual servers each, ${room.present} present`)
  }
}
