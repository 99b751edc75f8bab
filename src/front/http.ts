/**
 * The HTTP forward path for requests that arrive through node:http: request -> key -> ring ->
 * replica pool -> stream both ways. Bodies are streamed, never buffered. The attempt logic
 * (failover, the SPEC's errors, client aborts) is the shared Exchange (exchange.ts); this
 * file is its node:http side: ServerResponse for the answer, IncomingMessage for the body.
 * Plain GET and HEAD requests usually take the fast front instead (src/front/).
 *
 * The upstream side is the lean client in pool.ts (one head string written to a pooled
 * socket, a small response parser) rather than `http.request`: see the README's Performance
 * section for the profile that led here. Per request there is one Exchange object and no
 * closures: listeners are shared functions that find their Exchange through a symbol.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import { BalancerError } from '../errors.js'
import { sendError } from './respond.js'
import type { Upstream } from '../upstream/upstream.js'
import { endToEnd, hasBody } from '../route/forward.js'
import { Exchange, type ExchangeOptions } from '../route/attempt.js'
import type { KeyedRequest } from '../route/keys.js'
import { NO_HEALTHY_UPSTREAM } from '../observe/flags.js'

export interface ProxyOptions extends ExchangeOptions {
  keyOf: (req: KeyedRequest) => number
  /** The first choice for a request id (bounded.ts); default `ring.pick`. Failover walks `ring`. */
  choose?: (id: number) => Upstream | undefined
}

/** The replica a request id goes to first: `choose` when given, else the ring's owner. */
export function firstChoice(options: ProxyOptions): (id: number) => Upstream | undefined {
  const ring = options.ring
  return options.choose ?? ((id) => ring.pick(id))
}

export function createProxy(options: ProxyOptions): (req: IncomingMessage, res: ServerResponse) => void {
  const choose = firstChoice(options)
  return (req, res) => {
    const id = options.keyOf(req)
    const upstream = choose(id)
    if (upstream === undefined) {
      req.resume()
      sendError(res, new BalancerError('NO_REPLICAS'))
      options.observer?.answeredByBalancer(503, req, NO_HEALTHY_UPSTREAM)
      return
    }
    new NodeExchange(req, res, id, options).send(upstream)
  }
}

const EXCHANGE = Symbol('exchange')
interface Tagged {
  [EXCHANGE]?: NodeExchange
}

// Shared listeners (no closure per request): `this` is the emitter, tagged with its Exchange.
function onClientClose(this: ServerResponse): void {
  ;(this as Tagged)[EXCHANGE]?.resClosed()
}
function onClientDrain(this: ServerResponse): void {
  ;(this as Tagged)[EXCHANGE]?.clientDrained()
}
function onBodyData(this: IncomingMessage, chunk: Buffer): void {
  ;(this as Tagged)[EXCHANGE]?.bodyData(chunk)
}
function onBodyEnd(this: IncomingMessage): void {
  ;(this as Tagged)[EXCHANGE]?.bodyEnd()
}

const CHUNK_END = '\r\n'
const LAST_CHUNK = '0\r\n\r\n'

/** A request from node:http: the answer goes to its ServerResponse, its body streams along. */
class NodeExchange extends Exchange {
  private readonly chunked: boolean
  private bodyListening = false

  constructor(
    req: IncomingMessage,
    private readonly res: ServerResponse,
    id: number,
    options: ProxyOptions,
  ) {
    const withBody = hasBody(req)
    const chunked = withBody && req.headers['transfer-encoding'] !== undefined
    super(req, id, options, withBody, chunked)
    this.chunked = chunked
    ;(res as Tagged)[EXCHANGE] = this
    res.on('close', onClientClose)
  }

  private get request(): IncomingMessage {
    return this.req as IncomingMessage
  }

  protected answerHead(statusCode: number, statusMessage: string, rawHeaders: string[]): void {
    this.res.writeHead(statusCode, statusMessage, endToEnd(rawHeaders))
  }

  protected answerData(chunk: Buffer): boolean {
    if (this.res.write(chunk)) return true
    this.res.once('drain', onClientDrain)
    return false
  }

  protected answerEnd(last: Buffer | string): void {
    if (typeof last === 'string') this.res.end(last, 'latin1')
    else if (last.length === 0) this.res.end()
    else this.res.end(last)
  }

  protected answerError(err: BalancerError): void {
    sendError(this.res, err)
  }

  protected answerAbort(): void {
    this.res.destroy()
  }

  protected get clientClosedForWrites(): boolean {
    return this.res.destroyed
  }

  /** node:http's 'close': only an answer not yet complete means the client went away. */
  resClosed(): void {
    if (!this.res.writableFinished) this.clientClosed()
  }

  protected override startBody(): void {
    this.bodyListening = true
    const req = this.request
    ;(req as Tagged)[EXCHANGE] = this
    req.on('data', onBodyData)
    req.on('end', onBodyEnd)
  }

  bodyData(chunk: Buffer): void {
    const conn = this.conn
    if (conn === undefined) return
    this.bytesIn += chunk.length
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
    const conn = this.conn
    this.bodyListening = false
    if (conn === undefined) return
    if (this.chunked) conn.write(LAST_CHUNK)
    conn.endRequest()
  }

  /** Stop relaying the client's body (the attempt ended); read and drop whatever is left. */
  protected override stopBody(): void {
    const req = this.request
    if (this.bodyListening) {
      this.bodyListening = false
      req.off('data', onBodyData)
      req.off('end', onBodyEnd)
    }
    // Read and drop the rest of a body; a request without one is left to the server.
    if (this.withBody) req.resume()
  }
}
