/**
 * 32-bit hash and mixing primitives for the ring. All integer arithmetic is done with
 * Math.imul and unsigned shifts, so results are exact 32-bit values (never floating point
 * products that lose bits) and nothing is allocated.
 */

const TWO_32 = 4294967296

/**
 * The murmur3 32-bit finalizer (fmix32): a bijection on 32-bit values with full avalanche,
 * so nearby inputs (consecutive request ids) land far apart. fmix32(0) === 0.
 */
export function fmix32(h: number): number {
  h ^= h >>> 16
  h = Math.imul(h, 0x85ebca6b)
  h ^= h >>> 13
  h = Math.imul(h, 0xc2b2ae35)
  h ^= h >>> 16
  return h >>> 0
}

/**
 * Mixes a non-negative safe integer id (up to 2^53-1) to 32 bits. The high bits are folded
 * in through their own fmix32, and since fmix32(0) === 0, ids below 2^32 give plain
 * fmix32(id); ids that differ only above bit 31 still map differently.
 */
export function mixId(id: number): number {
  const lo = id >>> 0 // ToUint32 is exact "mod 2^32" for any integer-valued number
  const hi = (id - lo) / TWO_32
  return fmix32((lo ^ fmix32(hi)) >>> 0)
}

const FNV_OFFSET = 0x811c9dc5
const FNV_PRIME = 0x01000193

/**
 * FNV-1a 32-bit over the UTF-8 bytes of `text` (so it agrees with every other FNV-1a
 * implementation fed the same string), encoding on the fly instead of allocating a Buffer.
 * Lone surrogates are hashed as U+FFFD, as TextEncoder/Buffer would encode them.
 */
export function fnv1a32(text: string): number {
  let h = FNV_OFFSET
  const n = text.length
  for (let i = 0; i < n; i++) {
    let c = text.charCodeAt(i)
    if (c < 0x80) {
      h = Math.imul(h ^ c, FNV_PRIME)
      continue
    }
    if (c < 0x800) {
      h = Math.imul(h ^ (0xc0 | (c >> 6)), FNV_PRIME)
      h = Math.imul(h ^ (0x80 | (c & 0x3f)), FNV_PRIME)
      continue
    }
    if (c >= 0xd800 && c <= 0xdfff) {
      const d = i + 1 < n ? text.charCodeAt(i + 1) : 0
      if (c <= 0xdbff && d >= 0xdc00 && d <= 0xdfff) {
        const cp = 0x10000 + ((c - 0xd800) << 10) + (d - 0xdc00)
        i++
        h = Math.imul(h ^ (0xf0 | (cp >> 18)), FNV_PRIME)
        h = Math.imul(h ^ (0x80 | ((cp >> 12) & 0x3f)), FNV_PRIME)
        h = Math.imul(h ^ (0x80 | ((cp >> 6) & 0x3f)), FNV_PRIME)
        h = Math.imul(h ^ (0x80 | (cp & 0x3f)), FNV_PRIME)
        continue
      }
      c = 0xfffd
    }
    h = Math.imul(h ^ (0xe0 | (c >> 12)), FNV_PRIME)
    h = Math.imul(h ^ (0x80 | ((c >> 6) & 0x3f)), FNV_PRIME)
    h = Math.imul(h ^ (0x80 | (c & 0x3f)), FNV_PRIME)
  }
  return h >>> 0
}
