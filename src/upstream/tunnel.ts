/**
 * Byte tunnels: what TCP mode and upgraded (WebSocket) HTTP connections become once both ends
 * are connected. `Tunnels` admits client connections up to a maximum, splices each to its
 * replica connection (bytes both ways, back-pressure, half-close), closes idle ones, and can
 * close them all on shutdown.
 *
 * Closing rules, the same for both ends:
 * - a FIN (`end`) from one end is passed on as a FIN to the other, which may keep sending
 *   (half-close: `allowHalfOpen` on both sockets; the relay ends the other side's writable);
 * - a socket closes by itself once it has both received and sent its FIN;
 * - an error or reset on one end resets the other (RST, not FIN: the peer must not mistake an
 *   aborted conversation for a complete one);
 * - no byte either way for `idleTimeoutMs` closes both.
 *
 * Cost: every relayed request and response goes through here, so per chunk this does no more
 * than a bare `socket.pipe` both ways, and less where node:net allows:
 * - no inactivity timer per socket: `socket.setTimeout` re-arms its timer on every read and
 *   every write; one coarse sweep per `Tunnels` compares each client's byte counters instead
 *   (see `sweep`);
 * - replica sockets we open ourselves (TCP mode, `Tunnels.connect`) read into a buffer of
 *   their own (`onread`) that is written straight to the client: no ArrayBuffer allocated
 *   per read, no readable-stream push and no 'data' event (see `ReplicaReader`);
 * - the other sockets (accepted clients, and the replica side of upgrades, which
 *   upgrade-request.ts opens and reads until the 101) have no `onread` option: a 'data'
 *   listener does what `pipe` does per chunk (write,
 *   pause while the destination is full, resume on 'drain', pass the FIN on) and no more.
 * No Node internal (`_handle`, ...) is used.
 */
import { connect, type Socket } from 'node:net'

export interface TunnelOptions {
  /** Most client connections open at once (pending and spliced); more are refused. */
  readonly maxConnections: number
  /** Close both ends after this long without a byte either way; 0 disables. */
  readonly idleTimeoutMs: number
  /** Client connections open elsewhere (the HTTP edge's) that count against maxConnections too. */
  readonly otherConnections?: () => number
}

/** What `Tunnels` keeps per admitted client connection. */
interface Tunnel {
  /** The replica connection, once spliced. */
  upstream: Socket | undefined
  /** The client's bytes read + written when the sweep last saw them change (or at admission). */
  seen: number
  /** When that was (performance.now()). */
  since: number
}

/** Longest pause between two idle sweeps, whatever the idle timeout. */
const MAX_SWEEP_MS = 1000

export class Tunnels {
  readonly maxConnections: number
  readonly idleTimeoutMs: number
  /** Client connections open elsewhere (the HTTP edge's) that count against maxConnections. */
  private readonly otherConnections: (() => number) | undefined
  /**
   * ms between idle sweeps: an eighth of the idle timeout, at most MAX_SWEEP_MS. A tunnel is
   * closed between `idleTimeoutMs` and `idleTimeoutMs + 2 * sweepMs` after its last byte
   * (never before), i.e. at most 25% late, and at most 2 s late for timeouts over 8 s.
   */
  readonly sweepMs: number
  /** Every admitted client socket. */
  private readonly open = new Map<Socket, Tunnel>()
  /** Replica sockets opened by `connect`, and what reads them. */
  private readonly readers = new WeakMap<Socket, ReplicaReader>()
  private sweeper: NodeJS.Timeout | undefined
  private refusedCount = 0

  constructor(options: TunnelOptions) {
    this.maxConnections = options.maxConnections
    this.otherConnections = options.otherConnections
    this.idleTimeoutMs = options.idleTimeoutMs
    this.sweepMs = Math.max(1, Math.min(options.idleTimeoutMs / 8, MAX_SWEEP_MS))
  }

  /** Client connections open now (waiting for a replica or spliced to one). */
  get size(): number {
    return this.open.size
  }

  /** Client connections refused because `maxConnections` were open (here or at the HTTP edge). */
  get refused(): number {
    return this.refusedCount
  }

  /** The HTTP edge refused a connection over the shared limit. */
  noteRefused(): void {
    this.refusedCount++
  }

  /**
   * Take a new client connection into account. False when the maximum is reached: the caller
   * refuses it. Otherwise it counts until the client socket closes, and its idle time runs
   * from now (waiting for a replica counts as idle too).
   */
  admit(client: Socket): boolean {
    if (this.open.size + (this.otherConnections?.() ?? 0) >= this.maxConnections) {
      this.refusedCount++
      return false
    }
    this.open.set(client, { upstream: undefined, seen: activity(client), since: performance.now() })
    // The sweep is the only idle rule (e.g. an HTTP server's socket timeout must not apply
    // to a socket that has become a tunnel).
    if (client.timeout) client.setTimeout(0)
    client.once('close', () => {
      const upstream = this.open.get(client)?.upstream
      this.open.delete(client)
      if (this.open.size === 0) this.stopSweeping()
      // The client is gone without an orderly close: the replica side must not linger.
      if (upstream && !upstream.destroyed && !upstream.writableEnded) reset(upstream)
    })
    if (this.idleTimeoutMs > 0 && this.sweeper === undefined) {
      this.sweeper = setInterval(() => this.sweep(), this.sweepMs)
      this.sweeper.unref()
    }
    return true
  }

