/**
 * Consistent hashing with bounded loads (Mirrokni, Thorup, Zadimoghaddam 2016; HAProxy's
 * `hash-balance-factor`, Envoy's `hash_balance_factor`). The ring picks as usual, but no
 * replica may take a request while it already holds its bound of in-flight requests:
 *
 *   bound(r) = ceil(factor × (in flight everywhere + 1) × weight(r) / total weight)
 *
 * i.e. `factor` times its fair part of the load counting the request being placed. A replica
 * at its bound is skipped and the request walks clockwise (ring.next) to the first replica
 * under its bound, so a key stays with its own replica unless that one is overloaded, and
 * overflow lands on the same neighbours every time. Since factor >= 1 the bounds add up to
 * more than the load, so some replica always has room; no replica ends up above its bound.
 *
 * Off (factor undefined) the chooser is plain `ring.pick`.
 *
 * With `--workers N` each worker sees only its own in-flight requests, about 1/N of the whole
 * when connections spread evenly, and no worker asks the others per request. So a worker
 * counts each of its requests `share` (= N) times: it compares N × its own count with the bound
 * computed from N × its own total. When load is even across workers that is exactly the single
 * process's decision over the global counts (same bound, same ceil), where comparing the raw
 * local counts would round each bound up to a whole request per worker (N requests in all)
 * and so bound less tightly.
 */
import type { RingView } from '../ring/ring.js'

/** What the chooser needs of a ring member: its count of requests in flight. */
export interface Loaded {
  readonly inflight: number
}

export type Chooser<T> = (id: number) => T | undefined

/** `share`: how many processes share the load, each counting only its own requests (--workers; 1: the single process). */
export function createChooser<T extends Loaded>(ring: RingView<T>, factor: number | undefined, share = 1): Chooser<T> {
  if (factor === undefined) return (id) => ring.pick(id)
  if (!(factor >= 1) || !Number.isFinite(factor)) throw new RangeError(`balance factor must be a number >= 1, got ${factor}`)
  if (!(Number.isInteger(share) && share >= 1)) throw new RangeError(`share must be an integer >= 1, got ${share}`)
  // One closure per chooser, not per request: the walk's test reads `limit`, set just before.
  let limit = 0
  // (The 1e-9 keeps float noise, as in 1.1 × 10 / 11, from rounding a whole bound up.)
  const hasRoom = (value: T, _name: string, weight: number): boolean => share * value.inflight < Math.ceil(limit * weight - 1e-9)
  return (id) => {
    const first = ring.pick(id)
    if (first === undefined) return undefined
    const values = ring.valueList()
    if (values.length === 1) return first
    let local = 0
    for (let i = 0; i < values.length; i++) local += values[i]!.inflight
    const total = share * local + 1 // the request being placed
    // Per unit of weight; a member's bound is ceil(limit × weight).
    limit = (factor * total) / ring.totalWeight
    return ring.next(id, hasRoom) ?? first
  }
}
