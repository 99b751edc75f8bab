/**
 * HTTP upgrades (WebSocket and any other `Upgrade:` protocol) in HTTP mode. An upgrade request
 * is routed like any other request (same key, same ring, same failover on a refused
 * connection), forwarded with its `Connection: Upgrade` / `Upgrade` headers, and then:
 * - the replica answers 101: the 101 and its headers go to the client verbatim and the two
 *   connections become one tunnel (see tunnel.ts: both ways, half-close, idle timeout,
 *   closing either end closes the other);
 * - the replica answers anything else: relayed as a normal response (a 404 becomes the SPEC's
 *   400, as for any request), then the client connection is closed.
 * Node hands upgrade requests over as a bare socket, so the answers here are written raw.
 */
import { STATUS_CODES, request, type ClientRequest, type IncomingMessage } from 'node:http'
import type { Duplex } from 'node:stream'
import type { Socket } from 'node:net'
import { BalancerError } from '../errors.js'
import type { HashRing } from '../ring/ring.js'
import { pathOf } from '../route/keys.js'
import type { Upstream } from '../upstream/upstream.js'
import { endToEnd, upstreamRequestHeaders } from '../route/forward.js'
import type { Tunnels } from '../upstream/tunnel.js'
import { CONNECTION_ERRORS, UPSTREAM_TIMEOUT, nextUntried, upstreamError } from '../route/retry.js'
import type { RequestObserver } from '../observe/request-observer.js'
import { NO_FLAG, NO_HEALTHY_UPSTREAM, UPSTREAM_OVERFLOW, flagOfUpstreamError } from '../observe/flags.js'

export interface UpgradeOptions {
  ring: HashRing<Upstream>
  keyOf: (req: IncomingMessage) => number
  /** ms a replica may take to answer the upgrade request (then 504). */
  upstreamTimeoutMs: number
  tunnels: Tunnels
  onUpstreamFailure?: (upstream: Upstream, err: NodeJS.ErrnoException) => void
  /** Counts and logs each upgrade request once answered (101, an error, or a relayed answer). */
  observer?: RequestObserver | undefined
}

/** After an error answer, how long the client has to close before we do. */
const LINGER_MS = 5_000


/** The server's 'upgrade' listener. */
export function createUpgradeHandler(options: UpgradeOptions): (req: IncomingMessage, socket: Duplex, head: Buffer) => void {
  return (req, duplex, head) => {
    const socket = duplex as Socket
    socket.on('error', () => {})
    if (!options.tunnels.admit(socket)) {
      const max = options.tunnels.maxConnections
      answerError(socket, new BalancerError('TOO_MANY_CONNECTIONS', `Too many open connections (the limit is ${max})`))
      options.observer?.answeredByBalancer(503, req, UPSTREAM_OVERFLOW)
      return
    }
    const id = options.keyOf(req)
    const upstream = options.ring.pick(id)
    if (upstream === undefined) {
      answerError(socket, new BalancerError('NO_REPLICAS'))
      options.observer?.answeredByBalancer(503, req, NO_HEALTHY_UPSTREAM)
      return
    }
    new UpgradeExchange(req, socket, head, id, options).send(upstream)
  }
}

/** One upgrade request and its attempts on replicas. */
class UpgradeExchange {
  private readonly headers: string[]
  private upReq: ClientRequest | undefined
  private tried: Upstream[] | undefined
  private answered = false
  private readonly startedAt = performance.now()
  private sentAt = 0

  constructor(
    private readonly req: IncomingMessage,
    private readonly socket: Socket,
    private readonly head: Buffer,
    private readonly id: number,
    private readonly options: UpgradeOptions,
  ) {
    // Hop-by-hop headers are dropped as for any request, then the upgrade itself is asked
    // for again: it is a request to this next hop too.
    this.headers = upstreamRequestHeaders(req)
    this.headers.push('Connection', 'Upgrade', 'Upgrade', req.headers.upgrade ?? '')
    // Nothing the client sends is read until the replica has agreed to the upgrade.
    socket.pause()
    socket.once('close', () => {
      if (!this.answered) this.upReq?.destroy()
    })
  }

  /** Report the answer once to the observer: relayed from `upstream`, or the balancer's own. */
  private report(status: number, flag: string, upstream: Upstream | undefined, relayed: boolean): void {
    const observer = this.options.observer
    if (observer === undefined) return
    const r = { incoming: this.req, status, startedAt: this.startedAt, upstreamMs: relayed ? performance.now() - this.sentAt : -1, bytesIn: 0, bytesOut: 0, flag, replicaName: upstream?.name }
    if (relayed) observer.relayed(r, upstream?.stats)
    else observer.local(r)
  }

