/**
 * An upgrade request (WebSocket or any other `Upgrade:` protocol) to one replica, on a
 * connection of its own: an upgraded connection never goes back to a pool. The head is
 * written, the answer read with the same parser as every other answer (response-parser.ts),
 * and then either
 * - 101: the socket, with any bytes the replica sent right after its head, is handed to the
 *   user to become the replica end of a tunnel (tunnel.ts); nothing here touches it again;
 * - anything else: its head and body go to the user as for a normal request, and the
 *   connection is closed after it.
 * The socket is opened half-open capable, as tunnels need (a FIN one way is passed on).
 */
import { connect, type Socket } from 'node:net'
import { ResponseParser, responseRawHeaders, type ResponseHandler } from './response-parser.js'
import { UpstreamTimeoutError, fromSocketError, hangUp, type UpstreamError } from './errors.js'

export interface UpgradeUser {
  /** The replica switched protocols: `socket` is the tunnel's replica end, `rest` bytes it sent after its head. */
  onSwitched(statusMessage: string, rawHeaders: string[], socket: Socket, rest: Buffer): void
  /** Another answer's head; its body follows through onData, then the connection closes. */
  onHead(statusCode: number, statusMessage: string, rawHeaders: string[]): void
  /** Body bytes of a non-101 answer; exactly one call has `last` set. */
  onData(chunk: Buffer, last: boolean): void
  /** The request failed before or during its answer (`answered` tells whether onHead came). */
  onFailure(err: UpstreamError, answered: boolean): void
}

export class UpgradeRequest implements ResponseHandler {
  readonly socket: Socket
  private readonly parser = new ResponseParser(this)
  /** The answer's head was passed on (a non-101 answer). */
  private answered = false
  /** 101: the head, and the bytes that came after it in the same read. */
  private switched: { message: string; raw: string[]; rest: Buffer[] } | undefined
  private finished = false
  /** After a 101 the socket belongs to the tunnel. */
  private handedOver = false

  /**
   * @param head the request line and headers, blank line included, as latin1
   * @param timeoutMs how long the replica may stay silent before the request fails (504)
   */
  constructor(host: string, port: number, head: string, timeoutMs: number, private readonly user: UpgradeUser) {
    this.parser.expect(false)
    const socket = connect({ host, port, noDelay: true, allowHalfOpen: true })
    socket.setTimeout(timeoutMs)
    socket.write(head, 'latin1')
    socket.on('data', this.onSocketData)
    socket.on('end', this.onSocketEnd)
    socket.on('error', this.onSocketError)
    socket.on('close', this.onSocketClose)
    socket.on('timeout', this.onSocketTimeout)
    this.socket = socket
  }

  /** Stop reading the answer (its client is slow to take it), and go on. */
  pause(): void {
    this.socket.pause()
  }

  resume(): void {
    this.socket.resume()
  }

  /** Give up: the client went away, or its answer was written already (a 404). Not once the socket is a tunnel's. */
  abort(): void {
    if (this.handedOver) return
    this.finished = true
    this.parser.abort()
    this.socket.destroy()
  }

  // ResponseHandler: the parser's calls.
  onHead(statusCode: number, statusMessage: string, headText: string): void {
    if (statusCode === 101) {
      this.switched = { message: statusMessage, raw: responseRawHeaders(headText), rest: [] }
      return
    }
    this.answered = true
    this.user.onHead(statusCode, statusMessage, responseRawHeaders(headText))
  }

  onData(chunk: Buffer, last: boolean): void {
    if (this.switched !== undefined) {
      // Bytes of the new protocol that came with the 101 (the parser reads them as a body
      // that runs until close): they go first into the tunnel.
      this.switched.rest.push(chunk)
      return
    }
    if (this.finished) return
    if (last) this.finished = true
    this.user.onData(chunk, last)
    if (last) this.socket.destroy()
  }

  private fail(err: UpstreamError): void {
    if (this.finished) return
    this.finished = true
    this.parser.abort()
    this.socket.destroy()
    this.user.onFailure(err, this.answered)
  }

  private readonly onSocketData = (chunk: Buffer): void => {
    if (this.finished) return
    try {
      this.parser.execute(chunk)
    } catch (err) {
      this.fail(fromSocketError(err as Error))
      return
    }
    const switched = this.switched
    if (switched === undefined || this.finished) return
    // The socket is the tunnel's from here: our listeners go, its reads wait for the splice.
    this.finished = true
    this.handedOver = true
    const socket = this.socket
    socket.pause()
    socket.off('data', this.onSocketData)
    socket.off('end', this.onSocketEnd)
    socket.off('error', this.onSocketError)
    socket.off('close', this.onSocketClose)
    socket.off('timeout', this.onSocketTimeout)
    // The answer's deadline must not carry over into the tunnel (it has an idle timeout of its own).
    socket.setTimeout(0)
    socket.on('error', () => {})
    this.user.onSwitched(switched.message, switched.raw, socket, Buffer.concat(switched.rest))
  }

  private readonly onSocketEnd = (): void => {
    // A body delimited by the close is complete now; else the answer was cut short.
    if (!this.parser.eof()) this.fail(hangUp())
    this.socket.destroy()
  }

  private readonly onSocketError = (err: Error): void => {
    this.fail(fromSocketError(err))
  }

  private readonly onSocketClose = (): void => {
    this.fail(hangUp())
  }

  private readonly onSocketTimeout = (): void => {
    this.fail(new UpstreamTimeoutError())
  }
}
