/**
 * A minimal HTTP/1.1 response reader for the upstream side of the proxy: what `http.request`
 * does, minus everything a proxy does not need (no IncomingMessage, no stream objects, no
 * per-response listeners). Fed the socket's chunks; calls its handler with the head, then
 * with body bytes as they arrive, the last call flagged, so the caller can relay (stream)
 * the body and end its own response in the same write.
 *
 * Framing (RFC 9112 6.3): no body for HEAD requests, 1xx, 204 and 304; else
 * Transfer-Encoding: chunked (decoded; trailers dropped), else Content-Length, else the body
 * runs until the connection closes. Interim 1xx answers (100 Continue) are skipped.
 * `keepAlive` says whether the connection may carry another request afterwards.
 */
import { nameIs } from './header-names.js'
import { UpstreamProtocolError } from './errors.js'

export interface ResponseHandler {
  /**
   * The response head. `headText` is the head as read (status line and header lines, without
   * the blank line), already checked line by line: a reader that can use the lines as they are
   * does (the fast front's clientHeadFromText); one that wants [name, value, ...] asks
   * `responseRawHeaders(headText)`. Not building that array for every response is the point:
   * two strings per header and the array were a fifth of the bytes a proxied GET allocated.
   */
  onHead(statusCode: number, statusMessage: string, headText: string): void
  /** Body bytes, in order; exactly one call per response has `last` set (maybe with no bytes). */
  onData(chunk: Buffer, last: boolean): void
}


// Parser states (plain numbers: no enum object on the hot path).
const IDLE = 0
const HEAD = 1
const LENGTH = 2
const CHUNK_SIZE = 3
const CHUNK_DATA = 4
const CHUNK_DATA_END = 5
const TRAILERS = 6
const UNTIL_CLOSE = 7
const DONE = 8

const CRLF2 = Buffer.from('\r\n\r\n')
const EMPTY = Buffer.alloc(0)
/** Largest response head accepted (Node's default limit is 16 KiB; be a little lenient). */
export const MAX_HEAD_BYTES = 64 * 1024
const MAX_LINE = 4096

/**
 * The characters String.prototype.trim() removes that a latin1 head can hold: tab, LF, VT,
 * FF, CR, space and no-break space (0xA0); the rest of its set is above 0xFF.
 */
export function isTrimmed(c: number): boolean {
  return c === 32 || (c >= 9 && c <= 13) || c === 160
}

/** The line starting at `start` has no CR or LF before `end` (its CRLF; -1: the head's last line). */
function lineEndsAt(text: string, start: number, end: number): boolean {
  const cr = text.indexOf('\r', start)
  const lf = text.indexOf('\n', start)
  return end === -1 ? cr === -1 && lf === -1 : cr === end && lf === end + 1
}

export class ResponseParser {
  private state: number = IDLE
  private noBody = false
  private pending: Buffer | undefined
  private line = ''
  private remaining = 0
  /** The connection may be reused once this response is done. */
  keepAlive = false
  /** Bytes followed the last complete response in the same read (see `complete`). */
  trailing = false

  constructor(private readonly handler: ResponseHandler) {}

  /** Expect a new response; `head` is true when it answers a HEAD request (never a body). */
  expect(head: boolean): void {
    this.state = HEAD
    this.noBody = head
    this.pending = undefined
    this.keepAlive = false
    this.trailing = false
  }

  /** Stop: further input is ignored (the caller is done with this response). */
  abort(): void {
    this.state = IDLE
    this.pending = undefined
  }

  /** A response head has been received (and not yet the whole body). */
  get inBody(): boolean {
    return this.state !== HEAD && this.state !== IDLE && this.state !== DONE
  }

  get done(): boolean {
    return this.state === DONE
  }

  get idle(): boolean {
    return this.state === IDLE || this.state === DONE
  }