  /**
   * Open a replica connection for an admitted client (TCP mode). Once spliced, what the
   * replica sends is read into a reused buffer and written to the client (see
   * `ReplicaReader`); until then it is an ordinary connecting socket.
   */
  connect(client: Socket, host: string, port: number): Socket {
    const reader = new ReplicaReader(client)
    const socket = connect({ host, port, allowHalfOpen: true, noDelay: true, onread: reader.onread })
    reader.socket = socket
    this.readers.set(socket, reader)
    return socket
  }

  /**
   * Splice an admitted client to its connected replica socket. `clientHead` and
   * `upstreamHead` are bytes already read from either side (e.g. after an HTTP upgrade)
   * that must go first.
   */
  splice(client: Socket, upstream: Socket, clientHead?: Buffer, upstreamHead?: Buffer): void {
    const tunnel = this.open.get(client)
    if (tunnel === undefined || client.destroyed) {
      upstream.destroy()
      return
    }
    tunnel.upstream = upstream
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
    relay(client, upstream)
    const reader = this.readers.get(upstream)
    if (reader === undefined) relay(upstream, client)
    else reader.start()
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
    for (const [client, { upstream }] of this.open) n += client.writableLength + (upstream?.writableLength ?? 0)
    return n
  }

  /** Shutdown: close every client connection and its replica connection now. */
  closeAll(): void {
    for (const [client, { upstream }] of this.open) {
      client.destroy()
      upstream?.destroy()
    }
  }

  /**
   * Close the tunnels that moved no byte since a sweep at least `idleTimeoutMs` ago. Every
   * byte of a tunnel passes through its client socket (read from it or written to it), so
   * the client's counters alone show activity in both directions; a change is only noticed
   * at the next sweep, hence the up to two sweep periods of lateness. This costs one pass
   * over the open tunnels per sweep period instead of a timer re-armed on every read and
   * write of every socket.
   */
  private sweep(): void {
    const now = performance.now()
    for (const [client, tunnel] of this.open) {
      const seen = activity(client)
      if (seen !== tunnel.seen) {
        tunnel.seen = seen
        tunnel.since = now
      } else if (now - tunnel.since >= this.idleTimeoutMs) {
        client.destroy()
        tunnel.upstream?.destroy()
      }
    }
  }

  private stopSweeping(): void {
    clearInterval(this.sweeper)
    this.sweeper = undefined
  }
}

/** Bytes a socket has read plus written so far (never NaN: NaN !== NaN would look like activity forever). */
function activity(socket: Socket): number {
  return socket.bytesRead + socket.bytesWritten || 0
}

/**
 * One direction of a tunnel over 'data' events: what `from.pipe(to)` does for a socket pair
 * (write, pause while `to` is full, pass the FIN on), and nothing else.
 */
function relay(from: Socket, to: Socket): void {
  let paused = false
  from.on('data', (chunk: Buffer) => {
    if (!to.write(chunk) && !paused) {
      paused = true
      from.pause()
    }
  })
  to.on('drain', () => {
    if (paused) {
      paused = false
      from.resume()
    }
  })
  from.once('end', () => to.end())
}

/** First read buffer of a replica connection: small, as most tunnels idle or talk in short messages. */
const MIN_READ = 4 * 1024
/** Largest read buffer (as node:net's own reads): reached by doubling when a read fills it. */
const MAX_READ = 64 * 1024

/**
 * The replica -> client direction of a TCP-mode tunnel, as the replica socket's `onread`:
 * node:net reads into `buf` and calls `read`, which writes the bytes to the client at once.
 *
 * `buf` is reused from read to read, which is only safe while no write still points into
 * it. A write that finds the client's queue empty is handed to the kernel at once; if the
 * kernel took every byte (the usual case), `buf` is free again, else the pending write keeps
 * it and the next read gets a new buffer. A write that queues behind earlier bytes gets a
 * copy of just its bytes. So at most one buffer is ever held by pending writes, and a slow
 * client costs at most a socket high-water mark plus one read of memory, as with `pipe`.
 * A full client stops the reading (`read` returns false) until it drains.
 *
 * `buf` starts at MIN_READ and doubles up to MAX_READ each time a read fills it: an idle
 * tunnel holds 4 KiB, a busy one reads as much per call as node:net would.
 */
class ReplicaReader {
  /** The replica socket (set right after it is created). */
  socket!: Socket
  private buf = Buffer.allocUnsafeSlow(MIN_READ)
  private paused = false
  private started = false
  /** For `net.connect({ onread })`. */
  readonly onread = {
    buffer: (): Buffer => this.buf,
    callback: (n: number): boolean => this.read(n),
  }

  constructor(private readonly client: Socket) {}

  /** Spliced: pass the replica's FIN on, resume reading whenever the client has drained. */
  start(): void {
    if (this.started) return
    this.started = true
    const { client } = this
    this.socket.once('end', () => client.end())
    client.on('drain', () => {
      if (this.paused) {
        this.paused = false
        this.socket.resume()
      }
    })
  }

  private read(n: number): boolean {
    const { client } = this
    const buf = this.buf
    const full = n === buf.length
    let ok: boolean
    let replace = full && buf.length < MAX_READ
    if (client.writableLength === 0) {
      ok = client.write(full ? buf : buf.subarray(0, n))
      // Still queued (partly): the pending write points into `buf`, which must not be reused.
      if (client.writableLength > 0) replace = true
    } else {
      ok = client.write(Buffer.from(buf.subarray(0, n)))
    }
    if (replace) this.buf = Buffer.allocUnsafeSlow(full ? Math.min(buf.length * 2, MAX_READ) : buf.length)
    if (ok) return true
    this.paused = true
    return false
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
