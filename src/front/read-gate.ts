/**
 * Stop and restart reading a client socket at once. `socket.pause()` alone only stops the
 * stream's 'data' events: libuv goes on reading, and the next read (up to 64 KiB) lands in
 * the stream's buffer before Node stops the handle. For a client that pipelines requests and
 * never reads the answers, that extra read per connection was most of what it cost (README:
 * Limits and hardening). So the edge also stops the handle itself, exactly as Node's own
 * `pause()` and `resume()` do for sockets created with the `onread` option (lib/net.js): the
 * handle's `reading` flag and its `readStop()` / `readStart()`. The stream's own `_read` is
 * held off meanwhile: after every chunk the stream asks for more on the next tick
 * (maybeReadMore, even while paused), and `_read` would start the handle again. The bytes stay
 * in the kernel and TCP flow control holds the client. Without a handle (a socket that is not
 * a TCP one) this is plain pause / resume.
 */
import { Socket } from 'node:net'

interface StreamHandle {
  reading: boolean
  readStop(): number
  readStart(): number
}

function handleOf(socket: Socket): StreamHandle | undefined {
  const h = (socket as unknown as { _handle?: Partial<StreamHandle> | null })._handle
  return h != null && typeof h.readStop === 'function' && typeof h.readStart === 'function' && typeof h.reading === 'boolean' ? (h as StreamHandle) : undefined
}

const STOPPED = Symbol('stopped reading')
interface Gated {
  [STOPPED]?: boolean
  _read(n: number): void
}

/** The socket's `_read` while it may be stopped: nothing while stopped (startReading restarts the handle). */
function gatedRead(this: Socket & Gated, n: number): void {
  if (this[STOPPED] !== true) Socket.prototype._read.call(this, n)
}

/** Read nothing more from `socket` until `startReading`. */
export function stopReading(socket: Socket): void {
  socket.pause()
  const gated = socket as Socket & Gated
  if (gated[STOPPED] === undefined) gated._read = gatedRead
  gated[STOPPED] = true
  const h = handleOf(socket)
  if (h !== undefined && h.reading && !socket.destroyed) {
    h.reading = false
    if (h.readStop() !== 0) socket.destroy()
  }
}

/** Read again (and deliver 'data'): undoes `stopReading` and `pause`. */
export function startReading(socket: Socket): void {
  restoreHandle(socket)
  socket.resume()
}

/**
 * Let the handle read again but keep the stream paused: the state Node expects when a socket
 * changes hands (an upgrade handler takes it), so its own pause / resume work as usual.
 */
export function restoreHandle(socket: Socket): void {
  const gated = socket as Socket & Gated
  if (gated[STOPPED] === true) gated[STOPPED] = false
  const h = handleOf(socket)
  if (h !== undefined && !h.reading && !socket.destroyed && !socket.connecting) {
    h.reading = true
    if (h.readStart() !== 0) socket.destroy()
  }
}
