/**
 * The replica server (SPEC section 2): a tiny node:http server.
 *   GET /home      -> 200 {"message": "Hello from Server: <ID>", "status": "successful"}
 *   GET /heartbeat -> 200, empty body
 *   anything else  -> 404 (the balancer turns it into its own error)
 * Env: PORT (default 5000; 0 picks a free port), HOST (default all interfaces),
 * SERVER_ID (default: the machine's hostname).
 * When started with an IPC channel (a child of the process provider) it sends
 * {type: 'listening', port} once bound, so the parent never has to guess a free port.
 */
import { createServer } from 'node:http'
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
    res.writeHead(404, notFoundHeaders)
    res.end(req.method === 'HEAD' ? undefined : notFoundBody)
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
