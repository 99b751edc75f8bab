/**
 * Header rules for forwarding: hop-by-hop headers (RFC 9110 7.6.1) stay on their own
 * connection; the replica learns who the client was from X-Forwarded-*. Works on raw header
 * arrays ([name, value, name, value, ...]) so case and repeated headers survive the trip.
 */
import type { IncomingHttpHeaders, IncomingMessage } from 'node:http'
import { NameSet } from '../upstream/header-names.js'

/**
 * What forwarding needs of a client request. node:http's IncomingMessage is one; the fast
 * front (src/front/fast-request.ts) builds a lighter one for plain GET and HEAD requests.
 */
export interface ProxiedRequest {
  readonly method?: string | undefined
  readonly url?: string | undefined
  /** [name, value, name, value, ...] as received. */
  readonly rawHeaders: string[]
  /** Lower-case names; only `host` and the `--key` header or cookie are read. */
  readonly headers: IncomingHttpHeaders
  readonly socket: { readonly remoteAddress?: string | undefined }
  /**
   * Set by a front that read the head itself (the fast front) when the head forwards as
   * received: the request line and header lines, each ending in CRLF, exactly as upstreamHead
   * would write them from `rawHeaders` — every line `Name: value` (one space, no whitespace
   * around the value), hop-by-hop lines cut out, no X-Forwarded-* header (forwardingOf says
   * which), no Connection token naming another header (connectionNamesOthers), one Host.
   */
  readonly plainHead?: string | undefined
  /** The Host header's value when the front has it at hand (then `headers` need not be read). */
  readonly host?: string | undefined
}

const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
])

/** The same names, matched in place (forwardingOf, endToEnd). */
const HOP_BY_HOP_NAMES = new NameSet(HOP_BY_HOP)
const X_FORWARDED_NAMES = new NameSet(['x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host'])

/** How forwarding treats a request header (forwardingOf). */
export const END_TO_END = 0
/** Dropped (and a Connection header's tokens may name more: connectionNamesOthers). */
export const HOP_BY_HOP_HEADER = 1
/** X-Forwarded-For, -Proto or -Host: upstreamHead rewrites or keeps it by its rules. */
export const X_FORWARDED = 2

/** What forwarding does with the header named text[start, end) (END_TO_END, HOP_BY_HOP_HEADER or X_FORWARDED). */
export function forwardingOf(text: string, start: number, end: number): number {
  if (HOP_BY_HOP_NAMES.has(text, start, end)) return HOP_BY_HOP_HEADER
  if (X_FORWARDED_NAMES.has(text, start, end)) return X_FORWARDED
  return END_TO_END
}

/** A token of a Connection value (trimmed, lower-case) that makes another header hop-by-hop. */
function namesOther(token: string): boolean {
  // Names in HOP_BY_HOP (`keep-alive`, usually) go anyway.
  return token !== '' && !HOP_BY_HOP.has(token)
}

/** The names a Connection value adds to the hop-by-hop ones, added to `tokens`. */
function addTokens(value: string, tokens: Set<string> | undefined): Set<string> | undefined {
  if (value.indexOf(',') === -1) {
    // One token, the usual case (`keep-alive`): no split.
    const name = value.trim().toLowerCase()
    if (namesOther(name)) (tokens ??= new Set()).add(name)
    return tokens
  }
  for (const t of value.split(',')) {
    const name = t.trim().toLowerCase()
    if (namesOther(name)) (tokens ??= new Set()).add(name)
  }
  return tokens
}

/** Header names listed in `Connection` are hop-by-hop too. */
function connectionTokens(raw: readonly string[]): Set<string> | undefined {
  let tokens: Set<string> | undefined
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!
    if (name.length === 10 && name.toLowerCase() === 'connection') tokens = addTokens(raw[i + 1]!, tokens)
  }
  return tokens
}

/** Does this Connection value name a header besides the hop-by-hop ones? (`keep-alive`: no.) */
export function connectionNamesOthers(value: string): boolean {
  return addTokens(value, undefined) !== undefined
}

/** Raw headers without hop-by-hop ones. */
export function endToEnd(raw: readonly string[]): string[] {
  const extra = connectionTokens(raw)
  const out: string[] = []
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!
    if (HOP_BY_HOP_NAMES.has(name, 0, name.length) || extra?.has(name.toLowerCase())) continue
    out.push(name, raw[i + 1]!)
  }
  return out
}

/** The Host header's value, if the request has one. */
export function hostOf(req: ProxiedRequest): string | undefined {
  return req.host ?? req.headers.host
}

/**
 * The request head for the replica, without its blank line: the request line, the end-to-end
 * headers as received (case and repeats kept), the client's address appended to the last
 * X-Forwarded-For line (as proxies chain), and X-Forwarded-Proto / -Host set unless an earlier
 * proxy already set them. The Host header is kept as the client sent it. A plain head (see
 * ProxiedRequest) is used as it is, with the X-Forwarded-* lines after it.
 */
export function upstreamHead(req: ProxiedRequest): string {
  const client = req.socket.remoteAddress ?? ''
  let head = req.plainHead
  let lastFor = -1
  let sawProto = false
  let sawHost = false
  if (head === undefined) {
    const out = endToEnd(req.rawHeaders)
    for (let i = 0; i < out.length; i += 2) {
      const name = out[i]!
      if (!X_FORWARDED_NAMES.has(name, 0, name.length)) continue
      const lower = name.toLowerCase()
      if (lower === 'x-forwarded-for') lastFor = i
      else if (lower === 'x-forwarded-proto') sawProto = true
      else sawHost = true
    }
    head = `${req.method} ${req.url} HTTP/1.1\r\n`
    for (let i = 0; i < out.length; i += 2) head += i === lastFor ? `${out[i]}: ${out[i + 1]}, ${client}\r\n` : `${out[i]}: ${out[i + 1]}\r\n`
  }
  if (lastFor === -1) head += `X-Forwarded-For: ${client}\r\n`
  if (!sawProto) head += 'X-Forwarded-Proto: http\r\n'
  const host = hostOf(req)
  if (!sawHost && host !== undefined) head += `X-Forwarded-Host: ${host}\r\n`
  return head
}

/** Does this request carry a body? (RFC 9112 6.3: Transfer-Encoding or a non-zero length.) */
export function hasBody(req: IncomingMessage): boolean {
  const te = req.headers['transfer-encoding']
  if (te !== undefined) return true
  const cl = req.headers['content-length']
  return cl !== undefined && cl !== '0'
}

const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE', 'PUT', 'DELETE'])

/** RFC 9110 9.2.2: a request that may be sent twice with the same effect as once. */
export function isIdempotent(method: string | undefined): boolean {
  return IDEMPOTENT.has(method ?? 'GET')
}
