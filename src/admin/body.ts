/**
 * Reading a small JSON request body (admin requests only), with three bounds a client cannot
 * move: its size (413 past `limit` bytes, declared or streamed), its nesting (json.ts), and
 * the time it may take to arrive (408 after `timeoutMs`: a client that opens /add and then
 * sends one byte a minute must not hold a connection and a buffer for as long as it likes).
 * The clock starts when the handler starts reading, after node:http has the headers (whose
 * own timeout is node:http's). Both 413 and 408 leave the rest of the body unread, so their
 * answers close the connection.
 */
import type { IncomingMessage } from 'node:http'
import { BalancerError } from '../errors.js'
import { parseJsonBody } from './json.js'

/** Default for --admin-body-timeout. */
export const BODY_TIMEOUT_MS = 10_000

/** The client closed the connection before its body arrived: there is no one to answer. */
export class ClientGone extends Error {
  override name = 'ClientGone'
}

/** The body's bytes; BODY_TOO_LARGE, REQUEST_TIMEOUT or ClientGone when it cannot be had. */
export function readBody(req: IncomingMessage, limit: number, timeoutMs = BODY_TIMEOUT_MS): Promise<Buffer> {
  const declared = Number(req.headers['content-length'])
  if (declared > limit) {
    req.resume()
    return Promise.reject(tooLarge(limit))
  }
  return new Promise<Buffer>((resolve, reject) => {
    const chunks: Buffer[] = []
    let size = 0
    const finish = (err: Error | undefined): void => {
      clearTimeout(timer)
      req.off('data', onData)
      req.off('end', onEnd)
      req.off('close', onClose)
      req.off('error', onClose)
      if (err === undefined) {
        resolve(Buffer.concat(chunks, size))
      } else {
        // Drop whatever else arrives; the answer closes the connection.
        chunks.length = 0
        req.resume()
        reject(err)
      }
    }
    const onData = (chunk: Buffer): void => {
      size += chunk.length
      if (size > limit) finish(tooLarge(limit))
      else chunks.push(chunk)
    }
    const onEnd = (): void => finish(undefined)
    const onClose = (): void => finish(new ClientGone('the client closed the connection before its request body arrived'))
    const timer = setTimeout(() => finish(new BalancerError('REQUEST_TIMEOUT', `Request body not received within ${timeoutMs} ms`)), timeoutMs)
    req.on('data', onData)
    req.on('end', onEnd)
    req.on('close', onClose)
    req.on('error', onClose)
  })
}

/** The parsed JSON body: readBody's errors, and INVALID_JSON (400) when it is not JSON. */
export async function readJson(req: IncomingMessage, limit: number, timeoutMs = BODY_TIMEOUT_MS): Promise<unknown> {
  return parseJsonBody((await readBody(req, limit, timeoutMs)).toString('utf8'))
}

function tooLarge(limit: number): BalancerError {
  return new BalancerError('BODY_TOO_LARGE', `Request body too large: more than ${limit} bytes`)
}
