/**
 * Character classes of HTTP/1.1 heads, as tables by char code (heads are read as latin1 text:
 * one char per byte, 0-255; 1 = allowed). One set for the edge's strict reader (edge-head.ts),
 * the fast request reader (fast-request.ts) and the fast response head (fast-response.ts): a
 * lookup per character, no regex per header.
 */

function table(chars: string, ...ranges: Array<[number, number]>): Uint8Array {
  const t = new Uint8Array(256)
  for (const c of chars) t[c.charCodeAt(0)] = 1
  for (const [from, to] of ranges) for (let c = from; c <= to; c++) t[c] = 1
  return t
}

const DIGITS: [number, number] = [48, 57]
const UPPER: [number, number] = [65, 90]
const LOWER: [number, number] = [97, 122]

/** Token characters (RFC 9110 5.6.2 tchar): methods, header names, transfer codings. */
export const TOKEN = table("!#$%&'*+-.^_`|~", DIGITS, UPPER, LOWER)

/** Request-target characters (RFC 3986 unreserved, reserved, '%'), which llhttp accepts in every mode. */
export const TARGET = table("-._~:/?#[]@!$&'()*+,;=%", DIGITS, UPPER, LOWER)

/**
 * Field-value characters (RFC 9110 5.5): HTAB, SP, VCHAR and obs-text; not CR, LF, NUL, other
 * controls or DEL. Also node:http's check for outgoing values (checkInvalidHeaderChar).
 */
export const FIELD_VALUE = table('\t', [0x20, 0x7e], [0x80, 0xff])
