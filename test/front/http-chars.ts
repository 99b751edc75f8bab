// The character tables of HTTP heads (src/front/http-chars.ts), checked for every byte against
// the RFC's grammar and, for names and values, against node:http's own checks.
import t from 'tap'
import { validateHeaderName, validateHeaderValue } from 'node:http'
import { FIELD_VALUE, TARGET, TOKEN } from '../../src/front/http-chars.js'

const ALNUM = /^[0-9A-Za-z]$/

function accepts(check: () => void): boolean {
  try {
    check()
    return true
  } catch {
    return false
  }
}

t.test('TOKEN is RFC 9110 tchar, and what node:http accepts in a header name', async (t) => {
  for (let c = 0; c < 256; c++) {
    const ch = String.fromCharCode(c)
    const tchar = ALNUM.test(ch) || "!#$%&'*+-.^_`|~".includes(ch)
    t.equal(TOKEN[c] === 1, tchar, `char ${c}`)
    t.equal(TOKEN[c] === 1, accepts(() => validateHeaderName(`x${ch}`)), `char ${c} as node:http sees it`)
  }
})

t.test('TARGET is RFC 3986 unreserved, reserved and %', async (t) => {
  for (let c = 0; c < 256; c++) {
    const ch = String.fromCharCode(c)
    t.equal(TARGET[c] === 1, ALNUM.test(ch) || "-._~:/?#[]@!$&'()*+,;=%".includes(ch), `char ${c}`)
  }
})

t.test('FIELD_VALUE is RFC 9110 field-vchar, SP and HTAB, and what node:http sends in a value', async (t) => {
  for (let c = 0; c < 256; c++) {
    const allowed = c === 9 || (c >= 0x20 && c <= 0x7e) || c >= 0x80
    t.equal(FIELD_VALUE[c] === 1, allowed, `char ${c}`)
    t.equal(FIELD_VALUE[c] === 1, accepts(() => validateHeaderValue('x', `a${String.fromCharCode(c)}b`)), `char ${c} as node:http sees it`)
  }
})
