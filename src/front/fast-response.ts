/**
 * Response heads as the fast front writes them: the bytes node:http's ServerResponse would
 * write for the same answer (status line, the replica's end-to-end headers in order, Date
 * when the replica sent none, Connection / Keep-Alive, then the framing header), so a client
 * cannot tell which front answered.
 */
import { STATUS_CODES } from 'node:http'

/** How a response body is delimited on the client connection. */
export type Framing = typeof AS_IS | typeof CHUNKED
/** No body (HEAD, 204, 304) or a Content-Length the replica gave: bytes go out as they are. */
export const AS_IS = 0
/** Body bytes re-framed as chunks (the replica gave no length). */
export const CHUNKED = 1

// node's checks for outgoing headers (_http_outgoing: checkIsHttpToken, checkInvalidHeaderChar).
const TOKEN = /^[\^_`a-zA-Z\-0-9!#$%&'*+.|~]+$/
const INVALID_VALUE = /[^\t\x20-\x7e\x80-\xff]/

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

/**
 * The head for a replica's answer. `headers` are end-to-end already (forward.ts). Throws, as
 * node:http does, on a header name or value that must not be sent.
 */
export function clientHead(statusCode: number, statusMessage: string, headers: readonly string[], bodyless: boolean, keepAlive: boolean, keepAliveSeconds: number): ClientHead {
  let head = `HTTP/1.1 ${statusCode} ${statusMessage || STATUS_CODES[statusCode] || 'unknown'}\r\n`
  let sawDate = false
  let sawLength = false
  for (let i = 0; i < headers.length; i += 2) {
    const name = headers[i]!
    const value = headers[i + 1]!
    if (!TOKEN.test(name)) throw new TypeError(`Header name must be a valid HTTP token ["${name}"]`)
    if (INVALID_VALUE.test(value)) throw new TypeError(`Invalid character in header content ["${name}"]`)
    if (name.length === 4 && name.toLowerCase() === 'date') sawDate = true
    else if (name.length === 14 && name.toLowerCase() === 'content-length') sawLength = true
    head += `${name}: ${value}\r\n`
  }
  if (!sawDate) head += `Date: ${httpDate()}\r\n`
  head += connectionLines(keepAlive, keepAliveSeconds)
  if (sawLength || bodyless) return { head: `${head}\r\n`, framing: AS_IS }
  return { head: `${head}Transfer-Encoding: chunked\r\n\r\n`, framing: CHUNKED }
}
