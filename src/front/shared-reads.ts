/**
 * Client connections read into one buffer that all of them share, instead of a fresh buffer
 * per read. Node reads an accepted socket 64 KiB at a time into new memory, so a client that
 * sends a burst of pipelined requests and never reads the answers leaves up to 64 KiB of
 * unparsed bytes with the edge per read (issue 14: memory per abusive client), and every read
 * of every client allocates. For the sockets it opens itself Node offers the `onread` option:
 * reads land in a buffer the caller gives and a callback gets them. Accepted sockets do not
 * get that option, so the front's server accepts paused (`pauseOnConnect`, nothing read yet)
 * and the accepted socket is given the state that option gives (Node's own symbols for it,
 * and the handle's `useUserBuffer`, as lib/net.js `initSocketHandle` does). The edge copies
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

/**
 * Node's own per-socket `onread` state (lib/net.js: the symbols kBuffer, kBufferGen and
 * kBufferCb, which the constructor's `onread` option sets and every read consults). Found
 * once, by their descriptions, on a socket made with that option; undefined when this Node
 * keeps them differently (then sockets are read with 'data' events).
 */
interface ReadSymbols {
  buffer: symbol
  generator: symbol
  callback: symbol
}

const readSymbols: ReadSymbols | undefined = (() => {
  const generator = (): Buffer => headRead
  const callback = (): boolean => true
  const probe = new Socket({ onread: { buffer: generator, callback } } as ConstructorParameters<typeof Socket>[0])
  const own = probe as unknown as Record<symbol, unknown>
  const find = (description: string, value: unknown): symbol | undefined =>
    Object.getOwnPropertySymbols(probe).find((s) => s.description === description && (value === undefined || own[s] === value))
  const found = { buffer: find('kBuffer', true), generator: find('kBufferGen', generator), callback: find('kBufferCb', callback) }
  probe.destroy()
  return found.buffer !== undefined && found.generator !== undefined && found.callback !== undefined ? (found as ReadSymbols) : undefined
})()

interface TcpHandle {
  useUserBuffer?: unknown
  reading?: unknown
}

/**
 * Make `accepted` (from a server that accepts paused) read into the shared buffer and hand
 * every read to the reader `readerOf()` returns (asked at each read; reading starts on a
 * later turn, by when the reader exists). The socket gets the state Node's constructor gives
 * a socket made with `onread` (see readSymbols), so its own pause / resume and every read
 * work as for such a socket; no second socket object per connection. False when that cannot
 * be done (not a TCP handle, or a Node without those internals): `accepted` is left as it
 * was, still paused, for 'data' events.
 */
export function readIntoSharedBuffer(accepted: Socket, readerOf: () => SharedReader | undefined): boolean {
  const handle = (accepted as unknown as { _handle: TcpHandle | null })._handle
  if (readSymbols === undefined || handle == null || typeof handle.useUserBuffer !== 'function' || handle.reading !== false || accepted.destroyed) return false
  // Asked before the reader exists, then after every read.
  const generator = (): Buffer => (readerOf()?.largeReads === true ? shared : headRead)
  const first = generator()
  const state = accepted as unknown as Record<symbol, unknown>
  state[readSymbols.buffer] = first
  state[readSymbols.generator] = generator
  state[readSymbols.callback] = (n: number, buf: Uint8Array): boolean => readerOf()?.onRead((buf as Buffer).subarray(0, n)) ?? false
  ;(handle.useUserBuffer as (buf: Uint8Array) => void).call(handle, first)
  // What the constructor's read(0) does for a socket made with `onread`: start the handle.
  accepted.resume()
  return true
}
