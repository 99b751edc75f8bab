/**
 * The strict reader of a request head that every request not served by the fast path goes
 * through before node:http sees a byte of it (edge-connection.ts). It applies the RFC 9112 /
 * RFC 9110 rules node:http (llhttp) does not, or applies more leniently: one valid Host,
 * absolute-form rewritten to origin-form, HTTP versions, request-line and header limits,
 * Content-Length / Transfer-Encoding framing, CONNECT, `*`, Expect. What it accepts, llhttp
 * accepts too, and both agree on where the message ends (so nothing can be smuggled past
 * these checks inside what llhttp takes for a body, or the other way round).
 * Each rule cites its section; ../shared/HARDENING.md has the table of cases.
 */
import { METHODS } from 'node:http'
import { FIELD_VALUE, TARGET, TOKEN } from './http-chars.js'

export interface HeadLimits {
  /** Largest head in bytes (431; a request line alone longer than this: 414). */
  readonly maxHeaderSize: number
  /** Most header lines (431). */
  readonly maxHeaders: number
  /** Largest request body (413 when Content-Length says more); undefined: no limit. */
  readonly maxRequestBody: number | undefined
}

/** A head the edge accepts, and what node:http is to be given for it. */
export interface AcceptedHead {
  readonly ok: true
  /** Index just past the head's blank line. */
  readonly end: number
  /** The head as node:http must see it (a rewrite of absolute-form or HTTP/1.x, x > 1), or undefined: as received. */
  readonly rewritten: Buffer | undefined
  readonly method: string
  /** Body framing: -1 chunked, else the Content-Length (0: no body). */
  readonly bodyLength: number
  /** No further request may be read on this connection after this one (RFC 9112 9.3, 9.6). */
  readonly close: boolean
  /** An upgrade request: after its head the connection is node:http's upgrade handler's. */
  readonly upgrade: boolean
}

/** A head the edge answers itself: the status, a reason for the SPEC-shaped body, and always a close. */
export interface RejectedHead {
  readonly ok: false
  readonly status: number
  readonly reason: string
  /** Extra response headers (e.g. Allow for 405). */
  readonly headers?: Readonly<Record<string, string>>
}

export type HeadVerdict = AcceptedHead | RejectedHead

const CRLF2 = Buffer.from('\r\n\r\n')
const LFLF = Buffer.from('\n\n')

/** RFC 3986 reg-name / IPv4 characters (unreserved, pct-encoded, sub-delims). */
const REG_NAME = new Uint8Array(256)
for (const c of "-._~%!$&'()*+,;=") REG_NAME[c.charCodeAt(0)] = 1
for (let c = 48; c <= 57; c++) REG_NAME[c] = 1
for (let c = 65; c <= 90; c++) REG_NAME[c] = 1
for (let c = 97; c <= 122; c++) REG_NAME[c] = 1

/** Methods llhttp (node:http's parser) knows; other valid tokens get 501 (see README). */
const KNOWN_METHODS = new Set(METHODS)
/** What a 405 for CONNECT allows: the common methods a proxy forwards. */
const ALLOW = 'GET, HEAD, POST, PUT, DELETE, OPTIONS, PATCH, TRACE'

/** Is `host` a valid Host value: uri-host [ ":" port ] (RFC 9110 7.2, RFC 3986 3.2.2)? Empty is allowed. */
export function validHost(host: string): boolean {
  let i = 0
  const n = host.length
  if (n > 0 && host.charCodeAt(0) === 91 /* [ */) {
    const close = host.indexOf(']')
    if (close < 2) return false
    for (i = 1; i < close; i++) {
      const c = host.charCodeAt(i)
      // IPv6 (hex, ':', '.') or IPvFuture's characters.
      if (!(c === 58 || c === 46 || (c < 256 && REG_NAME[c] === 1))) return false
    }
    i = close + 1
  } else {
    while (i < n) {
      const c = host.charCodeAt(i)
      if (c === 58 /* : */) break
      if (c >= 256 || REG_NAME[c] !== 1) return false
      i++
    }
  }
  if (i === n) return true
  if (host.charCodeAt(i) !== 58) return false
  for (i++; i < n; i++) {
    const c = host.charCodeAt(i)
    if (c < 48 || c > 57) return false
  }
  return true
}

function reject(status: number, reason: string, headers?: Record<string, string>): RejectedHead {
  return headers === undefined ? { ok: false, status, reason } : { ok: false, status, reason, headers }
}

/**
 * Read the head at the start of `buf`. Undefined while it is incomplete and within the limits;
 * a verdict once it is complete, or as soon as it is known to be refused.
 */
