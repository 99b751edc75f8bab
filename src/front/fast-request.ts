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
import { HOP_BY_HOP_HEADER, END_TO_END, connectionNamesOthers, forwardingOf, type ProxiedRequest } from '../route/forward.js'
import type { KeyedRequest } from '../route/keys.js'
import { NameSet, nameIs } from '../upstream/header-names.js'
import { validHost } from './edge-head.js'
import { TARGET, TOKEN } from './http-chars.js'

/** Largest head taken here; node:http's own limit (16 KiB) judges longer ones. */
export const MAX_FAST_HEAD = 8 * 1024
/** More header lines than this: leave it to node:http. */
const MAX_FAST_HEADERS = 64

const CRLF2 = Buffer.from('\r\n\r\n')

/**
 * A plain GET or HEAD request, as the forward path and the key extractor read it. Forwarding
 * uses `plainHead` and `host`; `rawHeaders` and `headers` are built from the head text only
 * when something asks (a `--key` header, the access log, a head that is not plain), so the
 * usual request costs no per-header strings, array or dictionary.
 */
export class FastRequest implements ProxiedRequest, KeyedRequest {
  private raw: string[] | undefined
  private dict: IncomingHttpHeaders | undefined

  constructor(
    readonly method: 'GET' | 'HEAD',
    readonly url: string,
    /** The head as read: the request line and the header lines, each ending in CRLF. */
    private readonly text: string,
    /** Where the header lines start in `text`. */
    private readonly headerStart: number,
    /** Header lines in the head. */
    readonly headerCount: number,
    /** The one Host header's value. */
    readonly host: string,
    /** The head as forwarded, when it forwards as received (see ProxiedRequest). */
    readonly plainHead: string | undefined,
    readonly socket: Socket,
    /** The client asked to close the connection after this request. */
    readonly close: boolean,
  ) {}

  /** [name, value, name, value, ...] as received. */
  get rawHeaders(): string[] {
    return (this.raw ??= rawHeadersOf(this.text, this.headerStart))
  }

  /** Lower-case name -> first value (a repeated name that matters is not a fast request). */
  get headers(): IncomingHttpHeaders {
    if (this.dict !== undefined) return this.dict
    const raw = this.rawHeaders
    // No prototype: a header called `constructor` or `__proto__` is a header like any other.
    const headers = Object.create(null) as IncomingHttpHeaders
    for (let i = 0; i < raw.length; i += 2) {
      const lower = raw[i]!.toLowerCase()
      if (headers[lower] === undefined) headers[lower] = raw[i + 1]!
    }
    return (this.dict = headers)
  }
}

/** A request read off the front of a buffer, and where the next one starts. */
export interface FastParse {
  request: FastRequest
  end: number
}


/** Headers that mean a body, a protocol switch or an interim answer: node:http's business. */
const NOT_FAST = new NameSet(['content-length', 'transfer-encoding', 'upgrade', 'expect', 'http2-settings'])

/** Optional whitespace around a header value (RFC 9112 5: SP and HTAB). */
function isOws(c: number): boolean {
  return c === 32 || c === 9
}

/** Where the value of the line text[colon + 1, lineEnd) starts, leading whitespace skipped. */
function valueStart(text: string, colon: number, lineEnd: number): number {
  let i = colon + 1
  while (i < lineEnd && isOws(text.charCodeAt(i))) i++
  return i
}

/** Where that value ends, trailing whitespace dropped. */
function valueEnd(text: string, vStart: number, lineEnd: number): number {
  let i = lineEnd
  while (i > vStart && isOws(text.charCodeAt(i - 1))) i--
  return i
}

/** The header lines of a head parseFastRequest took, as [name, value, ...]. */
function rawHeadersOf(text: string, pos: number): string[] {
  const raw: string[] = []
  while (pos < text.length) {
    const lineEnd = text.indexOf('\r\n', pos)
    const colon = text.indexOf(':', pos)
    const vStart = valueStart(text, colon, lineEnd)
    raw.push(text.slice(pos, colon), text.slice(vStart, valueEnd(text, vStart, lineEnd)))
    pos = lineEnd + 2
  }
  return raw
}

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
    if (TARGET[c] !== 1) return undefined
  }
  const url = text.slice(pos, targetEnd)
  if (!text.startsWith(' HTTP/1.1\r\n', targetEnd)) return undefined
  pos = targetEnd + 11
  const headerStart = pos

  let count = 0
  let close = false
  let host: string | undefined
  /** Lower-case `unique` names seen (only when there are such names). */
  let seen: string[] | undefined
  // The head forwards as received (ProxiedRequest.plainHead) while `plain` holds: `kept` is
  // what comes before `runStart`, with the hop-by-hop lines met so far cut out.
  let plain = true
  let kept = ''
  let runStart = 0
  while (pos < text.length) {
    const lineEnd = text.indexOf('\r\n', pos)
    const colon = text.indexOf(':', pos)
    // No colon on the line, an empty name, or a folded line (it starts with a space).
    if (colon === -1 || colon > lineEnd || colon === pos) return undefined
    for (let i = pos; i < colon; i++) {
      const c = text.charCodeAt(i)
      if (TOKEN[c] !== 1) return undefined
    }
    const vStart = valueStart(text, colon, lineEnd)
    const vEnd = valueEnd(text, vStart, lineEnd)
    for (let i = vStart; i < vEnd; i++) {
      const c = text.charCodeAt(i)
      // Visible ASCII, space and tab only (no control characters, no obs-text).
      if ((c < 32 && c !== 9) || c >= 127) return undefined
    }
    if (++count > MAX_FAST_HEADERS) return undefined
    if (NOT_FAST.has(text, pos, colon)) return undefined
    if (nameIs(text, pos, colon, 'host')) {
      // RFC 9112 3.2: an invalid Host is refused (by the edge's strict reader, edge-head.ts).
      if (host !== undefined) return undefined
      host = text.slice(vStart, vEnd)
      if (!validHost(host)) return undefined
    } else if (nameIs(text, pos, colon, 'connection')) {
      const tokens = text.slice(vStart, vEnd).toLowerCase()
      if (tokens.includes('upgrade')) return undefined
      if (/(^|,)\s*close\s*(,|$)/.test(tokens)) close = true
      if (connectionNamesOthers(tokens)) plain = false
    }
    if (unique.size > 0) {
      const lower = text.slice(pos, colon).toLowerCase()
      if (unique.has(lower)) {
        if (seen?.includes(lower)) return undefined
        ;(seen ??= []).push(lower)
      }
    }
    if (plain) {
      const role = forwardingOf(text, pos, colon)
      if (role === HOP_BY_HOP_HEADER) {
        kept += text.slice(runStart, pos)
        runStart = lineEnd + 2
      } else if (role !== END_TO_END || text.charCodeAt(colon + 1) !== 32 || vStart !== colon + 2 || vEnd !== lineEnd) {
        // X-Forwarded-* (rewritten), or a line forwarding would write differently.
        plain = false
      }
    }
    pos = lineEnd + 2
  }
  // HTTP/1.1 needs exactly one Host (node:http answers 400 otherwise).
  if (host === undefined) return undefined
  let plainHead: string | undefined
  if (plain) plainHead = runStart === 0 ? text : runStart < text.length ? kept + text.slice(runStart) : kept
  return { request: new FastRequest(method, url, text, headerStart, count, host, plainHead, socket, close), end: headEnd + 4 }
}
