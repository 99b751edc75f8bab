/**
 * Response heads as the fast front writes them: the bytes node:http's ServerResponse would
 * write for the same answer (status line, the replica's end-to-end headers in order, Date
 * when the replica sent none, Connection / Keep-Alive, then the framing header), so a client
 * cannot tell which front answered.
 */
import { STATUS_CODES } from 'node:http'
import { HOP_BY_HOP_HEADER, connectionNamesOthers, forwardingOf } from '../route/forward.js'
import { nameIs } from '../upstream/header-names.js'
import { isTrimmed } from '../upstream/response-parser.js'
import { FIELD_VALUE, TOKEN } from './http-chars.js'

/** How a response body is delimited on the client connection. */
export type Framing = typeof AS_IS | typeof CHUNKED
/** No body (HEAD, 204, 304) or a Content-Length the replica gave: bytes go out as they are. */
export const AS_IS = 0
/** Body bytes re-framed as chunks (the replica gave no length). */
export const CHUNKED = 1

// node's checks for outgoing headers (_http_outgoing: checkIsHttpToken, checkInvalidHeaderChar),
// by table (http-chars.ts): no regex run per header.

/** Is text[start, end) a header name node:http sends? (Not empty, token characters only.) */
function validName(text: string, start: number, end: number): boolean {
  if (end <= start) return false
  for (let i = start; i < end; i++) {
    const c = text.charCodeAt(i)
    if (TOKEN[c] !== 1) return false
  }
  return true
}

/** Is text[start, end) a header value node:http sends? */
function validValue(text: string, start: number, end: number): boolean {
  for (let i = start; i < end; i++) {
    const c = text.charCodeAt(i)
    if (FIELD_VALUE[c] !== 1) return false
  }
  return true
}

let cachedDate = ''
let dateTimer: NodeJS.Timeout | undefined
/** The Date header value, computed at most once per second (as node:http does). */
export function httpDate(): string {
  if (dateTimer === undefined) {
    cachedDate = new Date().toUTCString()
    dateTimer = setTimeout(() => {
      dateTimer = undefined
    }, 1000 - new Date().getMilliseconds())
    dateTimer.unref()
  }
  return cachedDate
}

/** The lines node:http adds after the user's headers for a persistent (or closing) connection. */
export function connectionLines(keepAlive: boolean, keepAliveSeconds: number): string {
  return keepAlive ? `Connection: keep-alive\r\nKeep-Alive: timeout=${keepAliveSeconds}\r\n` : 'Connection: close\r\n'
}

export interface ClientHead {
  head: string
  framing: Framing
}

// The pieces of a head that repeat from answer to answer, kept instead of built per answer.
let lastCode = 0
let lastMessage = ''
let lastStatusLine = ''
let dateFor = ''
let dateLineText = ''
let tailSeconds = -1
let keepAliveAsIs = ''
let keepAliveChunked = ''
const CLOSE_AS_IS = `${connectionLines(false, 0)}\r\n`
const CLOSE_CHUNKED = `${connectionLines(false, 0)}Transfer-Encoding: chunked\r\n\r\n`

/** The status line node:http writes. */
function statusLine(statusCode: number, statusMessage: string): string {
  if (statusCode !== lastCode || statusMessage !== lastMessage) {
    lastCode = statusCode
    lastMessage = statusMessage
    lastStatusLine = `HTTP/1.1 ${statusCode} ${statusMessage || STATUS_CODES[statusCode] || 'unknown'}\r\n`
  }
  return lastStatusLine
}

/** `Date: <httpDate()>` and its CRLF. */
function dateLine(): string {
  const date = httpDate()
  if (date !== dateFor) {
    dateFor = date
    dateLineText = `Date: ${date}\r\n`
  }
  return dateLineText
}

/** The connection lines, the framing header if any, and the blank line. */
function headTail(keepAlive: boolean, keepAliveSeconds: number, framing: Framing): string {
  if (!keepAlive) return framing === AS_IS ? CLOSE_AS_IS : CLOSE_CHUNKED
  if (keepAliveSeconds !== tailSeconds) {
    tailSeconds = keepAliveSeconds
    keepAliveAsIs = `${connectionLines(true, keepAliveSeconds)}\r\n`
    keepAliveChunked = `${connectionLines(true, keepAliveSeconds)}Transfer-Encoding: chunked\r\n\r\n`
  }
  return framing === AS_IS ? keepAliveAsIs : keepAliveChunked
}

