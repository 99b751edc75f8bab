/**
 * Write batching under load. Each write to a replica wakes that replica, and on a machine
 * with fewer cores than busy processes the woken process often preempts the balancer at once:
 * about one context switch per request. With many requests in flight, request heads are
 * instead held and written together at the end of the event-loop turn (setImmediate, after
 * every ready socket was read), one string per connection, and the route layer does the same
 * with its small answers (src/route/attempt.ts): measured at 100 connections, about 10 % more
 * requests per second and less CPU per request. With few in flight it would only serialise
 * work that otherwise overlaps, so below the threshold every write goes out at once.
 *
 * One batcher is shared by every pool of an app (created in app.ts and passed in), so "in
 * flight" counts the whole process's upstream requests, as the batching rule needs; a pool
 * built alone (a test) gets one of its own.
 */

/** More requests in flight than this: writes wait for the end of the turn. */
export const BATCH_ABOVE = 32

/** Work held for the end of this event-loop turn (no closure per request). */
export interface TurnEndTask {
  runAtTurnEnd(): void
}

export class WriteBatcher {
  /** Requests in flight on all upstream connections that share this batcher. */
  busy = 0
  /** Counts the end-of-turn flushes: requests started under the same value share a turn. */
  turn = 0
  /** Connections holding request heads for the end of this turn, then other held work. */
  private readonly holding: TurnEndTask[] = []
  private readonly deferred: TurnEndTask[] = []
  private scheduled = false

  /** Many requests in flight: worth holding writes until the end of this event-loop turn. */
  batching(): boolean {
    return this.busy > BATCH_ABOVE
  }

  /** A connection now holds request bytes: write them at the end of this turn, before other tasks. */
  hold(conn: TurnEndTask): void {
    this.holding.push(conn)
    this.schedule()
  }

  /** Run `task` at the end of this event-loop turn, after the held request writes. */
  atTurnEnd(task: TurnEndTask): void {
    this.deferred.push(task)
    this.schedule()
  }

  private schedule(): void {
    if (this.scheduled) return
    this.scheduled = true
    setImmediate(this.flush)
  }

  private readonly flush = (): void => {
    this.scheduled = false
    this.turn++
    if (this.holding.length > 0) {
      const conns = this.holding.splice(0)
      for (const conn of conns) conn.runAtTurnEnd()
    }
    if (this.deferred.length > 0) {
      const tasks = this.deferred.splice(0)
      for (const task of tasks) task.runAtTurnEnd()
    }
  }
}