  send(upstream: Upstream): void {
    if (this.socket.destroyed) return
    this.sentAt = performance.now()
    upstream.begin()
    let counted = true
    const release = (): void => {
      if (counted) {
        counted = false
        upstream.end()
      }
    }
    const upReq = request({
      host: upstream.host,
      port: upstream.port,
      method: this.req.method,
      path: this.req.url,
      headers: this.headers,
      // A connection of its own: an upgraded connection never goes back to a pool.
      agent: false,
      timeout: this.options.upstreamTimeoutMs,
    })
    this.upReq = upReq
    upReq.once('timeout', () => upReq.destroy(Object.assign(new Error('upstream timeout'), { code: UPSTREAM_TIMEOUT })))
    upReq.on('error', (err) => {
      release()
      this.onError(upstream, upReq, err)
    })
    const finished = (status: number): void => this.report(status, NO_FLAG, upstream, true)
    upReq.once('upgrade', (upRes: IncomingMessage, upSocket: Socket, upHead: Buffer) => {
      this.answered = true
      // The request's answer timeout must not carry over into the tunnel.
      upSocket.setTimeout(0)
      upSocket.once('close', release)
      upSocket.on('error', () => {})
      if (this.socket.destroyed) {
        upSocket.destroy()
        return
      }
      this.socket.write(statusLine(101, upRes.statusMessage) + headerLines(upRes.rawHeaders) + '\r\n')
      finished(101)
      this.options.tunnels.splice(this.socket, upSocket, this.head, upHead)
    })
    upReq.once('response', (upRes: IncomingMessage) => {
      this.answered = true
      upRes.once('close', release)
      finished(this.relay(upRes))
    })
    upReq.end()
  }

  /** A non-101 answer: relayed as a normal response, then the connection is closed. */
  private relay(upRes: IncomingMessage): number {
    const { socket } = this
    const status = upRes.statusCode ?? 502
    if (status === 404) {
      upRes.resume()
      answerError(socket, new BalancerError('ENDPOINT_NOT_FOUND', `'${pathOf(this.req.url ?? '/')}' endpoint does not exist in server replicas`))
      return 400
    }
    // endToEnd drops Transfer-Encoding: without a Content-Length the body ends with the
    // connection, which `Connection: close` announces anyway.
    socket.write(statusLine(status, upRes.statusMessage) + headerLines(endToEnd(upRes.rawHeaders)) + 'Connection: close\r\n\r\n')
    socket.resume() // whatever the client sent after its request has nowhere to go
    upRes.pipe(socket)
    upRes.once('error', () => socket.destroy())
    upRes.once('aborted', () => socket.destroy())
    socket.once('finish', () => linger(socket))
    return status
  }

  private onError(upstream: Upstream, upReq: ClientRequest, err: NodeJS.ErrnoException): void {
    if (upReq !== this.upReq || this.socket.destroyed) return
    this.upReq = undefined
    const code = err.code ?? ''
    upstream.stats?.failed(code)
    if (CONNECTION_ERRORS.has(code)) this.options.onUpstreamFailure?.(upstream, err)
    if (this.answered) {
      this.socket.destroy()
      return
    }
    // Upgrade requests carry no body, so a refused or reset connection before any answer
    // can go to the next replica; a timeout cannot (the replica may be acting on it).
    if (CONNECTION_ERRORS.has(code)) {
      const next = nextUntried(this.options.ring, this.id, (this.tried ??= []), upstream)
      if (next !== undefined) {
        if (upstream.stats !== undefined) upstream.stats.retries++
        this.send(next)
        return
      }
    }
    const answer = upstreamError(upstream, err, this.options.upstreamTimeoutMs)
    answerError(this.socket, answer)
    this.report(answer.status, flagOfUpstreamError(code), upstream, false)
  }
}

function statusLine(status: number, message: string | undefined): string {
  return `HTTP/1.1 ${status} ${message || STATUS_CODES[status] || ''}\r\n`
}

/** Raw header pairs as header lines; CR/LF never get through (Node already rejects them). */
function headerLines(raw: readonly string[]): string {
  let out = ''
  for (let i = 0; i < raw.length; i += 2) out += `${raw[i]}: ${raw[i + 1]}\r\n`
  return out
}

function answerError(socket: Socket, err: BalancerError): void {
  answer(socket, err.status, err.toJSON())
}

/** A complete JSON answer on a bare socket, then the connection is closed. */
function answer(socket: Socket, status: number, body: unknown): void {
  if (socket.destroyed) return
  const data = JSON.stringify(body)
  socket.end(
    statusLine(status, undefined) +
      `Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(data)}\r\nConnection: close\r\n\r\n` +
      data,
  )
  linger(socket)
}

/**
 * After our last byte, read and drop whatever the client still sends (so closing never
 * turns into a reset that could destroy the answer in flight) and give it a few seconds
 * to close its end.
 */
function linger(socket: Socket): void {
  socket.resume()
  socket.setTimeout(LINGER_MS)
  if (socket.listenerCount('timeout') === 0) socket.once('timeout', () => socket.destroy())
}
