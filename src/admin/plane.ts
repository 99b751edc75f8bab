/**
 * The admin plane as the app starts it: one route table, the part of it the main port serves,
 * and the admin listener (--admin-port, default 5050 on 127.0.0.1, `off` to disable) serving
 * all of it. /healthz and pages added to `routes` later (metrics, dashboard) are served on the
 * admin listener only, never on the proxied port: there every other path belongs to the
 * replicas.
 */
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { pathOf } from '../route/keys.js'
import { createAdmin, healthRoute, membershipRoutes, notFound, type Admin, type AdminRoutes, type MembershipControl } from './api.js'
import type { AuditSink } from './audit.js'
import type { AdminConfig } from './options.js'

/** What the main port serves of the admin routes (with --admin-on-main=false: /rep only). */
export const MAIN_PATHS = ['/rep', '/add', '/rm'] as const

export interface AdminPlane {
  /** The handler for the main port. */
  readonly main: Admin
  /** Every admin route (the admin listener serves all of them, including ones added later). */
  readonly routes: AdminRoutes
  /** The admin listener, not yet listening (the app listens); undefined with --admin-port off. */
  readonly server: Server | undefined
  /** `http://host:port` of the listening admin listener (the bound port when --admin-port 0). */
  url(): string | undefined
  /** Stop accepting and close idle connections; resolves once every connection is gone. */
  close(): Promise<void>
  /** Close the connections still open (after the balancer drained). */
  closeAll(): void
}

export interface AdminPlaneOptions {
  readonly balancer: MembershipControl
  readonly config: AdminConfig
  readonly maxBodyBytes: number
  readonly audit: AuditSink
  /** The app is shutting down (/healthz says 503). */
  readonly closing: () => boolean
}

export function createAdminPlane(options: AdminPlaneOptions): AdminPlane {
  const { balancer, config } = options
  const routes = membershipRoutes(balancer, { maxBodyBytes: options.maxBodyBytes, bodyTimeoutMs: config.bodyTimeoutMs })
  routes.set('/healthz', healthRoute(balancer, options.closing))
  const membership = () => balancer.membership()
  const common = { policy: config, audit: options.audit, membership }

  const mainPaths: readonly string[] = config.onMain ? MAIN_PATHS : ['/rep']
  const mainRoutes = new Map([...routes].filter(([path]) => mainPaths.includes(path)))
  const main = createAdmin(mainRoutes, { ...common, listener: 'main' })

  let server: Server | undefined
  if (config.port !== undefined) {
    const admin = createAdmin(routes, { ...common, listener: 'admin' })
    server = createServer((req, res) => {
      const path = pathOf(req.url ?? '/')
      if (!admin(req, res, path)) {
        req.resume()
        notFound(res, path, routes)
      }
    })
  }
  return {
    main,
    routes,
    server,
    url() {
      if (!server?.listening) return undefined
      const { port } = server.address() as AddressInfo
      const host = config.host === '0.0.0.0' || config.host === '::' ? '127.0.0.1' : config.host
      return `http://${host.includes(':') ? `[${host}]` : host}:${port}`
    },
    close() {
      const closing = server
      if (closing === undefined || !closing.listening) return Promise.resolve()
      const closed = new Promise<void>((resolve) => closing.close(() => resolve()))
      closing.closeIdleConnections()
      return closed
    },
    closeAll() {
      server?.closeAllConnections()
    },
  }
}