export function readHead(buf: Buffer, limits: HeadLimits): HeadVerdict | undefined {
  // RFC 9112 2.2: a server SHOULD ignore at least one empty line before the request line.
  let start = 0
  while (start + 1 < buf.length && buf[start] === 13 && buf[start + 1] === 10 && start < 8) start += 2
  const firstLf = buf.indexOf(10, start)
  if (firstLf === -1) {
    // RFC 9112 3: a request line longer than the server will parse gets 414.
    if (buf.length - start > limits.maxHeaderSize) return reject(414, 'request line too long')
    return undefined
  }
  if (firstLf - start > limits.maxHeaderSize) return reject(414, 'request line too long')
  // RFC 9112 2.2: bare LF is not a line ending a proxy may pass on.
  if (firstLf === start || buf[firstLf - 1] !== 13) return reject(400, 'bare LF in the request line')
  let headEnd = buf.indexOf(CRLF2, firstLf - 1)
  const lflf = buf.indexOf(LFLF, start)
  if (lflf !== -1 && (headEnd === -1 || lflf < headEnd)) return reject(400, 'bare LF line ending')
  if (headEnd === -1) {
    if (buf.length - start > limits.maxHeaderSize) return reject(431, 'request head too large')
    return undefined
  }
  if (headEnd + 4 - start > limits.maxHeaderSize) return reject(431, 'request head too large')
  return checkHead(buf.toString('latin1', start, headEnd + 2), headEnd + 4, limits)
}

