/**
 * Client connections read into one buffer that all of them share, instead of a fresh buffer
 * per read. Node reads an accepted socket 64 KiB at a time into new memory, so a client that
 * sends a burst of pipelined requests and never reads the answers leaves up to 64 KiB of
 * unparsed bytes with the edge per read (issue 14: memory per abusive client), and every read
 * of every client allocates. For the sockets it opens itself Node offers the `onread` option:
 * reads land in a buffer the caller gives and a callback gets them. Accepted sockets do not
 * get that option, so the front's server accepts paused (`pauseOnConnect`, nothing read yet)
 * and the accepted TCP handle is wrapped in a new net.Socket that has it, which is what
 * Node's own constructor does with a handle (lib/net.js `initSocketHandle`). The edge copies
 * out only the bytes it keeps (a partial head, pipelined requests waiting their turn, body
 * bytes passed on): at most one read, and reads are 16 KiB while heads are read (nginx reads
 * heads into 1 KiB and then 8 KiB buffers), 64 KiB while a body flows.
 *
 * Where a socket has no such handle (not TCP, or a Node whose internals differ), the accepted
 * socket is used as it is, with 'data' events (reads allocate as before).
 */
import { Socket, type Server } from 'node:net'

/** Read size while a request head is expected. */
export const HEAD_READ_BYTES = 16 * 1024
/** Read size while a body (or a tunnel) flows. */
const BODY_READ_BYTES = 64 * 1024

const shared = Buffer.allocUnsafeSlow(BODY_READ_BYTES)
const headRead = shared.subarray(0, HEAD_READ_BYTES)

/** What reads the bytes of a socket made by `readIntoSharedBuffer`. */
export interface SharedReader {
  /**
   * Bytes read: a view of the shared buffer, valid only until this returns (keep a copy,
   * `owned()`). False: read nothing more until the socket is resumed.
   */
  onRead(view: Buffer): boolean
  /** Whether the next read may be a large one (a body or a tunnel is flowing). */
  readonly largeReads: boolean
}

/** Is `buf` a view of the shared read buffer? */
export function isShared(buf: Buffer): boolean {
  return buf.buffer === shared.buffer
}

/** `buf`, or a copy of it when it is a view of the shared read buffer (which the next read overwrites). */
export function owned(buf: Buffer): Buffer {
  return isShared(buf) ? Buffer.from(buf) : buf
}

/** Accept connections paused, so that `readIntoSharedBuffer` gets sockets nothing was read from. */
export function acceptPaused(server: Server): void {
  ;(server as Server & { pauseOnConnect: boolean }).pauseOnConnect = true
}

interface AcceptedSocket {
  _handle: { useUserBuffer?: unknown; reading?: unknown } | null
  _server: Server | null
  server: Server | null
}

/**
 * `accepted` (from a server that accepts paused) as a socket that reads into the shared buffer
 * and hands every read to the reader `readerOf()` returns (asked at each read; reading starts
 * on a later turn, by when the reader exists). Undefined when the socket cannot be rewrapped:
 * use `accepted` itself, with 'data' events (it is still paused).
 */
export function readIntoSharedBuffer(accepted: Socket, readerOf: () => SharedReader | undefined): Socket | undefined {
  const old = accepted as unknown as AcceptedSocket
  const handle = old._handle
  if (handle == null || typeof handle.useUserBuffer !== 'function' || handle.reading !== false || accepted.destroyed) return undefined
  const server = old._server
  old._handle = null
  // The server counts its connections through the socket's `_server` (lib/net.js): the new
  // socket is the one that will close, so it carries the count.
  old._server = null
  old.server = null
  const socket = new Socket({
    handle: handle as never,
    allowHalfOpen: accepted.allowHalfOpen,
    readable: true,
    writable: true,
    writableHighWaterMark: accepted.writableHighWaterMark,
    onread: {
      // Asked once here, before the reader exists, then after every read.
      buffer: () => (readerOf()?.largeReads === true ? shared : headRead),
      callback: (n: number, buf: Uint8Array) => readerOf()?.onRead((buf as Buffer).subarray(0, n)) ?? false,
    },
  } as ConstructorParameters<typeof Socket>[0])
  const adopted = socket as unknown as AcceptedSocket
  adopted._server = server
  adopted.server = server
  return socket
}
