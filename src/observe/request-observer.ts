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
import type { FinishedRequest, LoggedRequest } from './finished.js'

export type { FinishedRequest, LoggedRequest } from './finished.js'

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
