/**
 * Parsing an admin request body as JSON with a bound on nesting. The admin payloads are two
 * levels deep (`{"hostnames": [...]}`); a body nested thousands of levels deep is an attack,
 * not a request, and everything that later walks the value recursively (JSON.stringify in an
 * error message, a deep comparison) would overflow the stack on it. The nesting is measured
 * on the text, in one iterative pass, before JSON.parse builds anything.
 */
import { BalancerError } from '../errors.js'
import { clip } from '../preview.js'

/** Deepest nesting of arrays and objects accepted in an admin body. */
export const MAX_JSON_DEPTH = 8

const QUOTE = 0x22
const BACKSLASH = 0x5c
const OPEN_BRACKET = 0x5b
const CLOSE_BRACKET = 0x5d
const OPEN_BRACE = 0x7b
const CLOSE_BRACE = 0x7d

/**
 * The deepest nesting of `[` and `{` outside strings, stopping as soon as it passes `limit`
 * (then returns limit + 1). Malformed text is measured as far as it goes: JSON.parse judges it.
 */
export function jsonDepth(text: string, limit = Infinity): number {
  let depth = 0
  let deepest = 0
  let inString = false
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (inString) {
      if (c === BACKSLASH) i++
      else if (c === QUOTE) inString = false
    } else if (c === QUOTE) {
      inString = true
    } else if (c === OPEN_BRACKET || c === OPEN_BRACE) {
      if (++depth > deepest) {
        deepest = depth
        if (deepest > limit) return deepest
      }
    } else if ((c === CLOSE_BRACKET || c === CLOSE_BRACE) && depth > 0) {
      depth--
    }
  }
  return deepest
}

/** The value of `text`; INVALID_JSON (400) when it is empty, nested too deep, or not JSON. */
export function parseJsonBody(text: string, maxDepth = MAX_JSON_DEPTH): unknown {
  if (text.trim() === '') throw new BalancerError('INVALID_JSON', 'Invalid JSON payload: the body is empty')
  if (jsonDepth(text, maxDepth) > maxDepth) {
    throw new BalancerError('INVALID_JSON', `Invalid JSON payload: nested more than ${maxDepth} levels deep`)
  }
  try {
    return JSON.parse(text)
  } catch (err) {
    // V8's message quotes a few characters of the input: keep it, escaped and bounded.
    throw new BalancerError('INVALID_JSON', `Invalid JSON payload: ${clip(String((err as Error).message), 200)}`)
  }
}
