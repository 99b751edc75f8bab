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
import type { HashRing } from '../ring/ring.js'
import { requestIdOf } from '../route/keys.js'
import type { Upstream } from '../upstream/upstream.js'
import { reset, type Tunnels } from '../upstream/tunnel.js'

/** What part of the client's address decides its replica (`--tcp-key`). */
export type TcpKey = 'ip' | 'ip-port'

export interface TcpProxyOptions {
  ring: HashRing<Upstream>
  /** `ip`: every connection from one address goes to one replica (as `--key ip` in HTTP). */
  key: TcpKey
  slots: number
  /** ms a replica may take to accept a connection before the next one is tried. */
  connectTimeoutMs: number
  tunnels: Tunnels
  /** Told when a replica refused a connection or did not accept it in time. */
  onUpstreamFailure?: (upstream: Upstream, err: NodeJS.ErrnoException) => void
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
  const id = tcpRequestId(client, options.key, options.slots)
  const first = options.ring.pick(id)
  if (first === undefined) {
    // No replica at all: close at once (a TCP client has no error page to read).
    reset(client)
    return
  }
  new Attempts(client, id, options).connect(first)
}

/** Errors that say the replica (not this machine) is at fault: reported for health. */
const REPLICA_ERRORS = new Set(['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'ETIMEDOUT', 'ECONNRESET'])

/** One client connection looking for a replica that accepts it. */
class Attempts {
  private tried: Upstream[] | undefined

  constructor(
    private readonly client: Socket,
    private readonly id: number,
    private readonly options: TcpProxyOptions,
  ) {}

  connect(upstream: Upstream): void {
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
      socket.destroy(Object.assign(new Error(`replica ${upstream.name} did not accept within ${this.options.connectTimeoutMs} ms`), { code: 'ETIMEDOUT' }))
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
      this.failed(upstream, err)
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
  private failed(upstream: Upstream, err: NodeJS.ErrnoException): void {
    const { client } = this
    if (client.destroyed) return
    if (REPLICA_ERRORS.has(err.code ?? '')) this.options.onUpstreamFailure?.(upstream, err)
    upstream.stats?.failed(err.code)
    ;(this.tried ??= []).push(upstream)
    const tried = this.tried
    const next = this.options.ring.next(this.id, (u) => !tried.includes(u))
    if (next === undefined) reset(client)
    else {
      if (upstream.stats !== undefined) upstream.stats.retries++
      this.connect(next)
    }
  }
}