/** `text`: the head from the request line to the CRLF ending its last header line. */
function checkHead(text: string, end: number, limits: HeadLimits): HeadVerdict {
  // Bare CR or LF anywhere (RFC 9112 2.2: a bare CR must be rejected or replaced).
  for (let i = text.indexOf('\r'); i !== -1; i = text.indexOf('\r', i + 1)) if (text.charCodeAt(i + 1) !== 10) return reject(400, 'bare CR')
  for (let i = text.indexOf('\n'); i !== -1; i = text.indexOf('\n', i + 1)) if (text.charCodeAt(i - 1) !== 13) return reject(400, 'bare LF line ending')

  // Request line (RFC 9112 3): method SP request-target SP HTTP-version.
  const lineEnd = text.indexOf('\r\n')
  const sp1 = text.indexOf(' ')
  if (sp1 <= 0 || sp1 > lineEnd) return reject(400, 'bad request line')
  const method = text.slice(0, sp1)
  for (let i = 0; i < sp1; i++) if (TOKEN[text.charCodeAt(i)] !== 1) return reject(400, 'method is not a token')
  const sp2 = text.indexOf(' ', sp1 + 1)
  // RFC 9112 2.3: HTTP/0.9 (no version) is not served.
  if (sp2 === -1 || sp2 > lineEnd) return reject(400, 'no HTTP version (HTTP/0.9 is not served)')
  const target = text.slice(sp1 + 1, sp2)
  const version = text.slice(sp2 + 1, lineEnd)
  if (target.length === 0) return reject(400, 'empty request target')
  for (let i = 0; i < target.length; i++) if (TARGET[target.charCodeAt(i)] !== 1) return reject(400, 'invalid character in the request target')
  if (version.length !== 8 || !version.startsWith('HTTP/') || version.charCodeAt(6) !== 46) return reject(400, 'bad HTTP version')
  const major = version.charCodeAt(5) - 48
  const minor = version.charCodeAt(7) - 48
  if (major < 0 || major > 9 || minor < 0 || minor > 9) return reject(400, 'bad HTTP version')
  // RFC 9110 15.6.6: a major version the server does not support.
  if (major !== 1) return reject(505, `HTTP/${major}.${minor} is not supported`)
  // RFC 9110 6.2: a higher 1.x minor is served as the highest one we speak, 1.1.
  const http10 = minor === 0
  let rewrite = minor > 1

  // RFC 9110 9.3.6: no tunnels through this proxy.
  if (method === 'CONNECT') return reject(405, 'CONNECT is not allowed', { allow: ALLOW })
  if (!KNOWN_METHODS.has(method)) return reject(501, `method ${method} is not implemented`)

  // Request target forms (RFC 9112 3.2).
  let path = target
  let authority: string | undefined
  if (target.charCodeAt(0) === 47 /* / */) {
    // origin-form
  } else if (target === '*') {
    if (method !== 'OPTIONS') return reject(400, "'*' is only for OPTIONS")
  } else {
    // absolute-form: MUST be accepted; the proxy forwards origin-form with Host from it (3.2.2).
    const m = /^https?:\/\/([^/?#]*)(.*)$/i.exec(target)
    if (m === null) return reject(400, 'request target is not origin-form, absolute-form or *')
    authority = m[1]!
    const userinfo = authority.indexOf('@')
    if (userinfo !== -1) return reject(400, 'userinfo in the request target')
    if (authority === '' || !validHost(authority)) return reject(400, 'invalid authority in the request target')
    path = m[2]!
    if (path === '' || path.charCodeAt(0) === 63 /* ? */) path = `/${path}`
    rewrite = true
  }

  // Header lines (RFC 9112 5, RFC 9110 5.5).
  let count = 0
  let hosts = 0
  let host = ''
  let contentLength = -1
  let lengths = 0
  let te: string | undefined
  let connection = ''
  let upgradeHeader = false
  let pos = lineEnd + 2
  while (pos < text.length) {
    const eol = text.indexOf('\r\n', pos)
    if (++count > limits.maxHeaders) return reject(431, `more than ${limits.maxHeaders} header lines`)
    const c0 = text.charCodeAt(pos)
    // RFC 9112 5.2 obs-fold, 2.2 a whitespace-preceded line: rejected, never forwarded.
    if (c0 === 32 || c0 === 9) return reject(400, 'folded or whitespace-preceded header line')
    const colon = text.indexOf(':', pos)
    if (colon === -1 || colon > eol || colon === pos) return reject(400, 'bad header line')
    // RFC 9112 5.1: no whitespace between the field name and the colon (a token check covers it).
    for (let i = pos; i < colon; i++) if (TOKEN[text.charCodeAt(i)] !== 1) return reject(400, 'invalid header name')
    let vs = colon + 1
    let ve = eol
    while (vs < ve && (text.charCodeAt(vs) === 32 || text.charCodeAt(vs) === 9)) vs++
    while (ve > vs && (text.charCodeAt(ve - 1) === 32 || text.charCodeAt(ve - 1) === 9)) ve--
    for (let i = vs; i < ve; i++) if (FIELD_VALUE[text.charCodeAt(i)] !== 1) return reject(400, 'invalid character in a header value')
    const nameLength = colon - pos
    const name = nameLength === 4 || nameLength === 6 || nameLength === 7 || nameLength === 10 || nameLength === 14 || nameLength === 17 ? text.slice(pos, colon).toLowerCase() : ''
    const value = name === '' ? '' : text.slice(vs, ve)
    switch (name) {
      case 'host':
        hosts++
        host = value
        break
      case 'content-length':
        // RFC 9112 6.3 item 5 / RFC 9110 8.6: 1*DIGIT, once.
        lengths++
        if (!/^\d{1,15}$/.test(value)) return reject(400, 'invalid Content-Length')
        contentLength = Number(value)
        break
      case 'transfer-encoding':
        te = te === undefined ? value : `${te},${value}`
        break
      case 'connection':
        connection = connection === '' ? value.toLowerCase() : `${connection},${value.toLowerCase()}`
        break
      case 'upgrade':
        upgradeHeader = true
        break
      case 'expect':
        // RFC 9110 10.1.1: only 100-continue is defined.
        if (value.toLowerCase() !== '100-continue') return reject(417, `Expect: ${value} is not supported`)
        break
    }
    pos = eol + 2
  }

  // Host (RFC 9112 3.2): exactly one in HTTP/1.1, at most one in 1.0, always a valid one.
  if (hosts > 1) return reject(400, 'more than one Host header')
  if (hosts === 0 && !http10 && authority === undefined) return reject(400, 'no Host header')
  if (hosts === 1 && !validHost(host)) return reject(400, 'invalid Host header')

  // Framing (RFC 9112 6).
  if (lengths > 1) return reject(400, 'more than one Content-Length')
  let bodyLength = contentLength === -1 ? 0 : contentLength
  if (te !== undefined) {
    // 6.1: Transfer-Encoding in HTTP/1.0 is faulty framing; with Content-Length, possible smuggling.
    if (http10) return reject(400, 'Transfer-Encoding in an HTTP/1.0 request')
    if (lengths > 0) return reject(400, 'both Content-Length and Transfer-Encoding')
    // 6.3 item 4: chunked must be the final coding, and only once.
    const codings = te.split(',').map((s) => s.trim().toLowerCase())
    const last = codings[codings.length - 1]
    if (last !== 'chunked' || codings.indexOf('chunked') !== codings.length - 1) return reject(400, 'Transfer-Encoding without a final chunked')
    for (const coding of codings) {
      if (coding === '') return reject(400, 'empty transfer coding')
      for (let i = 0; i < coding.length; i++) if (TOKEN[coding.charCodeAt(i)] !== 1) return reject(400, 'invalid transfer coding')
    }
    bodyLength = -1
  }
  if (limits.maxRequestBody !== undefined && bodyLength > limits.maxRequestBody) return reject(413, `request body over ${limits.maxRequestBody} bytes`)

  const tokens = connection === '' ? [] : connection.split(',').map((s) => s.trim())
  const close = http10 ? !tokens.includes('keep-alive') : tokens.includes('close')
  const upgrade = upgradeHeader && tokens.includes('upgrade')

  let rewritten: Buffer | undefined
  if (rewrite) {
    // origin-form and HTTP/1.1 (or 1.0) for node:http and the replica; Host from the authority.
    let head = `${method} ${path} HTTP/1.${http10 ? 0 : 1}\r\n`
    pos = lineEnd + 2
    while (pos < text.length) {
      const eol = text.indexOf('\r\n', pos)
      const line = text.slice(pos, eol)
      if (authority === undefined || !/^host:/i.test(line)) head += `${line}\r\n`
      pos = eol + 2
    }
    if (authority !== undefined) head += `Host: ${authority}\r\n`
    rewritten = Buffer.from(`${head}\r\n`, 'latin1')
  }
  return { ok: true, end, rewritten, method, bodyLength, close, upgrade }
}
