/**
 * HTTP upgrades (WebSocket and any other `Upgrade:` protocol) in HTTP mode. An upgrade request
 * is routed like any other request (same key, same ring, same failover on a refused
 * connection), forwarded with its `Connection: Upgrade` / `Upgrade` headers, and then:
 * - the replica answers 101: the 101 and its headers go to the client verbatim and the two
 *   connections become one tunnel (see tunnel.ts: both ways, half-close, idle timeout,
 *   closing either end closes the other);
 * - the replica answers anything else: relayed as a normal response (a 404 becomes the SPEC's
 *   400, as for any request), then the client connection is closed.
 * Node hands upgrade requests over as a bare socket, so the answers here are written raw. The
 * replica side is upstream/upgrade-request.ts: a connection of its own, read by the same
 * response parser as every other answer.
 */
import { STATUS_CODES, type IncomingMessage } from 'node:http'
import type { Duplex } from 'node:stream'
import type { Socket } from 'node:net'
import { BalancerError } from '../errors.js'
import { closingErrorAnswer } from './respond.js'
import { LINGER_MS } from './edge-limits.js'
import { pathOf } from '../route/keys.js'
import type { Upstream } from '../upstream/upstream.js'
import { endToEnd, upstreamHead } from '../route/forward.js'
import type { Tunnels } from '../upstream/tunnel.js'
import type { AttemptLoop, Trip } from '../route/attempt.js'
import type { UpstreamError } from '../upstream/errors.js'
import { UpgradeRequest, type UpgradeUser } from '../upstream/upgrade-request.js'
import { NO_FLAG, NO_HEALTHY_UPSTREAM, UPSTREAM_OVERFLOW, flagOfUpstreamError } from '../observe/flags.js'

export interface UpgradeOptions {
  /** The attempt loop for upgrades (first choice `ring.pick`; its timeout: ms a replica may take to answer, then 504). */
  loop: AttemptLoop
  keyOf: (req: IncomingMessage) => number
  tunnels: Tunnels
}



/** The server's 'upgrade' listener. */
export function createUpgradeHandler(options: UpgradeOptions): (req: IncomingMessage, socket: Duplex, head: Buffer) => void {
  return (req, duplex, head) => {
    const socket = duplex as Socket
    socket.on('error', () => {})
    if (!options.tunnels.admit(socket)) {
      const max = options.tunnels.maxConnections
      answerError(socket, new BalancerError('TOO_MANY_CONNECTIONS', `Too many open connections (the limit is ${max})`))
      options.loop.observer?.answeredByBalancer(503, req, UPSTREAM_OVERFLOW)
      return
    }
    options.loop.start(new UpgradeExchange(req, socket, head, options.keyOf(req), options))
  }
}

/** One upgrade request: the attempt loop's Trip for upgrades. */
class UpgradeExchange implements Trip {
  /** The request line and headers for the replica, blank line included. */
  private readonly head: string
  private upReq: UpgradeRequest | undefined
  tried: Upstream[] | undefined
  private readonly startedAt = performance.now()
  private sentAt = 0
  private last: Upstream | undefined
  private lastError: string | undefined
  /** Upgrade requests carry no body: sending one again after a broken connection is harmless. */
  readonly replayable = true
  readonly bodySent = false

  constructor(
    private readonly req: IncomingMessage,
    private readonly socket: Socket,
    private readonly clientHead: Buffer,
    readonly id: number,
    private readonly options: UpgradeOptions,
  ) {
    // Hop-by-hop headers are dropped as for any request, then the upgrade itself is asked
    // for again: it is a request to this next hop too.
    this.head = `${upstreamHead(req)}Connection: Upgrade\r\nUpgrade: ${req.headers.upgrade ?? ''}\r\n\r\n`
    // Nothing the client sends is read until the replica has agreed to the upgrade.
    socket.pause()
    socket.once('close', () => this.upReq?.abort())
  }

