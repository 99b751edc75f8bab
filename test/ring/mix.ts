import t from 'tap'
import { fmix32, fnv1a32, mixId } from '../../src/ring/mix.js'
import { rng } from '../fixtures/rng.js'

// Reference implementations in BigInt, written from the published algorithms, so the
// Math.imul/shift versions under test are checked against independent arithmetic.
const MASK = 0xffffffffn
function refFmix32(x: number): number {
  let h = BigInt(x) & MASK
  h ^= h >> 16n
  h = (h * 0x85ebca6bn) & MASK
  h ^= h >> 13n
  h = (h * 0xc2b2ae35n) & MASK
  h ^= h >> 16n
  return Number(h)
}
function refFnv1a(text: string): number {
  let h = 0x811c9dc5n
  for (const byte of Buffer.from(text, 'utf8')) h = ((h ^ BigInt(byte)) * 0x01000193n) & MASK
  return Number(h)
}

t.test('fmix32 matches murmur3 test vectors and a BigInt reference', async (t) => {
  t.equal(fmix32(0), 0)
  // murmur3_32("", seed) is fmix32(seed): published vectors for seeds 1 and 0xffffffff.
  t.equal(fmix32(1), 0x514e28b7)
  t.equal(fmix32(0xffffffff), 0x81f16f39)
  const r = rng(1)
  for (let n = 0; n < 2000; n++) {
    const x = Math.floor(r() * 4294967296)
    if (fmix32(x) !== refFmix32(x)) t.fail(`fmix32(${x})`)
  }
  t.pass('2000 random inputs agree with the reference')
  t.ok(fmix32(0x80000000) >= 0, 'always unsigned')
})

t.test('fmix32 spreads consecutive inputs (no collisions, both halves hit)', async (t) => {
  const seen = new Set<number>()
  let high = 0
  for (let x = 0; x < 100000; x++) {
    const h = fmix32(x)
    seen.add(h)
    if (h >= 0x80000000) high++
  }
  t.equal(seen.size, 100000, 'a bijection has no collisions')
  t.ok(high > 48000 && high < 52000, `about half have the top bit set (${high})`)
})

t.test('fnv1a32 matches FNV-1a test vectors and hashes UTF-8 bytes', async (t) => {
  t.equal(fnv1a32(''), 0x811c9dc5)
  t.equal(fnv1a32('a'), 0xe40c292c)
  t.equal(fnv1a32('foobar'), 0xbf9cf968)
  for (const s of ['Server 1#0', 'é', 'ß€', 'x😀y', '\ud800', 'a\udc00b', '\ud83d', 'ü'.repeat(50)]) {
    t.equal(fnv1a32(s), refFnv1a(s), `UTF-8 bytes of ${JSON.stringify(s)}`)
  }
})

t.test('mixId is fmix32 below 2^32 and folds the high bits in above', async (t) => {
  for (const id of [0, 1, 17, 123456, 999999, 2 ** 32 - 1]) t.equal(mixId(id), fmix32(id), `id ${id}`)
  const refMixId = (id: number): number => {
    const big = BigInt(id)
    const lo = Number(big & MASK)
    const hi = Number(big >> 32n)
    return refFmix32(Number((BigInt(lo) ^ BigInt(refFmix32(hi))) & MASK))
  }
  for (const id of [2 ** 32, 2 ** 32 + 5, 2 ** 40 + 12345, 2 ** 52 + 1, Number.MAX_SAFE_INTEGER]) {
    t.equal(mixId(id), refMixId(id), `id ${id}`)
  }
  t.not(mixId(5), mixId(5 + 2 ** 32), 'ids differing only in the high bits differ')
  t.not(mixId(2 ** 32), mixId(2 ** 33))
})
