/**
 * The ring's one error: no free slot can take a virtual server. A plain Error with a stable
 * code; what it means to a client (the SPEC's 400 answer) is membership's business
 * (src/membership/balancer.ts turns it into the catalogue's RING_FULL), so the ring knows
 * nothing of HTTP.
 */
export class RingFullError extends Error {
  override readonly name = 'RingFullError'
  readonly code = 'RING_FULL'
}