  /** Feed bytes from the socket. Throws UpstreamProtocolError on a malformed response. */
  execute(data: Buffer): void {
    let buf = data
    let pos = 0
    while (pos < buf.length) {
      switch (this.state) {
        case HEAD: {
          if (this.pending !== undefined) {
            buf = Buffer.concat([this.pending, pos === 0 ? buf : buf.subarray(pos)])
            pos = 0
            this.pending = undefined
          }
          const end = buf.indexOf(CRLF2, pos)
          if (end === -1) {
            if (buf.length - pos > MAX_HEAD_BYTES) throw new UpstreamProtocolError('response head too large')
            this.pending = buf.subarray(pos)
            return
          }
          if (end - pos > MAX_HEAD_BYTES) throw new UpstreamProtocolError('response head too large')
          const headText = buf.toString('latin1', pos, end)
          pos = end + 4
          this.head(headText)
          // A response without a body is complete with its head.
          if (this.done) this.complete(EMPTY, pos < buf.length)
          break
        }
        case LENGTH: {
          const take = Math.min(this.remaining, buf.length - pos)
          this.remaining -= take
          const chunk = pos === 0 && take === buf.length ? buf : buf.subarray(pos, pos + take)
          pos += take
          if (this.remaining === 0) this.complete(chunk, pos < buf.length)
          else this.handler.onData(chunk, false)
          break
        }
        case UNTIL_CLOSE: {
          this.handler.onData(pos === 0 ? buf : buf.subarray(pos), false)
          return
        }
        case CHUNK_SIZE:
        case TRAILERS: {
          const lf = buf.indexOf(10, pos)
          const stop = lf === -1 ? buf.length : lf
          this.line += buf.toString('latin1', pos, stop)
          if (this.line.length > MAX_LINE) throw new UpstreamProtocolError('chunk line too long')
          if (lf === -1) return
          pos = lf + 1
          const text = this.line.endsWith('\r') ? this.line.slice(0, -1) : this.line
          this.line = ''
          if (this.state === TRAILERS) {
            if (text === '') this.complete(EMPTY, pos < buf.length)
            break
          }
          const semi = text.indexOf(';')
          const hex = (semi === -1 ? text : text.slice(0, semi)).trim()
          if (!/^[0-9a-fA-F]{1,8}$/.test(hex)) throw new UpstreamProtocolError(`bad chunk size ${JSON.stringify(hex)}`)
          const size = parseInt(hex, 16)
          if (size === 0) this.state = TRAILERS
          else {
            this.remaining = size
            this.state = CHUNK_DATA
          }
          break
        }
        case CHUNK_DATA: {
          const take = Math.min(this.remaining, buf.length - pos)
          this.remaining -= take
          const chunk = buf.subarray(pos, pos + take)
          pos += take
          if (this.remaining === 0) {
            this.state = CHUNK_DATA_END
            this.remaining = 2
          }
          this.handler.onData(chunk, false)
          break
        }
        case CHUNK_DATA_END: {
          // The CRLF after a chunk's data, possibly split across reads.
          const c = buf[pos]!
          if ((this.remaining === 2 && c !== 13) || (this.remaining === 1 && c !== 10)) throw new UpstreamProtocolError('missing CRLF after chunk')
          pos++
          if (--this.remaining === 0) this.state = CHUNK_SIZE
          break
        }
        case IDLE:
          return
        case DONE:
          // Bytes after a complete response that nobody asked for (complete() saw them).
          return
      }
    }
  }

  /**
   * The connection reached end of file. Returns true if that completed the response (a body
   * delimited by the close); false if the response was cut short (or never started).
   */
  eof(): boolean {
    if (this.state === UNTIL_CLOSE) {
      this.complete(EMPTY, false)
      return true
    }
    return this.state === DONE || this.state === IDLE
  }

  /**
   * The response is complete. `trailing`: more bytes followed it in the same read — the next
   * pipelined response if the handler calls `expect` for one while handling this call (parsing
   * then goes on), else bytes nobody asked for, which forbid reusing the connection.
   */
  private complete(chunk: Buffer, trailing: boolean): void {
    this.trailing = trailing
    this.state = DONE
    this.handler.onData(chunk, true)
  }

