/** Reading a small JSON request body with a size limit (admin requests only). */
import type { IncomingMessage } from 'node:http'
import { BalancerError } from '../errors.js'

/** The parsed JSON body; 413 past `limit` bytes, 400 when it is not JSON. */
export async function readJson(req: IncomingMessage, limit: number): Promise<unknown> {
  const declared = Number(req.headers['content-length'])
  if (declared > limit) {
    req.resume()
    throw new BalancerError('BODY_TOO_LARGE', `Request body too large: more than ${limit} bytes`)
  }
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length
    if (size > limit) {
      req.resume()
      throw new BalancerError('BODY_TOO_LARGE', `Request body too large: more than ${limit} bytes`)
    }
    chunks.push(chunk)
  }
  const text = Buffer.concat(chunks).toString('utf8')
  if (text.trim() === '') throw new BalancerError('INVALID_JSON', 'Invalid JSON payload: the body is empty')
  try {
    return JSON.parse(text)
  } catch (err) {
    throw new BalancerError('INVALID_JSON', `Invalid JSON payload: ${(err as Error).message}`)
  }
}
