/**
 * Short, escaped previews of client input for error messages. A client chooses what it
 * sends, so an answer (or a log line) that quotes it must not grow with it, must not carry
 * control characters into a terminal or a log, and must not walk a structure of the client's
 * choosing (a value nested 10,000 deep overflows the stack of a recursive JSON.stringify).
 * Everything here is bounded: at most PREVIEW_ITEMS items of one level, strings clipped.
 */

/** Longest string quoted whole: 64, so any valid hostname (at most 63) is shown as it is. */
export const PREVIEW_CHARS = 64
/** Array items shown before `…`. */
export const PREVIEW_ITEMS = 5

/**
 * `text` with control characters, DEL, lone surrogates and line separators escaped as in
 * JSON, clipped to `max` characters (then `…`). Never splits a surrogate pair.
 */
export function clip(text: string, max = PREVIEW_CHARS): string {
  return escape(text, max, false)
}

/** `text` as a JSON string literal (quotes and backslashes escaped too), clipped like clip(). */
export function quote(text: string, max = PREVIEW_CHARS): string {
  return `"${escape(text, max, true)}"`
}

function escape(text: string, max: number, json: boolean): string {
  let end = Math.min(text.length, max)
  const last = text.charCodeAt(end - 1)
  if (end < text.length && last >= 0xd800 && last <= 0xdbff) end--
  let out = ''
  for (let i = 0; i < end; i++) {
    const c = text.charCodeAt(i)
    if (c < 0x20 || c === 0x7f || (json && (c === 0x22 || c === 0x5c)) || c === 0x2028 || c === 0x2029 || isLoneSurrogate(text, i)) {
      out += escapeChar(c)
    } else {
      out += text[i]
    }
  }
  return end < text.length ? `${out}…` : out
}

/**
 * A one-line preview of a JSON value from a client: numbers as written (`Infinity` for what
 * JSON.parse made of `1e400`), strings quoted and clipped, arrays with their first few
 * items (nested ones as `[…]` and `{…}`), objects as `{…}`, and `nothing` for absent.
 */
export function preview(value: unknown): string {
  if (Array.isArray(value)) {
    const items = value.slice(0, PREVIEW_ITEMS).map(scalar)
    if (value.length > PREVIEW_ITEMS) items.push(`… ${value.length} items`)
    return `[${items.join(',')}]`
  }
  return scalar(value)
}

function scalar(value: unknown): string {
  switch (typeof value) {
    case 'undefined':
      return 'nothing'
    case 'number':
      return String(value)
    case 'string':
      return quote(value)
    case 'boolean':
      return String(value)
    case 'object':
      if (value === null) return 'null'
      return Array.isArray(value) ? '[…]' : '{…}'
    default:
      return typeof value
  }
}

function isLoneSurrogate(text: string, i: number): boolean {
  const c = text.charCodeAt(i)
  if (c >= 0xd800 && c <= 0xdbff) {
    const next = text.charCodeAt(i + 1)
    return !(next >= 0xdc00 && next <= 0xdfff)
  }
  if (c >= 0xdc00 && c <= 0xdfff) {
    const prev = text.charCodeAt(i - 1)
    return !(prev >= 0xd800 && prev <= 0xdbff)
  }
  return false
}

function escapeChar(c: number): string {
  switch (c) {
    case 0x22:
      return '\\"'
    case 0x5c:
      return '\\\\'
    case 0x0a:
      return '\\n'
    case 0x0d:
      return '\\r'
    case 0x09:
      return '\\t'
    default:
      return `\\u${c.toString(16).padStart(4, '0')}`
  }
}
