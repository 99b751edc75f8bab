import t from 'tap'
import { HASH_PRESETS, HASH_PRESET_NAMES, bindHash, customHash, parseHashSpec, type FormulaHash } from '../../src/ring/hashes.js'
import { fmix32, fnv1a32, mixId } from '../../src/ring/mix.js'

t.test('preset names', async (t) => {
  t.same([...HASH_PRESET_NAMES].sort(), ['assignment', 'default', 'linear', 'quadratic', 'ring'])
  for (const name of HASH_PRESET_NAMES) t.equal(parseHashSpec(name), HASH_PRESETS[name], name)
  t.equal(parseHashSpec('  linear '), HASH_PRESETS.linear, 'surrounding blanks are ignored')
})

t.test('formula presets carry the SPEC coefficients', async (t) => {
  // H = h0·i² + h1·i + h2;  Φ = p0·i² + p1·i + p2·j² + p3·j + p4
  t.match(parseHashSpec('assignment'), { kind: 'formula', h: [1, 2, 17], phi: [1, 0, 1, 2, 25] }) // i²+2i+17; i²+j²+2j+25
  t.match(parseHashSpec('quadratic'), { kind: 'formula', h: [2, 1, 17], phi: [0, 1, 2, 1, 25] }) // 2i²+i+17; i+j+2j²+25
  t.match(parseHashSpec('linear'), { kind: 'formula', h: [0, 3, 17], phi: [0, 1, 0, 3, 25] }) // 3i+17; i+3j+25
  t.match(parseHashSpec('default'), { kind: 'table', name: 'default' })
  t.match(parseHashSpec('ring'), { kind: 'mixed', name: 'ring' })
})

t.test('custom coefficients', async (t) => {
  const spec = parseHashSpec('custom:h=1,2,3;phi=4,5,6,7,8') as FormulaHash
  t.same(spec.h, [1, 2, 3])
  t.same(spec.phi, [4, 5, 6, 7, 8])
  t.equal(spec.name, 'custom:h=1,2,3;phi=4,5,6,7,8')
  t.same(parseHashSpec('custom: phi=4, 5,6,7,8 ; h=1,2,3'), spec, 'either order, blanks allowed')
  t.same(customHash([1, 2, 3], [4, 5, 6, 7, 8]), spec)
  t.same((parseHashSpec(`custom:h=0,0,${Number.MAX_SAFE_INTEGER};phi=0,0,0,0,0`) as FormulaHash).h, [0, 0, Number.MAX_SAFE_INTEGER])
})

t.test('parseHashSpec rejects bad input with the accepted values in the message', async (t) => {
  const err = t.throws(() => parseHashSpec('nope')) as Error
  for (const word of ['"nope"', 'default', 'ring', 'assignment', 'quadratic', 'linear', 'custom:h=A,B,C;phi=A,B,C,D,E']) {
    t.match(err.message, word, `message names ${word}`)
  }
  const bad = [
    '',
    'ASSIGNMENT',
    'custom:',
    'custom:h=1,2,3',
    'custom:phi=1,2,3,4,5',
    'custom:h=1,2;phi=1,2,3,4,5',
    'custom:h=1,2,3;phi=1,2,3,4',
    'custom:h=1,2,3,4;phi=1,2,3,4,5',
    'custom:h=-1,2,3;phi=1,2,3,4,5',
    'custom:h=1.5,2,3;phi=1,2,3,4,5',
    'custom:h=1e3,2,3;phi=1,2,3,4,5',
    'custom:h=,2,3;phi=1,2,3,4,5',
    'custom:h=9007199254740992,2,3;phi=1,2,3,4,5',
    'custom:h=1,2,3;phi=1,2,3,4,5;h=1,2,3',
    'custom:h=1,2,3;phi=1,2,3,4,5;',
    'custom:x=1,2,3;phi=1,2,3,4,5',
    'custom:h 1,2,3;phi=1,2,3,4,5',
  ]
  for (const text of bad) {
    t.throws(() => parseHashSpec(text), { message: /custom:h=A,B,C;phi=A,B,C,D,E/ }, JSON.stringify(text))
  }
  t.throws(() => customHash([1, 2], [1, 2, 3, 4, 5]), /h needs 3/)
  t.throws(() => customHash([1, 2, 3], [1, 2, 3, 4]), /phi needs 5/)
  t.throws(() => customHash([1, -2, 3], [1, 2, 3, 4, 5]), /non-negative integers/)
  t.throws(() => customHash([1, 2, 3], [1, 2, 3, 4, 0.5]), /non-negative integers/)
})

