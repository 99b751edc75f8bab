/**
 * One replica as the proxy sees it: its address, its own keep-alive connection pool, and the
 * count of requests in flight (for draining and, later, bounded loads). The ring stores these
 * as its member payload, so a lookup hands the proxy the pool directly.
 */
import { ConnectionPool, type PoolOptions } from './pool.js'
import type { ReplicaHandle } from '../replicas/provider.js'
import type { ReplicaStats } from '../observe/replica-stats.js'

export class Upstream {
  readonly name: string
  readonly host: string
  readonly port: number
  /** Keep-alive connections to this replica (pool.ts). */
  readonly pool: ConnectionPool
  /** Requests sent and not yet finished. */
  inflight = 0
  /** Its counters while metrics are on and it is a member (src/observe/metrics.ts). */
  stats: ReplicaStats | undefined = undefined
  private idleWaiters: Array<() => void> = []

  /**
   * @param pool how requests may share a connection to it (default: they never do), and the
   *   app's write batcher and stall clock (pool.ts); limits and timeouts default to
   *   POOL_DEFAULTS (defaults.ts: at most 512 connections, 256 idle, idle ones closed after
   *   30 s, before the replica's own 65 s keep-alive timeout, so we do not send on a socket
   *   the replica is closing).
   */
  constructor(handle: ReplicaHandle, pool: PoolOptions = {}) {
    this.name = handle.name
    this.host = handle.host
    this.port = handle.port
    this.pool = new ConnectionPool(handle.host, handle.port, pool)
  }

  begin(): void {
    this.inflight++
  }

  end(): void {
    this.inflight--
    if (this.inflight === 0 && this.idleWaiters.length > 0) {
      const waiters = this.idleWaiters
      this.idleWaiters = []
      for (const w of waiters) w()
    }
  }

  /** Resolves true once nothing is in flight, or false when `timeoutMs` passes first. */
  waitIdle(timeoutMs: number): Promise<boolean> {
    if (this.inflight === 0) return Promise.resolve(true)
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.idleWaiters = this.idleWaiters.filter((w) => w !== done)
        resolve(false)
      }, timeoutMs)
      const done = (): void => {
        clearTimeout(timer)
        resolve(true)
      }
      this.idleWaiters.push(done)
    })
  }

  /**
   * Close every pooled connection (after draining), including busy ones: requests still in
   * flight fail with ECONNRESET, and the proxy retries those it safely can elsewhere.
   */
  close(): void {
    this.pool.close()
  }
}
