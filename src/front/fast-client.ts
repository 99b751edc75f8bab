/**
 * The fast front's client side of an HttpExchange (src/route/exchange.ts): the answer is
 * written as raw bytes to the client socket — the head held back until the first body bytes
 * so that a small answer is one write — and the connection is told when the answer is
 * complete. One per request (the head and framing are per answer).
 */
import type { Socket } from 'node:net'
import type { BalancerError } from '../errors.js'
import type { HttpClient, HttpExchange } from '../route/exchange.js'
import { endToEnd } from '../route/forward.js'
import { responseRawHeaders } from '../upstream/response-parser.js'
import { AS_IS, CHUNKED, clientHead, clientHeadFromText, type Framing } from './fast-response.js'

/** What a fast answer needs of its client connection (fast-connection.ts). */
export interface FastClient {
  readonly socket: Socket
  /** May the connection stay open after this answer? Asked once, when the head is written. */
  keepAlive(): boolean
  /** Seconds announced in `Keep-Alive: timeout=`. */
  keepAliveSeconds(): number
  /** The answer is complete (written); `keepAlive` is what the head announced. */
  finished(keepAlive: boolean): void
  /** Answer with one of the SPEC's errors (nothing was written yet); that completes it. */
  answerError(err: BalancerError, isHead: boolean): void
}

const LAST_CHUNK = '0\r\n\r\n'

export class FastAnswer implements HttpClient {
  /** The exchange this answers for (set right after both are built). */
  exchange: HttpExchange | undefined
  /** The head, built when the replica's head arrived, written with the first body bytes. */
  private head: string | undefined
  private framing: Framing = AS_IS
  private keepAlive = true

  constructor(
    private readonly isHead: boolean,
    private readonly client: FastClient,
  ) {}

  answerHead(statusCode: number, statusMessage: string, headText: string): void {
    const bodyless = this.isHead || statusCode === 204 || statusCode === 304
    this.keepAlive = this.client.keepAlive()
    const seconds = this.client.keepAliveSeconds()
    // The replica's lines as they are when they allow it (the usual case), else header by header.
    const h = clientHeadFromText(statusCode, statusMessage, headText, bodyless, this.keepAlive, seconds) ?? clientHead(statusCode, statusMessage, endToEnd(responseRawHeaders(headText)), bodyless, this.keepAlive, seconds)
    this.head = h.head
    this.framing = h.framing
  }

  /** Body bytes that are not the last: streamed, with the head in front the first time. */
  answerData(chunk: Buffer): boolean {
    const { socket } = this.client
    socket.cork()
    const head = this.head ?? ''
    this.head = undefined
    const prefix = this.framing === CHUNKED ? `${head}${chunk.length.toString(16)}\r\n` : head
    if (prefix.length > 0) socket.write(prefix, 'latin1')
    let ok = socket.write(chunk)
    if (this.framing === CHUNKED) ok = socket.write('\r\n', 'latin1')
    socket.uncork()
    if (!ok) socket.once('drain', () => this.exchange?.clientDrained())
    return ok
  }

  answerEnd(last: Buffer | string): void {
    const { socket } = this.client
    let text = this.head ?? ''
    this.head = undefined
    const chunked = this.framing === CHUNKED
    if (typeof last === 'string') {
      // A small body: head, body and framing in one latin1 string, one write.
      if (chunked) text += last.length > 0 ? `${last.length.toString(16)}\r\n${last}\r\n${LAST_CHUNK}` : LAST_CHUNK
      else text += last
      socket.write(text, 'latin1')
    } else if (last.length === 0) {
      if (chunked) text += LAST_CHUNK
      if (text.length > 0) socket.write(text, 'latin1')
    } else {
      socket.cork()
      const prefix = chunked ? `${text}${last.length.toString(16)}\r\n` : text
      if (prefix.length > 0) socket.write(prefix, 'latin1')
      socket.write(last)
      if (chunked) socket.write(`\r\n${LAST_CHUNK}`, 'latin1')
      socket.uncork()
    }
    this.client.finished(this.keepAlive)
  }

  answerError(err: BalancerError): void {
    this.client.answerError(err, this.isHead)
  }

  answerAbort(): void {
    this.client.socket.destroy()
  }

  get closedForWrites(): boolean {
    return this.client.socket.destroyed
  }

  /** A plain GET or HEAD has no body to relay. */
  startBody(): void {}
  stopBody(): void {}
}
