/**
 * The requests pipelined on one connection behind the one being answered: already written,
 * answered by the replica in this order. A request whose client went away keeps its place
 * (its answer must still be read off the connection) and its answer is dropped.
 */
import type { UpstreamError } from './errors.js'
import type { ConnectionUser, UpstreamConnection } from './request.js'

/** Stands in for a pipelined request whose client went away: its answer is read and dropped. */
export const DROPPED: ConnectionUser = {
  onStart() {},
  onConnected() {},
  onHead() {},
  onData() {},
  onFailure() {},
}

/** A request written behind the current one on the same connection. */
export interface Queued {
  user: ConnectionUser
  isHead: boolean
  /** When it was written (Date.now()) and its place in the pool's order, for the stall rescue. */
  since: number
  seq: number
}

export class PipelineQueue {
  private readonly entries: Queued[] = []

  get length(): number {
    return this.entries.length
  }

  /** A request was just written behind the others. */
  push(user: ConnectionUser, isHead: boolean, seq: number): void {
    this.entries.push({ user, isHead, since: Date.now(), seq })
  }

  /** The next one in line, whose answer comes next. */
  shift(): Queued | undefined {
    return this.entries.shift()
  }

  /** Back at the front (its answer will not come after all; see takeAll). */
  putBack(q: Queued): void {
    this.entries.unshift(q)
  }

  /** `user` gives up: its answer will be read and dropped. */
  drop(user: ConnectionUser): void {
    const q = this.entries.find((e) => e.user === user)
    if (q !== undefined) q.user = DROPPED
  }

  /** The oldest request still waiting for its answer (dropped ones wait for nobody). */
  oldestWaiting(): Queued | undefined {
    return this.entries.find((q) => q.user !== DROPPED)
  }

  /** The stall rescue: every waiting request fails with `err`; their answers will be dropped when they come. */
  failWaiting(err: UpstreamError, conn: UpstreamConnection): void {
    for (const q of this.entries) {
      const user = q.user
      if (user === DROPPED) continue
      q.user = DROPPED
      user.onFailure(err, conn)
    }
  }

  /** All of them, taken out: none will be answered on this connection. */
  takeAll(): Queued[] {
    return this.entries.splice(0)
  }
}