/** What follows the replica's headers: Date unless it sent one, Connection / Keep-Alive, framing. */
function finishHead(head: string, sawDate: boolean, sawLength: boolean, bodyless: boolean, keepAlive: boolean, keepAliveSeconds: number): ClientHead {
  if (!sawDate) head += dateLine()
  const framing = sawLength || bodyless ? AS_IS : CHUNKED
  return { head: head + headTail(keepAlive, keepAliveSeconds, framing), framing }
}

/**
 * The head for a replica's answer. `headers` are end-to-end already (forward.ts). Throws, as
 * node:http does, on a header name or value that must not be sent.
 */
export function clientHead(statusCode: number, statusMessage: string, headers: readonly string[], bodyless: boolean, keepAlive: boolean, keepAliveSeconds: number): ClientHead {
  let head = statusLine(statusCode, statusMessage)
  let sawDate = false
  let sawLength = false
  for (let i = 0; i < headers.length; i += 2) {
    const name = headers[i]!
    const value = headers[i + 1]!
    if (!validName(name, 0, name.length)) throw new TypeError(`Header name must be a valid HTTP token ["${name}"]`)
    if (!validValue(value, 0, value.length)) throw new TypeError(`Invalid character in header content ["${name}"]`)
    if (nameIs(name, 0, name.length, 'date')) sawDate = true
    else if (nameIs(name, 0, name.length, 'content-length')) sawLength = true
    head += `${name}: ${value}\r\n`
  }
  return finishHead(head, sawDate, sawLength, bodyless, keepAlive, keepAliveSeconds)
}

/**
 * The same head as clientHead(statusCode, statusMessage, endToEnd(rawHeaders), ...) built from
 * the replica's head as read (`headText`: status line and header lines, without the blank
 * line): when its header lines are already written as clientHead writes them (`Name: value`,
 * one space, nothing the parser trims around the value, characters node:http sends), the
 * end-to-end lines are copied as runs of the text, the hop-by-hop ones cut out, with no
 * per-header strings. Undefined when a line is not like that, or a Connection header names
 * another header: then clientHead, over rawHeaders, decides (and throws where it must).
 */
export function clientHeadFromText(statusCode: number, statusMessage: string, headText: string, bodyless: boolean, keepAlive: boolean, keepAliveSeconds: number): ClientHead | undefined {
  const first = headText.indexOf('\r\n')
  const end = headText.length
  let head = statusLine(statusCode, statusMessage)
  if (first === -1) return finishHead(head, false, false, bodyless, keepAlive, keepAliveSeconds)
  let sawDate = false
  let sawLength = false
  let runStart = first + 2
  let pos = runStart
  while (pos < end) {
    let lineEnd = headText.indexOf('\r\n', pos)
    if (lineEnd === -1) lineEnd = end
    const colon = headText.indexOf(':', pos)
    if (colon === -1 || colon > lineEnd || !validName(headText, pos, colon)) return undefined
    if (forwardingOf(headText, pos, colon) === HOP_BY_HOP_HEADER) {
      // `keep-alive` (the usual value, one space after the colon) is read in place.
      if (nameIs(headText, pos, colon, 'connection') && !(headText.charCodeAt(colon + 1) === 32 && nameIs(headText, colon + 2, lineEnd, 'keep-alive')) && connectionNamesOthers(headText.slice(colon + 1, lineEnd))) return undefined
      if (pos > runStart) head += headText.slice(runStart, pos)
      runStart = lineEnd + 2
    } else {
      const vStart = colon + 2
      if (headText.charCodeAt(colon + 1) !== 32 || vStart > lineEnd) return undefined
      if (vStart < lineEnd && (isTrimmed(headText.charCodeAt(vStart)) || isTrimmed(headText.charCodeAt(lineEnd - 1)))) return undefined
      if (!validValue(headText, vStart, lineEnd)) return undefined
      if (nameIs(headText, pos, colon, 'date')) sawDate = true
      else if (nameIs(headText, pos, colon, 'content-length')) sawLength = true
    }
    pos = lineEnd + 2
  }
  // The last line has no CRLF in headText.
  if (runStart < end) head += `${headText.slice(runStart, end)}\r\n`
  return finishHead(head, sawDate, sawLength, bodyless, keepAlive, keepAliveSeconds)
}
