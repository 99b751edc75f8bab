/**
 * The attempt loop: the one place where a request — HTTP on either front, an upgrade, a TCP
 * connection — is given a replica, sent, and, when that fails, counted against the replica
 * and either moved on to the next distinct replica clockwise or answered with the SPEC's
 * error. As caddy's proxy loop (select, round trip, count the failure, decide from the
 * error's type) and undici's retry handler, the loop knows nothing of how a request travels:
 * each kind brings a Trip (an adapter object, not a subclass) that sends it one way and
 * answers its client the other. The decision itself is the retry policy (retry.ts).
 */
import { BalancerError } from '../errors.js'
import type { RingView } from '../ring/ring.js'
import type { Upstream } from '../upstream/upstream.js'
import type { UpstreamError } from '../upstream/errors.js'
import { giveUpAnswer, mayRetry, type RetryFacts } from './retry.js'
import type { RequestObserver } from '../observe/request-observer.js'

/** One request's way to a replica and back, for one kind of request. */
export interface Trip extends RetryFacts {
  /** The request's place on the ring (its key). */
  readonly id: number
  /** Replicas that failed it so far (the loop keeps it; undefined until the first failure). */
  tried: Upstream[] | undefined
  /** Try the request on `upstream`; a failure comes back through `AttemptLoop.failed`. */
  send(upstream: Upstream): void
  /** No replica will take it: answer the client with `err` (the SPEC's 503, 502 or 504). */
  giveUp(err: BalancerError): void
}

export interface RouteOptions {
  /** The ring, read-only: failover walks it clockwise. */
  ring: RingView<Upstream>
  /** The first choice for a request id (bounded loads, bounded.ts); default `ring.pick`. */
  choose?: (id: number) => Upstream | undefined
  /** ms a replica may take to answer (the 504's message says it). */
  upstreamTimeoutMs: number
  /** Told when a failure says the replica is at fault (passive health detection). */
  onUpstreamFailure?: (upstream: Upstream, err: UpstreamError) => void
  /** Counts and logs each request once answered (metrics, access log; src/observe/). */
  observer?: RequestObserver | undefined
}

/** Built once per kind of request (app.ts); holds no per-request state. */
export class AttemptLoop {
  readonly ring: RingView<Upstream>
  readonly upstreamTimeoutMs: number
  private readonly choose: (id: number) => Upstream | undefined
  private readonly onUpstreamFailure: ((upstream: Upstream, err: UpstreamError) => void) | undefined
  /** Where trips report their finished requests (undefined: metrics and access log off). */
  readonly observer: RequestObserver | undefined

  constructor(options: RouteOptions) {
    const ring = options.ring
    this.ring = ring
    this.choose = options.choose ?? ((id) => ring.pick(id))
    this.upstreamTimeoutMs = options.upstreamTimeoutMs
    this.onUpstreamFailure = options.onUpstreamFailure
    this.observer = options.observer
  }

  /** Select the first replica and send; the SPEC's 503 when the ring is empty. */
  start(trip: Trip): void {
    const first = this.choose(trip.id)
    if (first === undefined) trip.giveUp(new BalancerError('NO_REPLICAS'))
    else trip.send(first)
  }

  /** Count a failure against its replica, when it says something about the replica. */
  report(upstream: Upstream, err: UpstreamError): void {
    upstream.stats?.failed(err.code)
    if (err.replicaFault) this.onUpstreamFailure?.(upstream, err)
  }

  /**
   * A try on `upstream` failed before any answer reached the client: count it, then send the
   * request to the next untried replica if the policy allows, else give up with 502 or 504.
   */
  failed(trip: Trip, upstream: Upstream, err: UpstreamError): void {
    this.report(upstream, err)
    if (mayRetry(err, trip)) {
      const tried = (trip.tried ??= [])
      tried.push(upstream)
      const next = this.ring.next(trip.id, (u) => !tried.includes(u))
      if (next !== undefined) {
        if (upstream.stats !== undefined) upstream.stats.retries++
        trip.send(next)
        return
      }
    }
    trip.giveUp(giveUpAnswer(upstream.name, err, this.upstreamTimeoutMs))
  }
}
