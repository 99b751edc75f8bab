/**
 * The HTTP forward path: request -> key -> ring -> replica pool -> stream both ways.
 * Bodies are streamed, never buffered. A replica that cannot be reached is replaced by the
 * next distinct replica clockwise while that is safe (see `retryable`); otherwise the client
 * gets the SPEC's JSON error. When the client goes away, the upstream request is aborted.
 */
import { request, type ClientRequest, type IncomingMessage, type ServerResponse } from 'node:http'
import type { Socket } from 'node:net'
import { BalancerError } from '../errors.js'
import { sendError } from '../respond.js'
import type { HashRing } from '../ring/ring.js'
import type { Upstream } from './upstream.js'
import { endToEnd, hasBody, isIdempotent, upstreamRequestHeaders } from './forward.js'
import { pathOf } from '../keys.js'

export interface ProxyOptions {
  ring: HashRing<Upstream>
  keyOf: (req: IncomingMessage) => number
  upstreamTimeoutMs: number
  /** Told when a replica refused or reset a connection (passive health detection). */
  onUpstreamFailure?: (upstream: Upstream, err: NodeJS.ErrnoException) => void
}

/** Errors that mean the replica never got the request: safe to send elsewhere, any method. */
const CONNECT_ERRORS = new Set(['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'EADDRNOTAVAIL', 'ENOTFOUND', 'EAI_AGAIN'])
/** Errors that mean the connection broke: the replica is suspect. */
const CONNECTION_ERRORS = new Set([...CONNECT_ERRORS, 'ECONNRESET', 'EPIPE', 'ECONNABORTED'])

export function createProxy(options: ProxyOptions): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    const id = options.keyOf(req)
    const upstream = options.ring.pick(id)
    if (upstream === undefined) {
      req.resume()
      sendError(res, new BalancerError('NO_REPLICAS'))
      return
    }
    new Exchange(req, res, id, options).send(upstream)
  }
}

/** One client request and its attempts on replicas. */
class Exchange {
  private readonly headers: string[]
  private readonly withBody: boolean
  private readonly idempotent: boolean
  private upReq: ClientRequest | undefined
  private tried: Upstream[] | undefined
  /** The client's body has started flowing to a replica: it can never be sent again. */
  private bodyStarted = false
  private responded = false
  private clientGone = false

  constructor(
    private readonly req: IncomingMessage,
    private readonly res: ServerResponse,
    private readonly id: number,
    private readonly options: ProxyOptions,
  ) {
    this.headers = upstreamRequestHeaders(req)
    this.withBody = hasBody(req)
    this.idempotent = isIdempotent(req.method)
    res.once('close', () => {
      if (!res.writableFinished) {
        this.clientGone = true
        this.upReq?.destroy()
      }
    })
  }

  send(upstream: Upstream): void {
    upstream.begin()
    const upReq = request({
      host: upstream.host,
      port: upstream.port,
      method: this.req.method,
      path: this.req.url,
      headers: this.headers,
      agent: upstream.agent,
      timeout: this.options.upstreamTimeoutMs,
    })
    this.upReq = upReq
    let ended = false
    upReq.once('close', () => {
      if (!ended) {
        ended = true
        upstream.end()
      }
    })
    upReq.once('response', (upRes) => this.onResponse(upRes))
    upReq.on('error', (err) => this.onError(upstream, upReq, err))
    upReq.once('timeout', () => upReq.destroy(Object.assign(new Error('upstream timeout'), { code: 'ETIMEDOUT_UPSTREAM' })))
    if (!this.withBody) {
      upReq.end()
      return
    }
    // Hold the body until the connection is up: a refused connection then costs nothing
    // and the request can still go to the next replica.
    upReq.once('socket', (socket: Socket) => {
      if (socket.connecting) socket.once('connect', () => this.startBody(upReq))
      else this.startBody(upReq)
    })
  }

  private startBody(upReq: ClientRequest): void {
    if (upReq.destroyed) return
    this.bodyStarted = true
    this.req.pipe(upReq)
  }

  private onResponse(upRes: IncomingMessage): void {
    this.responded = true
    const { res } = this
    if (upRes.statusCode === 404) {
      upRes.resume()
      sendError(res, new BalancerError('ENDPOINT_NOT_FOUND', `'${pathOf(this.req.url ?? '/')}' endpoint does not exist in server replicas`))
      return
    }
    res.writeHead(upRes.statusCode ?? 502, upRes.statusMessage, endToEnd(upRes.rawHeaders))
    upRes.pipe(res)
    upRes.once('error', () => res.destroy())
    upRes.once('aborted', () => res.destroy())
  }

  private onError(upstream: Upstream, upReq: ClientRequest, err: NodeJS.ErrnoException): void {
    // Only the current attempt decides; a second error from a dead attempt is noise.
    if (this.clientGone || upReq !== this.upReq) return
    this.upReq = undefined
    const code = err.code ?? ''
    if (CONNECTION_ERRORS.has(code)) this.options.onUpstreamFailure?.(upstream, err)
    if (this.responded) {
      // Headers already went out: all we can honestly do is cut the client's response short.
      this.res.destroy()
      return
    }
    if (this.retryable(code, upReq)) {
      ;(this.tried ??= []).push(upstream)
      const tried = this.tried
      const next = this.options.ring.next(this.id, (u) => !tried.includes(u))
      if (next !== undefined) {
        this.send(next)
        return
      }
    }
    this.req.resume()
    if (code === 'ETIMEDOUT_UPSTREAM') {
      sendError(this.res, new BalancerError('UPSTREAM_TIMEOUT', `Server replica '${upstream.name}' did not answer within ${this.options.upstreamTimeoutMs} ms`))
    } else {
      sendError(this.res, new BalancerError('UPSTREAM_UNREACHABLE', `Server replica '${upstream.name}' could not be reached (${code || err.message})`))
    }
  }

  /**
   * A failed attempt may go to another replica only if no byte of the client's body has left
   * and either the replica never got the request (connect failed) or sending it twice is
   * harmless (idempotent method). A timeout is not retried: the replica may be working on it.
   */
  private retryable(code: string, upReq: ClientRequest): boolean {
    if (this.bodyStarted || code === 'ETIMEDOUT_UPSTREAM') return false
    if (CONNECT_ERRORS.has(code)) return true
    return this.idempotent && (CONNECTION_ERRORS.has(code) || upReq.reusedSocket)
  }
}