  /** Report the answer once to the observer: relayed from the last replica tried, or the balancer's own. */
  private report(status: number, flag: string, relayed: boolean): void {
    const observer = this.options.loop.observer
    if (observer === undefined) return
    const upstream = this.last
    const r = { incoming: this.req, status, startedAt: this.startedAt, upstreamMs: relayed ? performance.now() - this.sentAt : -1, bytesIn: 0, bytesOut: 0, flag, replicaName: upstream?.name }
    if (relayed) observer.relayed(r, upstream?.stats)
    else observer.local(r)
  }

  send(upstream: Upstream): void {
    if (this.socket.destroyed) return
    this.sentAt = performance.now()
    this.last = upstream
    upstream.begin()
    const upReq = new UpgradeRequest(upstream.host, upstream.port, this.head, this.options.loop.upstreamTimeoutMs, this.userFor(upstream))
    this.upReq = upReq
    // In flight until its connection closes (for a tunnel: when the tunnel closes).
    upReq.socket.once('close', () => upstream.end())
  }

  /** What the replica's answer does to the client. */
  private userFor(upstream: Upstream): UpgradeUser {
    const { socket } = this
    let status = 0
    return {
      onSwitched: (message, raw, upSocket, rest) => {
        if (socket.destroyed) {
          upSocket.destroy()
          return
        }
        socket.write(statusLine(101, message) + headerLines(raw) + '\r\n')
        this.report(101, NO_FLAG, true)
        this.options.tunnels.splice(socket, upSocket, this.clientHead, rest)
      },
      onHead: (statusCode, message, raw) => {
        status = this.relayHead(statusCode, message, raw)
        this.report(status, NO_FLAG, true)
      },
      onData: (chunk, last) => {
        if (status === 400) return // a 404 answered with the SPEC's 400: its body goes nowhere
        if (!socket.write(chunk) && !last) {
          this.upReq?.pause()
          socket.once('drain', () => this.upReq?.resume())
        }
        if (last) socket.end()
      },
      onFailure: (err, answered) => this.onError(upstream, err, answered),
    }
  }

  /**
   * A non-101 answer: relayed as a normal response, then the connection is closed (a 404
   * becomes the SPEC's 400). Returns the status the client gets.
   */
  private relayHead(status: number, message: string, raw: string[]): number {
    const { socket } = this
    if (status === 404) {
      this.upReq?.abort()
      answerError(socket, new BalancerError('ENDPOINT_NOT_FOUND', `'${pathOf(this.req.url ?? '/')}' endpoint does not exist in server replicas`))
      return 400
    }
    // endToEnd drops Transfer-Encoding (the parser has decoded the chunks): without a
    // Content-Length the body ends with the connection, which `Connection: close` announces.
    socket.write(statusLine(status, message) + headerLines(endToEnd(raw)) + 'Connection: close\r\n\r\n')
    socket.resume() // whatever the client sent after its request has nowhere to go
    socket.once('finish', () => linger(socket))
    return status
  }

  private onError(upstream: Upstream, err: UpstreamError, answered: boolean): void {
    this.upReq = undefined
    if (this.socket.destroyed) return
    if (answered) {
      // Cut short mid-answer: the client must see that it did not complete.
      this.options.loop.report(upstream, err)
      this.socket.destroy()
      return
    }
    // Before any answer: a refused or reset connection goes to the next replica; a timeout
    // does not (the replica may be acting on it). The retry policy decides.
    this.lastError = err.code
    this.options.loop.failed(this, upstream, err)
  }

  /** Trip: no replica will take it. */
  giveUp(err: BalancerError): void {
    answerError(this.socket, err)
    this.report(err.status, err.code === 'NO_REPLICAS' ? NO_HEALTHY_UPSTREAM : flagOfUpstreamError(this.lastError), false)
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

/** The SPEC's error answer, then the connection is closed. */
function answerError(socket: Socket, err: BalancerError): void {
  if (socket.destroyed) return
  socket.end(closingErrorAnswer(err))
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
