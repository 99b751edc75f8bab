/**
 * The fast front's request reader. It accepts only what it fully understands — a complete
 * HTTP/1.1 GET or HEAD head, no body, plain characters — and says "not mine" to everything
 * else, which then goes to node:http untouched (see connection.ts). So node:http's parser
 * stays the judge of every unusual or malformed request: the fast path never answers a
 * request node:http would have refused, it only skips node:http's per-request objects for
 * the common case.
 */
import type { IncomingHttpHeaders } from 'node:http'
import type { Socket } from 'node:net'
import type { ProxiedRequest } from '../route/forward.js'
import type { KeyedRequest } from '../route/keys.js'
import { validHost } from './edge-head.js'

/** Largest head taken here; node:http's own limit (16 KiB) judges longer ones. */
export const MAX_FAST_HEAD = 8 * 1024
/** More header lines than this: leave it to node:http. */
const MAX_FAST_HEADERS = 64

const CRLF2 = Buffer.from('\r\n\r\n')

/** A plain GET or HEAD request, as the forward path and the key extractor read it. */
export class FastRequest implements ProxiedRequest, KeyedRequest {
  constructor(
    readonly method: 'GET' | 'HEAD',
    readonly url: string,
    readonly rawHeaders: string[],
    /** Lower-case name -> first value (a repeated name that matters is not a fast request). */
    readonly headers: IncomingHttpHeaders,
    readonly socket: Socket,
    /** The client asked to close the connection after this request. */
    readonly close: boolean,
  ) {}
}

/** A request read off the front of a buffer, and where the next one starts. */
export interface FastParse {
  request: FastRequest
  end: number
}

// Character classes, by char code (latin1: one char per byte).
const TOKEN = new Uint8Array(128)
for (const c of "!#$%&'*+-.^_`|~") TOKEN[c.charCodeAt(0)] = 1
for (let c = 48; c <= 57; c++) TOKEN[c] = 1
for (let c = 65; c <= 90; c++) TOKEN[c] = 1
for (let c = 97; c <= 122; c++) TOKEN[c] = 1
/** Request-target characters llhttp accepts in every mode (RFC 3986 unreserved, reserved, %). */
const TARGET = new Uint8Array(128)
for (const c of "-._~:/?#[]@!$&'()*+,;=%") TARGET[c.charCodeAt(0)] = 1
for (let c = 48; c <= 57; c++) TARGET[c] = 1
for (let c = 65; c <= 90; c++) TARGET[c] = 1
for (let c = 97; c <= 122; c++) TARGET[c] = 1

/** Headers that mean a body, a protocol switch or an interim answer: node:http's business. */
const NOT_FAST = new Set(['content-length', 'transfer-encoding', 'upgrade', 'expect', 'http2-settings'])

/**
 * Read one request from `buf` at `start`. Undefined unless the whole head is there and it is
 * a plain HTTP/1.1 GET or HEAD without a body; also undefined when a header in `unique`
 * (lower-case names the request's routing reads, besides Host) appears twice, since
 * node:http's rules for joining repeats are then the ones to apply.
 */
export function parseFastRequest(buf: Buffer, start: number, socket: Socket, unique: ReadonlySet<string>): FastParse | undefined {
  const headEnd = buf.indexOf(CRLF2, start)
  if (headEnd === -1 || headEnd - start > MAX_FAST_HEAD) return undefined
  const text = buf.toString('latin1', start, headEnd + 2)

  let method: 'GET' | 'HEAD'
  let pos: number
  if (text.startsWith('GET /')) {
    method = 'GET'
    pos = 4
  } else if (text.startsWith('HEAD /')) {
    method = 'HEAD'
    pos = 5
  } else return undefined
  const targetEnd = text.indexOf(' ', pos)
  if (targetEnd === -1) return undefined
  for (let i = pos; i < targetEnd; i++) {
    const c = text.charCodeAt(i)
    if (c >= 128 || TARGET[c] === 0) return undefined
  }
  const url = text.slice(pos, targetEnd)
  if (!text.startsWith(' HTTP/1.1\r\n', targetEnd)) return undefined
  pos = targetEnd + 11

  const rawHeaders: string[] = []
  // No prototype: a header called `constructor` or `__proto__` is a header like any other.
  const headers = Object.create(null) as IncomingHttpHeaders
  let close = false
  let hosts = 0
  while (pos < text.length) {
    const lineEnd = text.indexOf('\r\n', pos)
    const colon = text.indexOf(':', pos)
    // No colon on the line, an empty name, or a folded line (it starts with a space).
    if (colon === -1 || colon > lineEnd || colon === pos) return undefined
    for (let i = pos; i < colon; i++) {
      const c = text.charCodeAt(i)
      if (c >= 128 || TOKEN[c] === 0) return undefined
    }
    let vStart = colon + 1
    let vEnd = lineEnd
    while (vStart < vEnd && (text.charCodeAt(vStart) === 32 || text.charCodeAt(vStart) === 9)) vStart++
    while (vEnd > vStart && (text.charCodeAt(vEnd - 1) === 32 || text.charCodeAt(vEnd - 1) === 9)) vEnd--
    for (let i = vStart; i < vEnd; i++) {
      const c = text.charCodeAt(i)
      // Visible ASCII, space and tab only (no control characters, no obs-text).
      if ((c < 32 && c !== 9) || c >= 127) return undefined
    }
    const name = text.slice(pos, colon)
    const value = text.slice(vStart, vEnd)
    pos = lineEnd + 2
    rawHeaders.push(name, value)
    if (rawHeaders.length > MAX_FAST_HEADERS * 2) return undefined
    const lower = name.toLowerCase()
    if (NOT_FAST.has(lower)) return undefined
    if (lower === 'host') {
      // RFC 9112 3.2: an invalid Host is refused (by the edge's strict reader, edge-head.ts).
      if (++hosts > 1 || !validHost(value)) return undefined
    }
    else if (lower === 'connection') {
      const tokens = value.toLowerCase()
      if (tokens.includes('upgrade')) return undefined
      if (/(^|,)\s*close\s*(,|$)/.test(tokens)) close = true
    }
    if (headers[lower] === undefined) headers[lower] = value
    else if (unique.has(lower)) return undefined
  }
  // HTTP/1.1 needs exactly one Host (node:http answers 400 otherwise).
  if (hosts !== 1) return undefined
  return { request: new FastRequest(method, url, rawHeaders, headers, socket, close), end: headEnd + 4 }
}
