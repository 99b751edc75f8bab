/**
 * The replica server (SPEC section 2): a tiny node:http server.
 *   GET /home      -> 200 {"message": "Hello from Server: <ID>", "status": "successful"}
 *   GET /heartbeat -> 200, empty body
 *   a known path with another method -> 405 with `Allow` (OPTIONS: 204 with `Allow`); the
 *   balancer relays it as it is
 *   any other path -> 404 (the balancer turns it into its own error)
 *   GET /ws with `Upgrade: websocket` -> a WebSocket echo session, so upgrades through the
 *   balancer can be tried on real replicas (other upgrade requests get the plain answer)
 * Env: PORT (default 5000; 0 picks a free port), HOST (default all interfaces),
 * SERVER_ID (default: the machine's hostname).
 * When started with an IPC channel (a child of the process provider) it sends
 * {type: 'listening', port} once bound, so the parent never has to guess a free port.
 */
import { createServer, STATUS_CODES, type IncomingMessage } from 'node:http'
import { createHash } from 'node:crypto'
import type { Socket } from 'node:net'
import { hostname } from 'node:os'

const port = Number(process.env.PORT ?? 5000)
const host = process.env.HOST || undefined
const serverId = process.env.SERVER_ID || hostname()

if (!Number.isInteger(port) || port < 0 || port > 65535) {
  console.error(`replica: PORT must be an integer from 0 to 65535, got ${JSON.stringify(process.env.PORT)}`)
  process.exit(2)
}

// Built once: the answer never changes for the life of the process.
const homeBody = Buffer.from(JSON.stringify({ message: `Hello from Server: ${serverId}`, status: 'successful' }))
const homeHeaders = { 'content-type': 'application/json', 'content-length': String(homeBody.length) }
const notFoundBody = Buffer.from(JSON.stringify({ message: 'Not Found', status: 'failure' }))
const notFoundHeaders = { 'content-type': 'application/json', 'content-length': String(notFoundBody.length) }

/** The methods each path serves (HEAD with every GET); a path not listed is a 404. */
const ALLOWED: ReadonlyMap<string, string> = new Map([
  ['/home', 'GET, HEAD, OPTIONS'],
  ['/heartbeat', 'GET, HEAD, OPTIONS'],
  ['/ws', 'GET, OPTIONS'],
])

/** The answer to a known path asked with a method it does not serve, as a status, head fields and body. */
function notAllowed(method: string, path: string, allow: string): Answer {
  if (method === 'OPTIONS') return { status: 204, headers: { allow }, body: Buffer.alloc(0) }
  const body = Buffer.from(JSON.stringify({ message: `Method ${method} not allowed on ${path}; use ${allow}`, status: 'failure' }))
  return { status: 405, headers: { allow, 'content-type': 'application/json', 'content-length': String(body.length) }, body }
}

/** GET /ws without `Upgrade: websocket`: 426, saying which upgrade it takes. */
const upgradeBody = Buffer.from(JSON.stringify({ message: '/ws is a WebSocket endpoint: send Upgrade: websocket', status: 'failure' }))
const upgradeHeaders = { upgrade: 'websocket', connection: 'Upgrade', 'content-type': 'application/json', 'content-length': String(upgradeBody.length) }

interface Answer {
  status: number
  headers: Record<string, string>
  body: Buffer
}

/** Every answer but GET/HEAD of /home and /heartbeat (the hot paths, answered inline). */
function otherAnswer(method: string, path: string): Answer {
  const get = method === 'GET' || method === 'HEAD'
  if (get && path === '/home') return { status: 200, headers: homeHeaders, body: homeBody }
  if (get && path === '/heartbeat') return { status: 200, headers: { 'content-length': '0' }, body: Buffer.alloc(0) }
  if (get && path === '/ws') return { status: 426, headers: upgradeHeaders, body: upgradeBody }
  const allow = ALLOWED.get(path)
  if (allow !== undefined) return notAllowed(method, path, allow)
  return { status: 404, headers: notFoundHeaders, body: notFoundBody }
}

