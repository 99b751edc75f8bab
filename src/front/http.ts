/**
 * The node:http front: requests that arrive through node:http (any method; plain GET and HEAD
 * usually take the fast front instead, fast.ts). Per request one HttpExchange
 * (src/route/exchange.ts: the tries on replicas, failover, the SPEC's errors, client aborts)
 * with a NodeClient as its client side: ServerResponse for the answer, IncomingMessage for
 * the body, streamed both ways, never buffered.
 *
 * The upstream side is the lean client in src/upstream/ (one head string written to a pooled
 * socket, a small response parser) rather than `http.request`: see the README's Performance
 * section for the profile that led here. No closures per request: listeners are shared
 * functions that find their client through a symbol.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { BalancerError } from '../errors.js'
import { sendError } from './respond.js'
import { endToEnd, hasBody } from '../route/forward.js'
import { HttpExchange, type HttpClient } from '../route/exchange.js'
import type { AttemptLoop } from '../route/attempt.js'
import type { KeyedRequest } from '../route/keys.js'
import { responseRawHeaders } from '../upstream/response-parser.js'

export interface ProxyOptions {
  /** The attempt loop for HTTP requests (its first choice may be bounded, bounded.ts). */
  loop: AttemptLoop
  keyOf: (req: KeyedRequest) => number
}

export function createProxy(options: ProxyOptions): (req: IncomingMessage, res: ServerResponse) => void {
  const { loop, keyOf } = options
  return (req, res) => {
    const withBody = hasBody(req)
    const chunked = withBody && req.headers['transfer-encoding'] !== undefined
    const client = new NodeClient(req, res, chunked)
    const exchange = new HttpExchange(req, keyOf(req), loop, client, withBody, chunked)
    client.exchange = exchange
    loop.start(exchange)
  }
}

const CLIENT = Symbol('client')
interface Tagged {
  [CLIENT]?: NodeClient
}

/**
 * The edge answers this request itself after all, with `status` (its body broke a rule or went
 * silent): the replica's attempt is abandoned as if the client had gone, nothing from it is
 * written, and the exchange reports the edge's answer to the observer. False when no exchange
 * was running for `res` (the caller then reports the answer itself).
 */
export function abandonExchange(res: ServerResponse, status: number): boolean {
  const client = (res as Tagged)[CLIENT]
  if (client === undefined) return false
  ;(res as Tagged)[CLIENT] = undefined
  const exchange = client.exchange
  if (exchange === undefined) return false
  exchange.answeredByEdge(status)
  return true
}

// Shared listeners (no closure per request): `this` is the emitter, tagged with its client.
function onClientClose(this: ServerResponse): void {
  ;(this as Tagged)[CLIENT]?.resClosed()
}
function onClientDrain(this: ServerResponse): void {
  ;(this as Tagged)[CLIENT]?.exchange?.clientDrained()
}
function onBodyData(this: IncomingMessage, chunk: Buffer): void {
  ;(this as Tagged)[CLIENT]?.bodyData(chunk)
}
function onBodyEnd(this: IncomingMessage): void {
  ;(this as Tagged)[CLIENT]?.bodyEnd()
}

const CHUNK_END = '\r\n'
const LAST_CHUNK = '0\r\n\r\n'

/** A request from node:http as an exchange's client: the answer goes to its ServerResponse, its body streams along. */
class NodeClient implements HttpClient {
  exchange: HttpExchange | undefined
  private bodyListening = false

  constructor(
    private readonly request: IncomingMessage,
    private readonly res: ServerResponse,
    private readonly chunked: boolean,
  ) {
    ;(res as Tagged)[CLIENT] = this
    res.on('close', onClientClose)
  }

  answerHead(statusCode: number, statusMessage: string, headText: string): void {
    this.res.writeHead(statusCode, statusMessage, endToEnd(responseRawHeaders(headText)))
  }

  answerData(chunk: Buffer): boolean {
    if (this.res.write(chunk)) return true
    this.res.once('drain', onClientDrain)
    return false
  }

  answerEnd(last: Buffer | string): void {
    if (typeof last === 'string') this.res.end(last, 'latin1')
    else if (last.length === 0) this.res.end()
    else this.res.end(last)
  }

  answerError(err: BalancerError): void {
    sendError(this.res, err)
  }

  answerAbort(): void {
    this.res.destroy()
  }

  get closedForWrites(): boolean {
    return this.res.destroyed
  }

  /** node:http's 'close': only an answer not yet complete means the client went away. */
  resClosed(): void {
    if (!this.res.writableFinished) this.exchange?.clientClosed()
  }

  startBody(): void {
    this.bodyListening = true
    const req = this.request
    ;(req as Tagged)[CLIENT] = this
    req.on('data', onBodyData)
    req.on('end', onBodyEnd)
  }

  bodyData(chunk: Buffer): void {
    const exchange = this.exchange
    const conn = exchange?.conn
    if (conn === undefined) return
    exchange!.bytesIn += chunk.length
    let ok: boolean
    if (this.chunked) {
      if (chunk.length === 0) return
      conn.socket.cork()
      conn.write(`${chunk.length.toString(16)}\r\n`)
      conn.write(chunk)
      ok = conn.write(CHUNK_END)
      conn.socket.uncork()
    } else {
      ok = conn.write(chunk)
    }
    if (!ok) {
      // The replica reads slower than the client sends: pause the client until it drains.
      this.request.pause()
      conn.socket.once('drain', () => {
        if (this.bodyListening) this.request.resume()
      })
    }
  }

  bodyEnd(): void {
    const conn = this.exchange?.conn
    this.bodyListening = false
    if (conn === undefined) return
    if (this.chunked) conn.write(LAST_CHUNK)
    conn.endRequest()
  }

  /** Stop relaying the client's body (the attempt ended); read and drop whatever is left. */
  stopBody(): void {
    const req = this.request
    if (this.bodyListening) {
      this.bodyListening = false
      req.off('data', onBodyData)
      req.off('end', onBodyEnd)
    }
    // Read and drop the rest of a body; a request without one is left to the server.
    if (this.exchange?.withBody === true) req.resume()
  }
}
