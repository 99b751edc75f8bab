/**
 * The clock of the stall rescue (pool.ts, top of the file): connections with pipelined
 * requests queued are checked every STALL_CHECK_MS. One timer for all the pools that share
 * this watch (one per app, created in app.ts and passed in), running only while something is
 * queued.
 */

/** What the watch asks of a connection it watches. */
export interface StallWatched {
  /** Check the oldest waiting request; returns false when nothing waits any more (stop watching). */
  checkStall(now: number): boolean
}

/** How often connections with queued requests are checked for stalls. */
const STALL_CHECK_MS = 10

export class StallWatch {
  private readonly watched = new Set<StallWatched>()
  private timer: NodeJS.Timeout | undefined

  watch(conn: StallWatched): void {
    this.watched.add(conn)
    if (this.timer !== undefined) return
    this.timer = setInterval(this.check, STALL_CHECK_MS)
    this.timer.unref()
  }

  get size(): number {
    return this.watched.size
  }

  private readonly check = (): void => {
    const now = Date.now()
    for (const conn of this.watched) if (!conn.checkStall(now)) this.watched.delete(conn)
    if (this.watched.size === 0 && this.timer !== undefined) {
      clearInterval(this.timer)
      this.timer = undefined
    }
  }
}
