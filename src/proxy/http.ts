/**
 * The HTTP forward path: request -> key -> ring -> replica pool -> stream both ways.
 * Bodies are streamed, never buffered. A replica that cannot be reached is replaced by the
 * next distinct replica clockwise while that is safe (see `retryable`); otherwise the client
 * gets the SPEC's JSON error. When the client goes away, the upstream request is aborted.
 *
 * The upstream side is the lean client in pool.ts (one head string written to a pooled
 * socket, a small response parser) rather than `http.request`: see the README's Performance
 * section for the profile that led here. Per request there is one Exchange object and no
 * closures: listeners are shared functions that find their Exchange through a symbol.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import { BalancerError } from '../errors.js'
import { sendError } from '../respond.js'
import type { HashRing } from '../ring/ring.js'
import type { Upstream } from './upstream.js'
import { atTurnEnd, batching, type Connection, type ConnectionUser, type TurnEndTask } from './pool.js'
import { endToEnd, hasBody, isIdempotent, upstreamRequestHeaders } from './forward.js'
import { CONNECT_ERRORS, CONNECTION_ERRORS, UPSTREAM_TIMEOUT, nextUntried, upstreamError } from './failover.js'
import { pathOf } from '../keys.js'

export interface ProxyOptions {
  ring: HashRing<Upstream>
  keyOf: (req: IncomingMessage) => number
  upstreamTimeoutMs: number
  /** Told when a replica refused or reset a connection (passive health detection). */
  onUpstreamFailure?: (upstream: Upstream, err: NodeJS.ErrnoException) => void
  /** The first choice for a request id (bounded.ts); default `ring.pick`. Failover walks `ring`. */
  choose?: (id: number) => Upstream | undefined
}

/** The replica left while the request waited for a connection: nothing was sent. */
const POOL_CLOSED = 'ERR_POOL_CLOSED'

export function createProxy(options: ProxyOptions): (req: IncomingMessage, res: ServerResponse) => void {
  const ring = options.ring
  const choose = options.choose ?? ((id: number) => ring.pick(id))
  return (req, res) => {
    const id = options.keyOf(req)
    const upstream = choose(id)
    if (upstream === undefined) {
      req.resume()
      sendError(res, new BalancerError('NO_REPLICAS'))
      return
    }
    new Exchange(req, res, id, options).send(upstream)
  }
}

const EXCHANGE = Symbol('exchange')
interface Tagged {
  [EXCHANGE]?: Exchange
}

