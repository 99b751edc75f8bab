/**
 * Byte tunnels: what TCP mode and upgraded (WebSocket) HTTP connections become once both ends
 * are connected. `Tunnels` admits client connections up to a maximum, splices each to its
 * replica connection (bytes both ways, back-pressure, half-close), closes idle ones, and can
 * close them all on shutdown.
 *
 * Closing rules, the same for both ends:
 * - a FIN (`end`) from one end is passed on as a FIN to the other, which may keep sending
 *   (half-close: `allowHalfOpen` on both sockets, `pipe` ends the other side's writable);
 * - a socket closes by itself once it has both received and sent its FIN;
 * - an error or reset on one end resets the other (RST, not FIN: the peer must not mistake an
 *   aborted conversation for a complete one);
 * - no byte either way for `idleTimeoutMs` closes both.
 */
import type { Socket } from 'node:net'

export interface TunnelOptions {
  /** Most client connections open at once (pending and spliced); more are refused. */
  readonly maxConnections: number
  /** Close both ends after this long without a byte either way; 0 disables. */
  readonly idleTimeoutMs: number
}

export class Tunnels {
  readonly maxConnections: number
  readonly idleTimeoutMs: number
  /** Every admitted client socket, with its replica socket once it has one. */
  private readonly open = new Map<Socket, Socket | undefined>()
  private refusedCount = 0

  constructor(options: TunnelOptions) {
    this.maxConnections = options.maxConnections
    this.idleTimeoutMs = options.idleTimeoutMs
  }

  /** Client connections open now (waiting for a replica or spliced to one). */
  get size(): number {
    return this.open.size
  }

  /** Client connections refused because `maxConnections` were open. */
  get refused(): number {
    return this.refusedCount
  }

  /**
   * Take a new client connection into account. False when the maximum is reached: the caller
   * refuses it. Otherwise it counts until the client socket closes, and the idle timer runs
   * from now (waiting for a replica counts as idle too).
   */
  admit(client: Socket): boolean {
    if (this.open.size >= this.maxConnections) {
      this.refusedCount++
      return false
    }
    this.open.set(client, undefined)
    client.once('close', () => {
      const upstream = this.open.get(client)
      this.open.delete(client)
      // The client is gone without an orderly close: the replica side must not linger.
      if (upstream && !upstream.destroyed && !upstream.writableEnded) reset(upstream)
    })
    if (this.idleTimeoutMs > 0) {
      // Every byte of the tunnel passes through the client socket (read from it or written
      // to it), so its inactivity timer alone measures idleness in both directions.
      client.setTimeout(this.idleTimeoutMs)
      client.once('timeout', () => {
        const upstream = this.open.get(client)
        client.destroy()
        upstream?.destroy()
      })
    }
    return true
  }

  /**
   * Splice an admitted client to its connected replica socket. `clientHead` and
   * `upstreamHead` are bytes already read from either side (e.g. after an HTTP upgrade)
   * that must go first.
   */
  splice(client: Socket, upstream: Socket, clientHead?: Buffer, upstreamHead?: Buffer): void {
    if (!this.open.has(client) || client.destroyed) {
      upstream.destroy()
      return
    }
    this.open.set(client, upstream)
    client.on('error', () => reset(upstream))
    upstream.on('error', () => reset(client))
    upstream.once('close', (hadError) => {
      if (hadError) reset(client)
    })
    // Small writes go out at once: this is someone else's protocol, we add no latency.
    client.setNoDelay(true)
    upstream.setNoDelay(true)
    if (upstreamHead !== undefined && upstreamHead.length > 0) client.write(upstreamHead)
    if (clientHead !== undefined && clientHead.length > 0) upstream.write(clientHead)
    client.pipe(upstream)
    upstream.pipe(client)
    client.resume()
    upstream.resume()
  }

  /**
   * Bytes written to tunnel sockets and not yet handed to the kernel, over all tunnels. With
   * back-pressure working this stays near a socket high-water mark per direction however
   * fast one end sends and however slowly the other reads.
   */
  buffered(): number {
    let n = 0
    for (const [client, upstream] of this.open) n += client.writableLength + (upstream?.writableLength ?? 0)
    return n
  }

  /** Shutdown: close every client connection and its replica connection now. */
  closeAll(): void {
    for (const [client, upstream] of this.open) {
      client.destroy()
      upstream?.destroy()
    }
  }
}

/**
 * Abort a socket: RST when it is connected (so the peer sees ECONNRESET, not a clean end),
 * a plain destroy otherwise.
 */
export function reset(socket: Socket): void {
  if (socket.destroyed) return
  if (socket.connecting || socket.readyState === 'closed') {
    socket.destroy()
    return
  }
  try {
    socket.resetAndDestroy()
  } catch {
    socket.destroy()
  }
}
