/**
 * The L4 front (TCP mode): each client connection -> key from the client address -> ring ->
 * one replica connection -> bytes both ways (see tunnel.ts). The client is accepted paused
 * (`pauseOnConnect`), so none of its bytes is read until a replica has accepted the
 * connection: a replica that refuses, or does not accept within the connect timeout, is
 * replaced by the next distinct replica clockwise at no risk, because it got nothing.
 * Replica connections are opened by `Tunnels.connect` rather than `net.connect`: that is
 * what lets the replica's bytes be read into a reused buffer and written straight to the
 * client, the cheapest relay node:net offers.
 */
import { createServer, type Server, type Socket } from 'node:net'
import { requestIdOf } from '../route/keys.js'
import type { Upstream } from '../upstream/upstream.js'
import { reset, type Tunnels } from '../upstream/tunnel.js'
import { ConnectError } from '../upstream/errors.js'
import type { BalancerError } from '../errors.js'
import type { AttemptLoop, Trip } from '../route/attempt.js'

/** What part of the client's address decides its replica (`--tcp-key`). */
export type TcpKey = 'ip' | 'ip-port'

export interface TcpProxyOptions {
  /** The attempt loop for TCP connections (first choice `ring.pick`). */
  loop: AttemptLoop
  /** `ip`: every connection from one address goes to one replica (as `--key ip` in HTTP). */
  key: TcpKey
  slots: number
  /** ms a replica may take to accept a connection before the next one is tried. */
  connectTimeoutMs: number
  tunnels: Tunnels
}

/**
 * The request id of a client connection: its address string as an HTTP `--key ip` would use
 * it (so a client's HTTP requests and TCP connections agree), or `address:port`.
 */
export function tcpRequestId(socket: Socket, key: TcpKey, slots: number): number {
  const address = socket.remoteAddress ?? ''
  return requestIdOf(key === 'ip' ? address : `${address}:${socket.remotePort ?? 0}`, slots)
}

/** A node:net server that proxies every connection; the caller listens and closes it. */
export function createTcpProxy(options: TcpProxyOptions): Server {
  const server = createServer({ allowHalfOpen: true, pauseOnConnect: true }, (client) => onConnection(client, options))
  // Once listening, an error here is a failed accept (e.g. EMFILE): that client is lost, the
  // listener is not, and the process must not die of it. (Listen errors go to the caller.)
  server.on('error', (err) => {
    if (server.listening) console.error(`tcp: ${err.message}`)
  })
  return server
}

function onConnection(client: Socket, options: TcpProxyOptions): void {
  // From now on an error only closes this connection; it never reaches the process.
  client.on('error', () => {})
  if (!options.tunnels.admit(client)) {
    reset(client)
    return
  }
  options.loop.start(new TcpTrip(client, tcpRequestId(client, options.key, options.slots), options))
}

/** One client connection looking for a replica that accepts it: the attempt loop's Trip for TCP. */
class TcpTrip implements Trip {
  tried: Upstream[] | undefined
  /** Nothing of the client's is read before a replica accepted: a failure never sent a byte. */
  readonly replayable = false
  readonly bodySent = false

  constructor(
    private readonly client: Socket,
    readonly id: number,
    private readonly options: TcpProxyOptions,
  ) {}

  send(upstream: Upstream): void {
    const { client } = this
    if (client.destroyed) return
    upstream.begin()
    const socket = this.options.tunnels.connect(client, upstream.host, upstream.port)
    let counted = true
    let connected = false
    const release = (): void => {
      if (counted) {
        counted = false
        upstream.end()
        const stats = upstream.stats
        // Bytes are counted once, when the connection closes (no per-chunk work).
        if (connected && stats !== undefined) {
          stats.tcpBytesToReplica += socket.bytesWritten
          stats.tcpBytesFromReplica += socket.bytesRead
        }
      }
    }
    socket.once('close', release)
    const timer = setTimeout(() => {
      socket.destroy(new ConnectError('ETIMEDOUT', `replica ${upstream.name} did not accept within ${this.options.connectTimeoutMs} ms`))
    }, this.options.connectTimeoutMs)
    // The client gave up while we were connecting: drop the attempt.
    const onClientClose = (): void => {
      clearTimeout(timer)
      socket.destroy()
    }
    client.once('close', onClientClose)
    const onConnectError = (err: NodeJS.ErrnoException): void => {
      clearTimeout(timer)
      client.off('close', onClientClose)
      release()
      // Before 'connect' the replica got no byte, whatever the error says.
      this.failed(upstream, err instanceof ConnectError ? err : new ConnectError(err.code ?? '', err.message))
    }
    socket.once('error', onConnectError)
    socket.once('connect', () => {
      clearTimeout(timer)
      client.off('close', onClientClose)
      socket.off('error', onConnectError)
      socket.on('error', () => {})
      connected = true
      if (upstream.stats !== undefined) upstream.stats.tcpConnections++
      this.options.tunnels.splice(client, socket)
    })
  }

  /** Any error before `connect` means the replica got no byte: the next one may be tried. */
  private failed(upstream: Upstream, err: ConnectError): void {
    if (this.client.destroyed) return
    this.options.loop.failed(this, upstream, err)
  }

  /** Trip: no replica took it (or there is none): close at once, a TCP client has no error page to read. */
  giveUp(_err: BalancerError): void {
    reset(this.client)
  }
}