t.test('formula presets evaluated by hand', async (t) => {
  const a = bindHash(HASH_PRESETS.assignment, 512)
  t.equal(a.requestSlot(0), 17) // 0 + 0 + 17
  t.equal(a.requestSlot(1), 20) // 1 + 2 + 17
  t.equal(a.requestSlot(10), 137) // 100 + 20 + 17
  t.equal(a.requestSlot(100), 489) // 10000 + 200 + 17 = 10217 = 19·512 + 489
  t.equal(a.requestSlot(512 + 10), 137, 'i is reduced mod M first')
  t.equal(a.vnodeSlot(1, 'ignored', 0), 26) // 1 + 0 + 0 + 25
  t.equal(a.vnodeSlot(3, 'ignored', 8), 114) // 9 + 64 + 16 + 25
  t.equal(a.vnodeSlot(30, 'x', 2), 421) // 900 + 4 + 4 + 25 = 933 = 512 + 421

  const q = bindHash(HASH_PRESETS.quadratic, 512)
  t.equal(q.requestSlot(10), 227) // 2·100 + 10 + 17
  t.equal(q.requestSlot(20), 325) // 2·400 + 20 + 17 = 837 = 512 + 325
  t.equal(q.vnodeSlot(1, 'x', 2), 36) // 1 + 2 + 2·4 + 25
  t.equal(q.vnodeSlot(2, 'x', 8), 163) // 2 + 8 + 128 + 25

  const l = bindHash(HASH_PRESETS.linear, 512)
  t.equal(l.requestSlot(10), 47) // 30 + 17
  t.equal(l.requestSlot(200), 105) // 600 + 17 = 617 = 512 + 105
  t.equal(l.vnodeSlot(1, 'x', 2), 32) // 1 + 6 + 25
  t.equal(l.vnodeSlot(3, 'x', 8), 52) // 3 + 24 + 25

  const c = bindHash(customHash([5, 0, 1], [0, 0, 0, 0, 3]), 7)
  t.equal(c.requestSlot(3), 4) // 5·9 + 1 = 46 = 6·7 + 4
  t.equal(c.vnodeSlot(100, 'x', 100), 3) // only the constant 3
})

// Exact reference: BigInt has no overflow, so (poly mod M) here is the mathematical value.
function refPoly(coefs: readonly number[], i: bigint, j: bigint, m: number): number {
  const c = coefs.map(BigInt)
  const v = c.length === 3 ? c[0]! * i * i + c[1]! * i + c[2]! : c[0]! * i * i + c[1]! * i + c[2]! * j * j + c[3]! * j + c[4]!
  return Number(v % BigInt(m))
}

t.test('formulas are exact mod M for huge ids and coefficients', async (t) => {
  const big = Number.MAX_SAFE_INTEGER
  const specs = [
    HASH_PRESETS.assignment,
    HASH_PRESETS.quadratic,
    HASH_PRESETS.linear,
    customHash([big, big - 1, big - 2], [big, 12345678901, big - 7, 3, big]),
  ]
  const ids = [0, 1, 511, 512, 2 ** 31 + 3, 2 ** 32, 2 ** 32 + 1, 2 ** 45 + 77, 2 ** 53 - 2, big]
  for (const spec of specs) {
    for (const m of [1, 7, 512, 1000, 65536]) {
      const b = bindHash(spec, m)
      for (const id of ids) {
        const want = refPoly(spec.h, BigInt(id), 0n, m)
        if (b.requestSlot(id) !== want) t.fail(`${spec.name} M=${m} H(${id}) = ${b.requestSlot(id)}, want ${want}`)
        for (const j of [0, 1, 8, 15]) {
          const wantPhi = refPoly(spec.phi, BigInt(id), BigInt(j), m)
          if (b.vnodeSlot(id, 'x', j) !== wantPhi) t.fail(`${spec.name} M=${m} Φ(${id}, ${j})`)
        }
      }
    }
    t.pass(`${spec.name}: every H and Φ equals the BigInt value`)
  }
  // Spot check one by hand: H_assignment(2^53-1) mod 512. 2^53-1 ≡ 511 ≡ -1 (mod 512),
  // so H ≡ 1 - 2 + 17 = 16.
  t.equal(bindHash(HASH_PRESETS.assignment, 512).requestSlot(big), 16)
})

t.test('ring and default presets: mixed request slots, hostname-based points', async (t) => {
  const table = bindHash(HASH_PRESETS.default, 512)
  for (const id of [0, 1, 2, 123456, 2 ** 40 + 1, Number.MAX_SAFE_INTEGER]) {
    t.equal(table.requestSlot(id), mixId(id) % 512, `default: request ${id}`)
  }
  const d = bindHash(HASH_PRESETS.ring, 512)
  for (const id of [0, 1, 2, 123456, 2 ** 40 + 1, Number.MAX_SAFE_INTEGER]) {
    t.equal(d.requestSlot(id), mixId(id) % 512, `request ${id}`)
  }
  t.equal(d.vnodeSlot(1, 'Server 1', 0), fmix32(fnv1a32('Server 1#0')) % 512)
  t.equal(d.vnodeSlot(1, 'Server 1', 3), d.vnodeSlot(99, 'Server 1', 3), 'the server id does not matter')
  t.not(d.vnodeSlot(1, 'Server 1', 3), d.vnodeSlot(1, 'Server 2', 3), 'the hostname does')
  const big = bindHash(HASH_PRESETS.default, 65536)
  const seen = new Set<number>()
  for (let id = 0; id < 1000; id++) seen.add(big.requestSlot(id))
  t.ok(seen.size > 980, `consecutive ids scatter (${seen.size} distinct slots of 1000)`)
})
