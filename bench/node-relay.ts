/**
 * The Node floor of the cost bench (bench/cost.ts): the least any proxy written on Node's net
 * sockets can cost per request on this machine. One upstream connection per client connection
 * to one replica, bytes piped both ways unread (no parsing, no routing, no metrics). What the
 * balancer costs above this row is its own work; what this row costs above nginx and HAProxy
 * is Node's: libuv, the stream machinery and a JS call per read and write.
 *
 *   node dist/bench/node-relay.js HOST PORT   (reports {type: 'ready', port} over IPC)
 */
import { connect, createServer } from 'node:net'

const [host, portText] = process.argv.slice(2)
const upstreamPort = Number(portText)
if (!host || !Number.isInteger(upstreamPort)) {
  console.error('usage: node-relay.js HOST PORT')
  process.exit(2)
}

const server = createServer({ noDelay: true }, (client) => {
  const upstream = connect({ host, port: upstreamPort, noDelay: true })
  client.pipe(upstream)
  upstream.pipe(client)
  client.on('error', () => upstream.destroy())
  upstream.on('error', () => client.destroy())
  client.on('close', () => upstream.destroy())
  upstream.on('close', () => client.destroy())
})
server.listen(0, '127.0.0.1', () => {
  const address = server.address()
  process.send?.({ type: 'ready', port: typeof address === 'object' && address !== null ? address.port : 0 })
})
process.on('disconnect', () => process.exit(0))
