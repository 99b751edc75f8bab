/**
 * Wiring: config -> provider -> balancer (ring + membership) -> HTTP front (admin + proxy).
 * `startApp` is what `main` runs and what the end-to-end tests start on port 0.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { Config } from './config.js'
import { Balancer } from './balancer.js'
import { createAdmin } from './admin/api.js'
import { createProxy } from './proxy/http.js'
import { keyExtractor, pathOf } from './keys.js'
import { createProvider } from './replicas/index.js'
import type { ReplicaProvider } from './replicas/provider.js'

export interface App {
  readonly config: Config
  readonly balancer: Balancer
  readonly server: Server
  /** `http://host:port` of the front, with a loopback host when listening on all interfaces. */
  readonly url: string
  /** Stop accepting, drain, stop every replica. Safe to call twice. */
  close(): Promise<void>
}

export interface StartOptions {
  /** Use this provider instead of the one the config names (tests). */
  provider?: ReplicaProvider
  log?: (line: string) => void
}

export async function startApp(config: Config, options: StartOptions = {}): Promise<App> {
  const log = options.log ?? (config.quiet ? () => {} : (line: string) => console.log(line))
  const provider = options.provider ?? (await createProvider(config))
  const balancer = new Balancer(config, provider)
  balancer.on('joined', (u) => log(`replica ${u.name} joined (${u.host}:${u.port})`))
  balancer.on('left', (name, reason) => log(`replica ${name} left (${reason})`))
  balancer.on('error', (err) => console.error(`balancer: ${err.message}`))
  provider.onExit((name) => {
    log(`replica ${name} exited on its own; replacing it`)
    balancer.replace(name).catch((err: Error) => console.error(`replacing ${name} failed: ${err.message}`))
  })

  try {
    await balancer.start()
  } catch (err) {
    await balancer.close().catch(() => {})
    throw err
  }

  const admin = createAdmin(balancer, config.maxBodyBytes)
  const proxy = createProxy({ ring: balancer.ring, keyOf: keyExtractor(config.key, config.slots), upstreamTimeoutMs: config.upstreamTimeoutMs })
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    if (!admin(req, res, pathOf(req.url ?? '/'))) proxy(req, res)
  })
  // Clients (autocannon, browsers) keep connections open between requests; close idle ones
  // after 65 s, longer than common client pools, so the client closes first.
  server.keepAliveTimeout = 65_000
  server.headersTimeout = 66_000

  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(config.port, config.host, () => {
        server.off('error', reject)
        resolve()
      })
    })
  } catch (err) {
    await balancer.close().catch(() => {})
    throw err
  }
  const { port } = server.address() as AddressInfo
  const host = config.host === '0.0.0.0' || config.host === '::' ? '127.0.0.1' : config.host
  const url = `http://${host.includes(':') ? `[${host}]` : host}:${port}`

  let closing: Promise<void> | undefined
  const close = (): Promise<void> =>
    (closing ??= (async () => {
      const serverClosed = new Promise<void>((resolve) => server.close(() => resolve()))
      server.closeIdleConnections()
      await balancer.close()
      server.closeAllConnections()
      await serverClosed
    })())

  return { config, balancer, server, url, close }
}
