/** Small statistics helpers for the benchmark and the analysis (no dependencies). */

export function median(values: readonly number[]): number {
  if (values.length === 0) return NaN
  const s = [...values].sort((a, b) => a - b)
  const mid = s.length >> 1
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2
}

export function mean(values: readonly number[]): number {
  if (values.length === 0) return NaN
  let sum = 0
  for (const v of values) sum += v
  return sum / values.length
}

/** Population standard deviation: the spread of these N servers, not an estimate. */
export function stddev(values: readonly number[]): number {
  if (values.length === 0) return NaN
  const m = mean(values)
  let sq = 0
  for (const v of values) sq += (v - m) * (v - m)
  return Math.sqrt(sq / values.length)
}

/** mulberry32: a tiny seeded PRNG, so the analysis sends the same request ids every run. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/** Round to `digits` decimals (for tables and JSON that humans read). */
export function round(value: number, digits = 0): number {
  const f = 10 ** digits
  return Math.round(value * f) / f
}