  private head(text: string): void {
    // RFC 9110 5.5 / RFC 9112 2.2: no NUL anywhere, and CR and LF only as CRLF line ends
    // (a bare one could split a header line in two for the client: response splitting).
    if (text.indexOf('\0') !== -1) throw new UpstreamProtocolError('NUL in the response head')
    // Status line: HTTP/1.1 200 OK
    const firstEnd = text.indexOf('\r\n')
    if (!lineEndsAt(text, 0, firstEnd)) throw new UpstreamProtocolError('bare CR or LF in the response head')
    const statusLine = firstEnd === -1 ? text : text.slice(0, firstEnd)
    if (!statusLine.startsWith('HTTP/1.') || statusLine.charCodeAt(8) !== 32) throw new UpstreamProtocolError(`bad status line ${JSON.stringify(statusLine.slice(0, 40))}`)
    const http10 = statusLine.charCodeAt(7) === 48 // '0'
    const statusCode = Number(statusLine.slice(9, 12))
    if (!(statusCode >= 100 && statusCode <= 999) || (statusLine.length > 12 && statusLine.charCodeAt(12) !== 32)) {
      throw new UpstreamProtocolError(`bad status line ${JSON.stringify(statusLine.slice(0, 40))}`)
    }
    const statusMessage = statusLine.length > 13 ? statusLine.slice(13) : ''

    // The header lines are checked and the framing headers read where they lie: no string
    // per header (responseRawHeaders builds them for a reader that wants them).
    let sawHeader = false
    let contentLength = -1
    let chunked = false
    let sawTe = false
    let close = http10
    let pos = firstEnd === -1 ? text.length : firstEnd + 2
    while (pos < text.length) {
      let end = text.indexOf('\r\n', pos)
      if (!lineEndsAt(text, pos, end)) throw new UpstreamProtocolError('bare CR or LF in the response head')
      if (end === -1) end = text.length
      const c0 = text.charCodeAt(pos)
      if (c0 === 32 || c0 === 9) {
        // Obsolete line folding: continues the previous value (which framing does not reread).
        if (!sawHeader) throw new UpstreamProtocolError('header continuation without a header')
        pos = end + 2
        continue
      }
      const colon = text.indexOf(':', pos)
      if (colon === -1 || colon > end || colon === pos) throw new UpstreamProtocolError('bad header line')
      sawHeader = true
      const nameStart = pos
      pos = end + 2
      switch (colon - nameStart) {
        case 14:
          if (nameIs(text, nameStart, colon, 'content-length')) {
            const vStart = valueStart(text, colon, end)
            const n = digitsValue(text, vStart, valueEnd(text, vStart, end))
            if (n === -1 || (contentLength !== -1 && contentLength !== n)) throw new UpstreamProtocolError('bad Content-Length')
            contentLength = n
          }
          break
        case 17:
          if (nameIs(text, nameStart, colon, 'transfer-encoding')) {
            sawTe = true
            const vStart = valueStart(text, colon, end)
            const v = text.slice(vStart, valueEnd(text, vStart, end)).toLowerCase()
            // Only a final `chunked` frames the body; anything else is read until close.
            if (v === 'chunked' || v.endsWith(',chunked') || v.endsWith(', chunked')) chunked = true
            else close = true
          }
          break
        case 10:
          if (nameIs(text, nameStart, colon, 'connection')) {
            // Whitespace around the value cannot be part of either word: no trim needed.
            if (includesLower(text, colon + 1, end, 'close')) close = true
            else if (http10 && includesLower(text, colon + 1, end, 'keep-alive')) close = false
          }
          break
      }
    }

    // RFC 9112 6.1: both framings at once may be a smuggling or splitting attempt: refused (502).
    if (sawTe && contentLength !== -1) throw new UpstreamProtocolError('both Content-Length and Transfer-Encoding')
    if (statusCode < 200 && statusCode !== 101) {
      // Interim answer (100 Continue, 103 Early Hints): the real one follows.
      this.state = HEAD
      return
    }
    this.handler.onHead(statusCode, statusMessage, text)
    if (this.state !== HEAD) return // aborted by the handler
    if (statusCode === 101) {
      // The proxy never asks for an upgrade on this path; treat what follows as opaque.
      this.keepAlive = false
      this.state = UNTIL_CLOSE
      return
    }
    if (this.noBody || statusCode === 204 || statusCode === 304) {
      this.keepAlive = !close
      this.state = DONE
    } else if (chunked) {
      this.keepAlive = !close
      this.line = ''
      this.state = CHUNK_SIZE
    } else if (contentLength >= 0) {
      this.keepAlive = !close
      if (contentLength === 0) this.state = DONE
      else {
        this.remaining = contentLength
        this.state = LENGTH
      }
    } else {
      this.keepAlive = false
      this.state = UNTIL_CLOSE
    }
  }
}

/**
 * The header lines of a head ResponseParser accepted, as [name, value, name, value, ...] in
 * the order received: values without the whitespace trim() removes, an obsolete folded line
 * joined to the value before it with one space. Only for heads the parser has checked.
 */
export function responseRawHeaders(headText: string): string[] {
  const raw: string[] = []
  const firstEnd = headText.indexOf('\r\n')
  let pos = firstEnd === -1 ? headText.length : firstEnd + 2
  while (pos < headText.length) {
    let end = headText.indexOf('\r\n', pos)
    if (end === -1) end = headText.length
    const c0 = headText.charCodeAt(pos)
    if (c0 === 32 || c0 === 9) {
      raw[raw.length - 1] += ' ' + headText.slice(pos, end).trim()
    } else {
      const colon = headText.indexOf(':', pos)
      const vStart = valueStart(headText, colon, end)
      raw.push(headText.slice(pos, colon), headText.slice(vStart, valueEnd(headText, vStart, end)))
    }
    pos = end + 2
  }
  return raw
}

/** Where the value of the header line whose colon is at `colon` (and CRLF at `end`) starts: the whitespace trim() removes skipped. */
function valueStart(text: string, colon: number, end: number): number {
  let i = colon + 1
  while (i < end && isTrimmed(text.charCodeAt(i))) i++
  return i
}

/** Where that value, starting at `start`, ends: trailing whitespace trim() removes dropped. */
function valueEnd(text: string, start: number, end: number): number {
  let i = end
  while (i > start && isTrimmed(text.charCodeAt(i - 1))) i--
  return i
}

/** text[start, end) as a number if it is 1 to 15 decimal digits (a Content-Length), else -1. */
function digitsValue(text: string, start: number, end: number): number {
  if (end - start < 1 || end - start > 15) return -1
  let n = 0
  for (let i = start; i < end; i++) {
    const d = text.charCodeAt(i) - 48
    if (d < 0 || d > 9) return -1
    n = n * 10 + d
  }
  return n
}

/** Does text[start, end), lower-cased, contain `lower`? (ASCII letters only are folded.) */
function includesLower(text: string, start: number, end: number, lower: string): boolean {
  const last = end - lower.length
  outer: for (let i = start; i <= last; i++) {
    for (let j = 0; j < lower.length; j++) {
      let c = text.charCodeAt(i + j)
      if (c >= 65 && c <= 90) c += 32
      if (c !== lower.charCodeAt(j)) continue outer
    }
    return true
  }
  return false
}
