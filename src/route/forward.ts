/**
 * Header rules for forwarding: hop-by-hop headers (RFC 9110 7.6.1) stay on their own
 * connection; the replica learns who the client was from X-Forwarded-*. Works on raw header
 * arrays ([name, value, name, value, ...]) so case and repeated headers survive the trip.
 */
import type { IncomingHttpHeaders, IncomingMessage } from 'node:http'

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

/** Header names listed in `Connection` are hop-by-hop too. */
function connectionTokens(raw: readonly string[]): Set<string> | undefined {
  let tokens: Set<string> | undefined
  for (let i = 0; i < raw.length; i += 2) {
    if (raw[i]!.length === 10 && raw[i]!.toLowerCase() === 'connection') {
      for (const t of raw[i + 1]!.split(',')) {
        const name = t.trim().toLowerCase()
        // Names in HOP_BY_HOP (`keep-alive`, usually) go anyway.
        if (name && !HOP_BY_HOP.has(name)) (tokens ??= new Set()).add(name)
      }
    }
  }
  return tokens
}

/** The lengths of the HOP_BY_HOP names: other names need no lower-casing and lookup. */
const HOP_BY_HOP_LENGTHS = new Uint8Array(32)
for (const name of HOP_BY_HOP) HOP_BY_HOP_LENGTHS[name.length] = 1

/** Raw headers without hop-by-hop ones. */
export function endToEnd(raw: readonly string[]): string[] {
  const extra = connectionTokens(raw)
  const out: string[] = []
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!
    // Most names (Content-Type, Content-Length, Date, ...) are ruled out by their length alone.
    if (extra !== undefined || (name.length < 32 && HOP_BY_HOP_LENGTHS[name.length] === 1)) {
      const lower = name.toLowerCase()
      if (HOP_BY_HOP.has(lower) || extra?.has(lower)) continue
    }
    out.push(name, raw[i + 1]!)
  }
  return out
}

/**
 * Request headers for the replica: end-to-end headers, the client's address appended to
 * X-Forwarded-For, and X-Forwarded-Proto / -Host set unless an earlier proxy already set them.
 * The Host header is kept as the client sent it.
 */
export function upstreamRequestHeaders(req: ProxiedRequest): string[] {
  const out = endToEnd(req.rawHeaders)
  const client = req.socket.remoteAddress ?? ''
  let lastFor = -1
  let sawProto = false
  let sawHost = false
  for (let i = 0; i < out.length; i += 2) {
    const name = out[i]!
    // x-forwarded-for / -host / -proto are 15 to 17 long: other names need no lower-cased copy.
    if (name.length < 15 || name.length > 17) continue
    const lower = name.toLowerCase()
    if (lower === 'x-forwarded-for') lastFor = i
    else if (lower === 'x-forwarded-proto') sawProto = true
    else if (lower === 'x-forwarded-host') sawHost = true
  }
  // The client is the last hop: append to the last X-Forwarded-For line, as proxies chain.
  if (lastFor !== -1) out[lastFor + 1] = `${out[lastFor + 1]}, ${client}`
  else out.push('X-Forwarded-For', client)
  if (!sawProto) out.push('X-Forwarded-Proto', 'http')
  if (!sawHost && req.headers.host !== undefined) out.push('X-Forwarded-Host', req.headers.host)
  return out
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
