/**
 * Everything the admin listener serves about the running balancer, built from the config:
 * the metrics registry, the 1-s sampler, the event log, the access log, the request
 * observer the request path reports to, and the handler for GET /metrics, /stats and
 * /dashboard. `--metrics=false` leaves out the counting (the pages then answer 404);
 * `--access-log off` (the default) the log.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Server } from 'node:net'
import type { Config } from '../config.js'
import { Metrics, type ListenerName, type ObservedMember } from './metrics.js'
import { Sampler } from './sampler.js'
import { EventLog, type EventSource } from './events.js'
import { AccessLog } from './access-log.js'
import { RequestObserver } from './request-observer.js'
import { buildStats, type StatsSource } from './stats.js'
import { CONTENT_TYPE } from './exposition.js'
import { DASHBOARD_HEADERS, DASHBOARD_HTML } from './dashboard-page.js'

export const OBSERVE_PATHS: readonly string[] = ['/metrics', '/stats', '/dashboard']

export interface Observability {
  readonly metrics: Metrics | undefined
  readonly sampler: Sampler | undefined
  readonly events: EventLog
  readonly accessLog: AccessLog | undefined
  /** What the request path reports to (undefined when metrics and access log are both off). */
  readonly observer: RequestObserver | undefined
  /** Report a listener's open connections in /metrics. */
  watchListener(name: ListenerName, server: Server): void
  /** Answers GET/HEAD /metrics, /stats, /dashboard; false for any other path (not handled). */
  handle(req: IncomingMessage, res: ServerResponse, path: string): boolean
  /** The same pages as admin routes (path -> methods and handler), for the admin listener's table. */
  routes(): Array<[string, { readonly methods: readonly string[]; handle(req: IncomingMessage, res: ServerResponse): void }]>
  close(): Promise<void>
}

/** Create before the balancer starts, so its first replicas are counted. */
export function createObservability(config: Pick<Config, 'metrics' | 'accessLog' | 'accessLogFile'>, balancer: StatsSource & EventSource<ObservedMember>): Observability {
  const metrics = config.metrics ? new Metrics(balancer) : undefined
  const sampler = metrics ? new Sampler(metrics) : undefined
  sampler?.start()
  const events = new EventLog()
  events.listen(balancer)
  const accessLog = config.accessLog === 'off' ? undefined : new AccessLog({ format: config.accessLog, sink: config.accessLogFile })
  const observer = metrics || accessLog ? new RequestObserver(metrics, accessLog) : undefined

  const handle = (req: IncomingMessage, res: ServerResponse, path: string): boolean => {
    if (!OBSERVE_PATHS.includes(path)) return false
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      send(res, 405, { 'content-type': 'application/json', allow: 'GET, HEAD' }, JSON.stringify({ message: `<Error> Method ${req.method} not allowed on ${path}; use GET`, status: 'failure' }))
      return true
    }
    if (metrics === undefined || sampler === undefined) {
      send(res, 404, { 'content-type': 'application/json' }, JSON.stringify({ message: '<Error> Metrics are off (--metrics=false)', status: 'failure' }))
      return true
    }
    if (path === '/metrics') {
      metrics.render().then(
        (text) => send(res, 200, { 'content-type': CONTENT_TYPE }, text),
        (err: Error) => send(res, 500, { 'content-type': 'application/json' }, JSON.stringify({ message: `<Error> Internal error: ${err.message}`, status: 'failure' })),
      )
    } else if (path === '/stats') {
      send(res, 200, { 'content-type': 'application/json', 'cache-control': 'no-store' }, JSON.stringify(buildStats(balancer, metrics, sampler, events)))
    } else {
      send(res, 200, DASHBOARD_HEADERS, DASHBOARD_HTML)
    }
    return true
  }

  return {
    metrics,
    sampler,
    events,
    accessLog,
    observer,
    watchListener(name, server) {
      metrics?.openConnections(name, () => new Promise<number>((resolve) => server.getConnections((err, n) => resolve(err ? 0 : n))))
    },
    handle,
    routes() {
      return OBSERVE_PATHS.map((path) => [path, { methods: ['GET', 'HEAD'], handle: (req: IncomingMessage, res: ServerResponse) => void handle(req, res, path) }])
    },
    async close() {
      sampler?.stop()
      await accessLog?.close()
    },
  }
}

function send(res: ServerResponse, status: number, headers: Readonly<Record<string, string>>, body: string): void {
  if (res.headersSent || res.destroyed) return
  const data = Buffer.from(body)
  res.writeHead(status, { ...headers, 'content-length': String(data.length) })
  res.end(res.req?.method === 'HEAD' ? undefined : data)
}
