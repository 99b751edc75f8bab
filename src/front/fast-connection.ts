/**
 * One client connection on the fast front. It reads requests itself while they are plain
 * GET/HEAD requests (request.ts), one at a time: a pipelined request waits in `pending` until
 * the answer before it is complete, so answers leave in order. The first request it does not
 * take — a body, an upgrade, an admin path, anything malformed or incomplete in what has
 * arrived — hands the connection, with every unread byte, to node:http for the rest of its
 * life. That happens only between answers, so node:http never writes into one of ours.
 */
import type { Socket } from 'node:net'
import type { BalancerError } from '../errors.js'
import { parseFastRequest } from './fast-request.js'
import { errorAnswer } from './respond.js'
import type { FastClient } from './fast-client.js'
import type { HttpExchange } from '../route/exchange.js'
import type { FastRequest } from './fast-request.js'

/** What a connection needs of the fast front (fast.ts) that accepted it. */
export interface FastConnectionHost {
  /** Shutting down: answers say `Connection: close`. */
  readonly closing: boolean
  /** Header names a request must not repeat to stay on the fast front. */
  readonly unique: ReadonlySet<string>
  keepAliveSeconds(): number
  /** Does the fast front answer a request for `url`? */
  takes(url: string): boolean
  /** Route and send a parsed request. */
  start(req: FastRequest, conn: FrontConnection): void
  /** node:http takes over `socket`. */
  handOff(socket: Socket): void
  /** The connection closed or was handed over. */
  forget(conn: FrontConnection): void
}

/** Bytes of pipelined requests held while an answer is in flight before reading pauses. */
const MAX_PENDING = 64 * 1024

export class FrontConnection implements FastClient {
  /** Bytes read and not yet taken as a request. */
  private pending: Buffer | undefined
  private exchange: HttpExchange | undefined
  /** The client half-closed (we are closing too). */
  private ended = false
  private running = false
  /** Handed to node:http, closed, or closing after an answer that said so: read nothing more. */
  private gone = false
  /** Whether the current request allows keep-alive (`Connection: close` says no). */
  private exchangeWantsKeepAlive = true
  /** When the last answer finished (or the connection opened); for the keep-alive timeout. */
  idleSince: number

  constructor(
    readonly socket: Socket,
    private readonly front: FastConnectionHost,
  ) {
    this.idleSince = Date.now()
    socket.on('data', this.onData)
    socket.on('end', this.onEnd)
    socket.on('error', this.onError)
    socket.on('close', this.onClose)
  }

  /** No answer in flight and nothing pending: safe to close for the keep-alive timeout or shutdown. */
  get idle(): boolean {
    return this.exchange === undefined && this.pending === undefined
  }

  // FastClient

  keepAlive(): boolean {
    return !this.ended && !this.front.closing && this.exchangeWantsKeepAlive
  }

  keepAliveSeconds(): number {
    return this.front.keepAliveSeconds()
  }

  /** Answer the current request with one of the SPEC's errors; that completes it. */
  answerError(err: BalancerError, isHead: boolean): void {
    const keepAlive = this.keepAlive()
    this.socket.write(errorAnswer(err, isHead, keepAlive, this.keepAliveSeconds()), 'latin1')
    this.finished(keepAlive)
  }

  /** The answer to the request just taken is on its way. */
  inFlight(exchange: HttpExchange): void {
    this.exchange = exchange
  }

  finished(keepAlive: boolean): void {
    this.exchange = undefined
    if (!keepAlive) {
      // The head said `Connection: close`: end once the answer is flushed; bytes that follow are dropped.
      this.gone = true
      this.pending = undefined
      this.socket.end()
      return
    }
    this.idleSince = Date.now()
    if (this.socket.isPaused()) this.socket.resume()
    this.next()
  }

  // Reading

  private readonly onData = (chunk: Buffer): void => {
    if (this.gone) return
    this.pending = this.pending === undefined ? chunk : Buffer.concat([this.pending, chunk])
    if (this.exchange !== undefined) {
      // Pipelined: it waits for the answer in flight; bounded, like node:http does.
      if (this.pending.length > MAX_PENDING) this.socket.pause()
      return
    }
    this.next()
  }

  /** Take the pending requests, one at a time, until one is in flight or none is left. */
  private next(): void {
    // An answer completed synchronously inside the loop below: the loop carries on.
    if (this.running) return
    this.running = true
    try {
      while (this.exchange === undefined && !this.gone) {
        const buf = this.pending
        if (buf === undefined) {
          if (this.ended) this.socket.end()
          return
        }
        const parsed = parseFastRequest(buf, 0, this.socket, this.front.unique)
        if (parsed === undefined || !this.front.takes(parsed.request.url)) {
          this.handOff()
          return
        }
        this.pending = parsed.end < buf.length ? buf.subarray(parsed.end) : undefined
        this.exchangeWantsKeepAlive = !parsed.request.close
        this.front.start(parsed.request, this)
      }
    } finally {
      this.running = false
    }
  }

  /** From now on node:http owns this connection, starting with the bytes not read yet. */
  private handOff(): void {
    const { socket } = this
    this.gone = true
    this.front.forget(this)
    socket.off('data', this.onData)
    socket.off('end', this.onEnd)
    socket.off('error', this.onError)
    socket.off('close', this.onClose)
    if (this.ended) {
      // The client already half-closed, and a stream cannot take bytes back after its end:
      // close instead. (Only a pipelined non-plain request followed by FIN gets here; RFC 9112
      // 9.3.2 has clients retry requests a closed connection did not answer.)
      socket.destroy()
      return
    }
    socket.pause()
    if (this.pending !== undefined) socket.unshift(this.pending)
    this.pending = undefined
    this.front.handOff(socket)
  }

  private readonly onEnd = (): void => {
    this.ended = true
    if (this.exchange === undefined) {
      this.socket.end()
      return
    }
    // The client half-closed before its answer: as node:http does (httpAllowHalfOpen off),
    // that aborts the requests not yet answered, and the replica stops working on them.
    this.destroy()
  }

  private readonly onError = (): void => {
    // ECONNRESET and the like: 'close' follows and cleans up.
  }

  private readonly onClose = (): void => {
    this.gone = true
    this.pending = undefined
    this.front.forget(this)
    const exchange = this.exchange
    this.exchange = undefined
    exchange?.clientClosed()
  }

  /** Shutdown or keep-alive timeout: close now (callers check `idle` when it matters). */
  destroy(): void {
    this.socket.destroy()
  }
}
