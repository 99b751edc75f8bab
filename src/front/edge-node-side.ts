/**
 * What node:http sees of a client connection the edge hands it: a Duplex (node:http takes any,
 * see the 'connection' event's documentation) whose readable side carries only the bytes the
 * edge has read and accepted (edge-connection.ts), and whose writable side writes straight to
 * the client socket, holding node:http back while the socket's buffer is full. So node:http
 * never parses more than the edge allows (at most --max-pipelined requests ahead, heads
 * already checked), and the client's FIN reaches it only once the requests before it have
 * been answered.
 */
import { Duplex } from 'node:stream'
import type { Socket } from 'node:net'

/** What the node side needs of its edge connection. */
export interface NodeSideOwner {
  /** node:http can take more bytes (its request body reader drained). */
  nodeReadable(): void
  /** node:http destroyed its side (an error, a timeout, closeAllConnections). */
  nodeDestroyed(): void
  /** node:http ended its side (an answer that said close, or after the client's FIN). */
  nodeFinished(): void
}

export class NodeSide extends Duplex {
  constructor(
    readonly socket: Socket,
    readonly owner: NodeSideOwner,
  ) {
    super({ allowHalfOpen: true })
  }

  // The socket properties node:http and the proxy read (X-Forwarded-For, --key ip).
  get remoteAddress(): string | undefined {
    return this.socket.remoteAddress
  }
  get remotePort(): number | undefined {
    return this.socket.remotePort
  }
  get remoteFamily(): string | undefined {
    return this.socket.remoteFamily
  }
  get localAddress(): string | undefined {
    return this.socket.localAddress
  }
  get localPort(): number | undefined {
    return this.socket.localPort
  }
  get encrypted(): boolean {
    return false
  }

  /** The edge runs every timeout itself (its sweep): node:http's socket timeouts are not used. */
  setTimeout(_ms: number, _cb?: () => void): this {
    return this
  }
  setNoDelay(noDelay?: boolean): this {
    this.socket.setNoDelay(noDelay)
    return this
  }
  setKeepAlive(enable?: boolean, delay?: number): this {
    this.socket.setKeepAlive(enable, delay)
    return this
  }
  /** node:http ends a connection after an answer that said close with this. */
  destroySoon(): void {
    this.end()
  }

  override _read(): void {
    this.owner.nodeReadable()
  }

  override _write(chunk: Buffer, encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    const socket = this.socket
    if (socket.destroyed) {
      callback()
      return
    }
    if (socket.write(chunk, encoding)) callback()
    else waitForDrain(socket, callback)
  }

  override _writev(chunks: Array<{ chunk: Buffer; encoding: BufferEncoding }>, callback: (error?: Error | null) => void): void {
    const socket = this.socket
    if (socket.destroyed) {
      callback()
      return
    }
    socket.cork()
    let ok = true
    for (const { chunk, encoding } of chunks) ok = socket.write(chunk, encoding)
    socket.uncork()
    if (ok) callback()
    else waitForDrain(socket, callback)
  }

  override _final(callback: (error?: Error | null) => void): void {
    // node:http is done with the connection (an answer said close, or the client's FIN).
    this.owner.nodeFinished()
    callback()
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.owner.nodeDestroyed()
    callback(error)
  }
}

/** Call `callback` when `socket` drains, or at once if it closes first. */
function waitForDrain(socket: Socket, callback: () => void): void {
  const done = (): void => {
    socket.off('drain', done)
    socket.off('close', done)
    callback()
  }
  socket.on('drain', done)
  socket.on('close', done)
}
