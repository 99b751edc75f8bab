/**
 * One audit line per membership request (/add, /rm), accepted or refused, written when its
 * answer is complete (or the client went away): who asked, where, what, what came of it, and
 * the membership afterwards. One JSON object per line after the word `audit`, so `grep audit`
 * and a JSON parser are all a reader needs. The Authorization header is never part of it.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Membership } from '../membership/types.js'

export type ListenerName = 'main' | 'admin'

export interface AuditEntry {
  /** ISO 8601, UTC. */
  readonly time: string
  /** The peer's address as the socket reports it (what --admin-allow is checked against). */
  readonly peer: string
  readonly listener: ListenerName
  readonly method: string
  readonly path: string
  readonly status: number
  /** `accepted`, `refused CODE`, or `client went away` (no answer was completed). */
  readonly outcome: string
  readonly membership: Membership
}

export type AuditSink = (entry: AuditEntry) => void

/** The text of one audit line. */
export function auditLine(entry: AuditEntry): string {
  return `audit ${JSON.stringify(entry)}`
}

/**
 * Write the entry for this request once its answer is complete. `refusal()` gives the error
 * code the request was refused with, if any (read when the answer ends).
 */
export function auditWhenDone(
  req: IncomingMessage,
  res: ServerResponse,
  what: { listener: ListenerName; path: string; refusal: () => string | undefined; membership: () => Membership },
  sink: AuditSink,
): void {
  // Read now: a closed socket no longer knows its peer.
  const peer = req.socket.remoteAddress ?? 'unknown'
  const method = req.method ?? ''
  res.once('close', () => {
    const code = what.refusal()
    const outcome = !res.writableFinished ? 'client went away' : code !== undefined ? `refused ${code}` : res.statusCode < 400 ? 'accepted' : `refused ${res.statusCode}`
    sink({
      time: new Date().toISOString(),
      peer,
      listener: what.listener,
      method,
      path: what.path,
      status: res.statusCode,
      outcome,
      membership: what.membership(),
    })
  })
}