const server = createServer((req, res) => {
  const url = req.url ?? '/'
  const q = url.indexOf('?')
  const path = q === -1 ? url : url.slice(0, q)
  // Drain any request body so the keep-alive connection stays usable.
  req.resume()
  if (path === '/home' && (req.method === 'GET' || req.method === 'HEAD')) {
    res.writeHead(200, homeHeaders)
    res.end(req.method === 'HEAD' ? undefined : homeBody)
  } else if (path === '/heartbeat' && (req.method === 'GET' || req.method === 'HEAD')) {
    res.writeHead(200, { 'content-length': '0' })
    res.end()
  } else {
    const answer = otherAnswer(req.method ?? 'GET', path)
    res.writeHead(answer.status, answer.headers)
    res.end(req.method === 'HEAD' ? undefined : answer.body)
  }
})
// Keep idle keep-alive connections longer than the balancer's pool keeps them, so the
// balancer (not the replica) is the side that closes idle sockets: no reuse-after-close race.
server.keepAliveTimeout = 65_000
server.headersTimeout = 66_000

server.listen(port, host, () => {
  const address = server.address()
  const bound = typeof address === 'object' && address ? address.port : port
  console.log(`replica ${serverId} listening on ${host ?? '*'}:${bound}`)
  process.send?.({ type: 'listening', port: bound })
})

const stop = (): void => {
  server.close(() => process.exit(0))
  server.closeAllConnections()
  // Never hang on shutdown.
  setTimeout(() => process.exit(0), 2000).unref()
}
process.on('SIGTERM', stop)
process.on('SIGINT', stop)
// A child of the process provider ends with its parent, even if the parent is SIGKILLed.
process.on('disconnect', stop)

// ---- WebSocket echo (RFC 6455) on GET /ws: data frames come back as they came (same FIN bit
// and opcode, unmasked), ping -> pong, close -> close and the end of the connection.
const WS_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11'
const WS_MAX_FRAME = 16 * 1024 * 1024

server.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) => {
  socket.on('error', () => socket.destroy())
  const url = req.url ?? '/'
  const q = url.indexOf('?')
  const path = q === -1 ? url : url.slice(0, q)
  const key = req.headers['sec-websocket-key']
  if (path !== '/ws' || req.method !== 'GET' || (req.headers.upgrade ?? '').toLowerCase() !== 'websocket' || typeof key !== 'string') {
    // Not ours to upgrade: the answer the request would get without its Upgrade header.
    const a = otherAnswer(req.method ?? 'GET', path)
    let headText = `HTTP/1.1 ${a.status} ${STATUS_CODES[a.status]}\r\n`
    for (const [name, value] of Object.entries(a.headers)) if (name !== 'connection') headText += `${name}: ${value}\r\n`
    headText += 'connection: close\r\n\r\n'
    socket.end(req.method === 'HEAD' ? headText : Buffer.concat([Buffer.from(headText), a.body]))
    return
  }
  const accept = createHash('sha1').update(key + WS_GUID).digest('base64')
  socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`)
  socket.setNoDelay(true)
  let buf: Buffer = Buffer.alloc(0)
  const onData = (chunk: Buffer): void => {
    buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk])
    for (;;) {
      if (buf.length < 2) return
      const b0 = buf[0]!
      let len = buf[1]! & 0x7f
      let at = 2
      if (len === 126) {
        if (buf.length < 4) return
        len = buf.readUInt16BE(2)
        at = 4
      } else if (len === 127) {
        if (buf.length < 10) return
        len = Number(buf.readBigUInt64BE(2))
        at = 10
      }
      if (len > WS_MAX_FRAME) {
        socket.off('data', onData)
        socket.end(Buffer.from([0x88, 2, 0x03, 0xf1])) // close, 1009: message too big
        return
      }
      const maskAt = at
      if (buf[1]! & 0x80) at += 4
      if (buf.length < at + len) return
      const frame = Buffer.allocUnsafe((len < 126 ? 2 : len < 65536 ? 4 : 10) + len)
      let o = 2
      if (len < 126) frame[1] = len
      else if (len < 65536) {
        frame[1] = 126
        frame.writeUInt16BE(len, 2)
        o = 4
      } else {
        frame[1] = 127
        frame.writeBigUInt64BE(BigInt(len), 2)
        o = 10
      }
      if (at > maskAt) for (let i = 0; i < len; i++) frame[o + i] = buf[at + i]! ^ buf[maskAt + (i & 3)]!
      else buf.copy(frame, o, at, at + len)
      buf = buf.subarray(at + len)
      const opcode = b0 & 0x0f
      if (opcode === 0x8) {
        frame[0] = 0x88
        socket.off('data', onData)
        socket.end(frame)
        return
      }
      frame[0] = opcode === 0x9 ? 0x8a : b0 & 0x8f // ping -> pong; data frames as they came
      if (opcode <= 0x2 || opcode === 0x9) socket.write(frame)
    }
  }
  socket.on('data', onData)
  socket.on('end', () => socket.end())
  if (head.length > 0) onData(head)
})
