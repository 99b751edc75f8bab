/** Writing the SPEC's JSON answers: `{"message": ..., "status": "successful" | "failure"}`. */
import type { ServerResponse } from 'node:http'
import { BalancerError } from '../errors.js'

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