// Shared listeners (no closure per request): `this` is the emitter, tagged with its Exchange.
function onClientClose(this: ServerResponse): void {
  ;(this as Tagged)[EXCHANGE]?.clientClosed()
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

/** `METHOD /path HTTP/1.1` and the forwarded headers, each line ending in CRLF, no blank line yet. */
function requestHead(req: IncomingMessage, chunked: boolean): string {
  const headers = upstreamRequestHeaders(req)
  let head = `${req.method} ${req.url} HTTP/1.1\r\n`
  for (let i = 0; i < headers.length; i += 2) head += `${headers[i]}: ${headers[i + 1]}\r\n`
  // Transfer-Encoding is hop-by-hop: the body is re-framed for our own connection.
  if (chunked) head += 'Transfer-Encoding: chunked\r\n'
  return head
}

const CHUNK_END = '\r\n'
/** Bodies up to this size are sent with the head in one write (see onData). */
const SMALL_BODY = 16 * 1024
const LAST_CHUNK = '0\r\n\r\n'

/** One client request and its attempts on replicas. */
class Exchange implements ConnectionUser, TurnEndTask {
  private readonly headBase: string
  private readonly withBody: boolean
  private readonly chunked: boolean
  private readonly idempotent: boolean
  private readonly isHead: boolean
  /** The replica of the current attempt, while that attempt is open. */
  private upstream: Upstream | undefined
  private conn: Connection | undefined
  private tried: Upstream[] | undefined
  /** The client's body has started flowing to a replica: it can never be sent again. */
  private bodyStarted = false
  private bodyListening = false
  private responded = false
  /** Answering with the SPEC's 404 error: the replica's body is read and dropped. */
  private discardBody = false
  private clientGone = false
  /** A small answer waiting for the end of the event-loop turn (under load, see onData). */
  private heldBody: string | undefined

  constructor(
    private readonly req: IncomingMessage,
    private readonly res: ServerResponse,
    private readonly id: number,
    private readonly options: ProxyOptions,
  ) {
    this.withBody = hasBody(req)
    this.chunked = this.withBody && req.headers['transfer-encoding'] !== undefined
    this.headBase = requestHead(req, this.chunked)
    this.idempotent = isIdempotent(req.method)
    this.isHead = req.method === 'HEAD'
    ;(res as Tagged)[EXCHANGE] = this
    res.on('close', onClientClose)
  }

  send(upstream: Upstream): void {
    this.upstream = upstream
    this.conn = undefined
    upstream.begin()
    // HTTP/1.0 clients may omit Host; HTTP/1.1 requires one on our side.
    const head = this.req.headers.host === undefined ? `${this.headBase}Host: ${upstream.host}:${upstream.port}\r\n\r\n` : `${this.headBase}\r\n`
    upstream.pool.request(this, head, this.isHead, this.options.upstreamTimeoutMs, !this.withBody)
  }

  /** The attempt is over (answered or failed): the replica's in-flight count drops once. */
  private endAttempt(): Upstream | undefined {
    const upstream = this.upstream
    if (upstream !== undefined) {
      this.upstream = undefined
      this.conn = undefined
      upstream.end()
    }
    return upstream
  }

  // ConnectionUser

  onStart(conn: Connection): void {
    this.conn = conn
  }

  onConnected(conn: Connection): void {
    this.conn = conn
    if (!this.withBody || this.bodyStarted) return
    // The body flows only once the connection is up: a refused connection then costs
    // nothing and the request can still go to the next replica.
    this.bodyStarted = true
    this.bodyListening = true
    ;(this.req as Tagged)[EXCHANGE] = this
    this.req.on('data', onBodyData)
    this.req.on('end', onBodyEnd)
  }

  onHead(statusCode: number, statusMessage: string, rawHeaders: string[]): void {
    this.responded = true
    if (this.clientGone) return
    const { res } = this
    if (statusCode === 404) {
      this.discardBody = true
      sendError(res, new BalancerError('ENDPOINT_NOT_FOUND', `'${pathOf(this.req.url ?? '/')}' endpoint does not exist in server replicas`))
      return
    }
    try {
      res.writeHead(statusCode, statusMessage, endToEnd(rawHeaders))
    } catch (err) {
      // A header Node refuses to send (invalid characters from the replica).
      this.discardBody = true
      this.stopBody()
      sendError(res, new BalancerError('UPSTREAM_UNREACHABLE', `Server replica '${this.upstream?.name}' sent an invalid response (${(err as Error).message})`))
    }
  }

  onData(chunk: Buffer, last: boolean): void {
    if (last) {
      this.endAttempt()
      this.stopBody()
    }
    if (this.discardBody || this.clientGone) return
    if (last) {
      if (chunk.length === 0) this.res.end()
      // A small body as a latin1 string (bytes unchanged): Node then sends the response head
      // and body as one string in one write, instead of corking and a writev of two buffers.
      else if (chunk.length <= SMALL_BODY) {
        const body = chunk.toString('latin1')
        // Under load, answers go out together at the end of the turn, like requests (pool.ts).
        if (batching()) {
          this.heldBody = body
          atTurnEnd(this)
        } else this.res.end(body, 'latin1')
      }
      else this.res.end(chunk)
    } else if (!this.res.write(chunk)) {
      // The client reads slower than the replica writes: hold the replica until it drains.
      this.conn?.pause()
      this.res.once('drain', onClientDrain)
    }
  }

  onFailure(err: NodeJS.ErrnoException, conn: Connection | undefined): void {
    const upstream = this.endAttempt()
    if (upstream === undefined || this.clientGone) return
    const code = err.code ?? ''
    if (CONNECTION_ERRORS.has(code)) this.options.onUpstreamFailure?.(upstream, err)
    if (this.responded) {
      // Headers already went out: all we can honestly do is cut the client's response short.
      // (Unless it was the 404 answer, which is complete already.)
      if (!this.discardBody) this.res.destroy()
      this.stopBody()
      return
    }
    if (this.retryable(code, conn)) {
      const next = nextUntried(this.options.ring, this.id, (this.tried ??= []), upstream)
      if (next !== undefined) {
        this.send(next)
        return
      }
    }
    this.stopBody()
    sendError(this.res, upstreamError(upstream, err, this.options.upstreamTimeoutMs))
  }

  /** TurnEndTask: send the answer held by onData. */
  runAtTurnEnd(): void {
    const body = this.heldBody
    this.heldBody = undefined
    if (body !== undefined && !this.clientGone && !this.res.destroyed) this.res.end(body, 'latin1')
  }

  // Listeners

  clientClosed(): void {
    if (this.res.writableFinished) return
    // The client went away before its answer was complete: abort the upstream request.
    this.clientGone = true
    const { upstream, conn } = this
    if (upstream === undefined) return
    if (conn !== undefined) conn.discard()
    else upstream.pool.cancel(this)
    this.endAttempt()
    this.stopBody()
  }

  clientDrained(): void {
    this.conn?.resume()
  }

  bodyData(chunk: Buffer): void {
    const conn = this.conn
    if (conn === undefined) return
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
      this.req.pause()
      conn.socket.once('drain', () => {
        if (this.bodyListening) this.req.resume()
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
  private stopBody(): void {
    if (this.bodyListening) {
      this.bodyListening = false
      this.req.off('data', onBodyData)
      this.req.off('end', onBodyEnd)
    }
    // Read and drop the rest of a body; a request without one is left to the server.
    if (this.withBody) this.req.resume()
  }

  /**
   * A failed attempt may go to another replica only if no byte of the client's body has left
   * and either the replica never got the request (connect failed) or sending it twice is
   * harmless (idempotent method). A timeout is not retried: the replica may be working on it.
   */
  private retryable(code: string, conn: Connection | undefined): boolean {
    if (this.bodyStarted || code === UPSTREAM_TIMEOUT) return false
    if (CONNECT_ERRORS.has(code) || code === POOL_CLOSED) return true
    return this.idempotent && (CONNECTION_ERRORS.has(code) || conn?.reused === true)
  }
}
