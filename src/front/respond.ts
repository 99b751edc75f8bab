/**
 * The SPEC's JSON answers, `{"message": ..., "status": "successful" | "failure"}`, and the one
 * place that writes its error answer, in the three forms the fronts need: through node:http's
 * ServerResponse (sendError), as the raw bytes the fast front writes on a keep-alive
 * connection (errorAnswer: the same bytes node:http would write), and as a closing answer on a
 * bare socket (closingErrorAnswer: upgrades, which node:http hands over as a socket).
 */
import { STATUS_CODES, type ServerResponse } from 'node:http'
import type { BalancerError } from '../errors.js'
import { connectionLines, httpDate } from './fast-response.js'

export function sendJson(res: ServerResponse, status: number, body: unknown, headers?: Record<string, string>): void {
  if (res.headersSent) {
    res.destroy()
    return
  }
  const data = Buffer.from(JSON.stringify(body))
  res.writeHead(status, { ...headers, 'content-type': 'application/json', 'content-length': String(data.length) })
  res.end(res.req?.method === 'HEAD' ? undefined : data)
}

export function sendSuccess(res: ServerResponse, message: unknown): void {
  sendJson(res, 200, { message, status: 'successful' })
}

export function sendError(res: ServerResponse, err: BalancerError, headers?: Record<string, string>): void {
  sendJson(res, err.status, err.toJSON(), headers)
}

/**
 * The SPEC's error answer, head and body, as sendError has node:http write it.
 * `extra`: header lines to add (each ending in CRLF), e.g. `allow: GET\r\n` (the edge's 405).
 */
export function errorAnswer(err: BalancerError, isHead: boolean, keepAlive: boolean, keepAliveSeconds: number, extra = ''): string {
  const body = JSON.stringify(err.toJSON())
  const length = Buffer.byteLength(body)
  const head =
    `HTTP/1.1 ${err.status} ${STATUS_CODES[err.status]}\r\n${extra}content-type: application/json\r\ncontent-length: ${length}\r\n` +
    `Date: ${httpDate()}\r\n${connectionLines(keepAlive, keepAliveSeconds)}\r\n`
  // latin1 on the wire: encode the UTF-8 body's bytes as latin1 characters.
  return isHead ? head : head + Buffer.from(body).toString('latin1')
}

/** The SPEC's error answer on a bare socket, then the connection closes (upgrade requests). */
export function closingErrorAnswer(err: BalancerError): string {
  const data = JSON.stringify(err.toJSON())
  return (
    `HTTP/1.1 ${err.status} ${STATUS_CODES[err.status] || ''}\r\n` +
    `Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(data)}\r\nConnection: close\r\n\r\n` +
    data
  )
}

/** The body bytes of an answer built by errorAnswer (what the access log counts as bytes out). */
export function bodyBytes(answer: string): number {
  return answer.length - answer.indexOf('\r\n\r\n') - 4
}
