/**
 * The request path's one hook into observability: told once per client request when its
 * answer is complete or aborted, it counts the answer on the replica's ReplicaStats and
 * writes the access-log line. With metrics and the access log both off there is no observer
 * and the request path skips even the clock reads.
 */
import type { Metrics } from './metrics.js'
import type { ReplicaStats } from './replica-stats.js'
import type { AccessLog } from './access-log.js'
import { DOWNSTREAM_PROTOCOL_ERROR } from './flags.js'

/** What the access log reads of a client request (node:http's IncomingMessage, the fast front's request). */
export interface LoggedRequest {
  readonly method?: string | undefined
  readonly url?: string | undefined
  readonly httpVersion?: string | undefined
  readonly headers?: { readonly [name: string]: string | string[] | undefined } | undefined
  readonly socket: { readonly remoteAddress?: string | undefined }
}

/** One finished request, as the request path reports it (an Exchange implements this, no object per request). */
export interface FinishedRequest {
  readonly incoming: LoggedRequest
  /** The status the client got (499: it left before any answer). */
  readonly status: number
  /** performance.now() when the request arrived. */
  readonly startedAt: number
  /** ms from the last attempt's send to the replica's head; -1 when no head came. */
  readonly upstreamMs: number
  /** Request body bytes read from the client, response body bytes written to it. */
  readonly bytesIn: number
  readonly bytesOut: number
  /** Envoy-style termination flag (flags.ts). */
  readonly flag: string
  /** The replica of the last attempt, if any. */
  readonly replicaName: string | undefined
}

export class RequestObserver {
  constructor(
    readonly metrics: Metrics | undefined,
    readonly log: AccessLog | undefined,
  ) {}

  /** A replica's answer (or a client's abort while at a replica) is complete: count it on `stats`. */
  relayed(r: FinishedRequest, stats: ReplicaStats | undefined): void {
    const ms = performance.now() - r.startedAt
    stats?.answered(r.status, ms)
    this.log?.request(r, ms)
  }

  /** The balancer answered itself (no replica's answer was relayed): count by exact status. */
  local(r: FinishedRequest): void {
    this.metrics?.answeredByBalancer(r.status)
    this.log?.request(r, performance.now() - r.startedAt)
  }

  /**
   * For answers written outside an exchange (the 503 with no replicas, the edge's 4xx and
   * 408s): count `status` in ring_balancer_local_responses_total and log it for `req`, which
   * arrived at `startedAt` (performance.now()). With no parsed request (a malformed head),
   * pass `{ socket }`: the log then shows the client address and `-` for the rest.
   */
  answeredByBalancer(status: number, req: LoggedRequest, flag: string = DOWNSTREAM_PROTOCOL_ERROR, bytesOut = 0, startedAt = performance.now()): void {
    this.local({ incoming: req, status, startedAt, upstreamMs: -1, bytesIn: 0, bytesOut, flag, replicaName: undefined })
  }
}
