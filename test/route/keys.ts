// Request keys: parsing --key, request ids from key strings, and the per-request extractors.
import t from 'tap'
import type { IncomingMessage } from 'node:http'
import { cookieValue, keyExtractor, parseKeySource, queryParam, randomRequestId, requestIdOf } from '../../src/route/keys.js'

/** FNV-1a 32-bit, written out here from its definition (offset 2166136261, prime 16777619). */
function fnv(s: string): number {
  let h = 2166136261n
  for (const byte of Buffer.from(s, 'utf8')) {
    h ^= BigInt(byte)
    h = (h * 16777619n) % 2n ** 32n
  }
  return Number(h)
}

const fakeReq = (url: string, headers: Record<string, string> = {}, remoteAddress = '10.1.2.3') =>
  ({ url, headers, socket: { remoteAddress } }) as unknown as IncomingMessage

t.test('parseKeySource', async (t) => {
  t.same(parseKeySource('random'), { kind: 'random' })
  t.same(parseKeySource('ip'), { kind: 'ip' })
  t.same(parseKeySource('path'), { kind: 'path' })
  t.same(parseKeySource('header:X-User-Id'), { kind: 'header', name: 'x-user-id' })
  t.same(parseKeySource('query:user id'), { kind: 'query', name: 'user id' })
  t.same(parseKeySource('cookie:session'), { kind: 'cookie', name: 'session' })
  t.throws(() => parseKeySource('header:'), /needs a name/)
  t.throws(() => parseKeySource('header'), /needs a name/)
  t.throws(() => parseKeySource('cookie:a;b'), /not a valid cookie name/)
  t.throws(() => parseKeySource(''), /unknown key source/)
})

t.test('request ids: decimal keys as is, others through FNV-1a', async (t) => {
  t.equal(requestIdOf('123456', 512), 123456)
  t.equal(requestIdOf('0', 512), 0)
  t.equal(requestIdOf('999999999999999', 512), 999999999999999, '15 digits: exact as a double')
  const huge = '123456789012345678901234567890'
  t.equal(requestIdOf(huge, 512), Number(BigInt(huge) % 512n), 'longer decimals reduced exactly modulo M')
  t.equal(requestIdOf(huge, 1000), Number(BigInt(huge) % 1000n))
  for (const s of ['alice', '-5', '12a', '', 'ünïcode', '1.5']) t.equal(requestIdOf(s, 512), fnv(s), `fnv1a(${JSON.stringify(s)})`)
})

t.test('random ids have six digits', async (t) => {
  const ids = Array.from({ length: 5000 }, randomRequestId)
  t.ok(ids.every((id) => Number.isInteger(id) && id >= 100000 && id <= 999999))
  t.ok(new Set(ids).size > 4900, 'spread over the range')
})

t.test('extractors read the configured part of the request', async (t) => {
  const req = fakeReq('/cart/42?user=bob&x=1', { 'x-user': '777', cookie: 'a=1; session="s3cret"; b=2' })
  t.equal(keyExtractor({ kind: 'header', name: 'x-user' }, 512)(req), 777)
  t.equal(keyExtractor({ kind: 'query', name: 'user' }, 512)(req), fnv('bob'))
  t.equal(keyExtractor({ kind: 'cookie', name: 'session' }, 512)(req), fnv('s3cret'))
  t.equal(keyExtractor({ kind: 'ip' }, 512)(req), fnv('10.1.2.3'))
  t.equal(keyExtractor({ kind: 'path' }, 512)(req), fnv('/cart/42'))
  const r = keyExtractor({ kind: 'random' }, 512)(req)
  t.ok(r >= 100000 && r <= 999999)
  // A missing key falls back to a random id rather than piling every such request on one slot.
  const missing = keyExtractor({ kind: 'header', name: 'x-none' }, 512)(req)
  t.ok(missing >= 100000 && missing <= 999999)
})

t.test('query and cookie parsing', async (t) => {
  t.equal(queryParam('/a?x=1&y=%20z', 'y'), ' z')
  t.equal(queryParam('/a', 'y'), undefined)
  t.equal(queryParam('/a?y', 'y'), '')
  t.equal(cookieValue('a=1;b = 2', 'b'), '2')
  t.equal(cookieValue('a=1', 'b'), undefined)
  t.equal(cookieValue(undefined, 'b'), undefined)
})
