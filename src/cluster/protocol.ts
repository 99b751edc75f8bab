/**
 * The messages between the primary and its workers over node:cluster's IPC channel (JSON).
 * Nothing here travels per request: membership snapshots when membership changes, admin calls
 * per /add or /rm, counters once a second and per scrape, passive-health reports per failed
 * replica connection.
 */
import type { AuditEntry } from '../admin/audit.js'
import type { Membership } from '../membership/types.js'
import type { Snapshot } from './snapshot.js'

/** One replica's counters in one worker (ReplicaStats as plain arrays). */
export interface ReplicaCounters {
  readonly key: string
  readonly requests: number[]
  readonly buckets: number[]
  readonly durationSeconds: number
  readonly errors: number[]
  readonly retries: number
  readonly tcpConnections: number
  readonly tcpBytesToReplica: number
  readonly tcpBytesFromReplica: number
  readonly inflight: number
}

export interface WorkerCounters {
  readonly replicas: ReplicaCounters[]
  /** [status, count] of the answers the worker wrote itself. */
  readonly local: Array<[number, number]>
  /** Open client connections per listener. */
  readonly open: { readonly http: number; readonly tcp: number }
}

export type ToWorker =
  /**
   * First message: the flag values to build the same config from (config.source: without the
   * admin token), the token's digest, the membership to start with, and whether to listen now
   * or wait as the warm spare until `listen`.
   */
  | { t: 'start'; values: Record<string, string>; tokenDigest: string | undefined; snapshot: Snapshot; listen: boolean }
  /** The warm spare takes a dead worker's place: listen now. */
  | { t: 'listen' }
  | { t: 'snapshot'; snapshot: Snapshot }
  /** Wait until nothing is in flight on this member (or timeoutMs), close it, answer `drained`. */
  | { t: 'drain'; id: number; key: string; timeoutMs: number }
  /** Send `counters` now (a scrape). */
  | { t: 'collect'; id: number }
  | { t: 'reply'; id: number; membership?: Membership; error?: { code: string; message: string } }
  /** Shutdown, first step: stop accepting, close idle connections. */
  | { t: 'stop' }
  /** Shutdown, last step (replicas drained): close every connection and exit. */
  | { t: 'exit' }

export type FromWorker =
  /** The worker listens for messages now (one sent before would be lost): send `start`. */
  | { t: 'hello' }
  /** The spare has built everything and applied its snapshot: it only has to listen when asked. */
  | { t: 'standby' }
  | { t: 'ready'; http: number; tcp: number | undefined }
  | { t: 'failed'; message: string; code: string | undefined }
  | { t: 'applied'; version: number; digest: string }
  | { t: 'drained'; id: number }
  | { t: 'counters'; id: number | undefined; counters: WorkerCounters }
  /** A replica refused or reset a connection (passive health): the primary's checker decides. */
  | { t: 'suspect'; key: string; code: string | undefined }
  /** /add or /rm arrived at this worker: the primary applies it and replies. */
  | { t: 'call'; id: number; op: 'add' | 'rm'; n: number; hostnames: string[]; weights: number[] }
  | { t: 'audit'; entry: AuditEntry }
  | { t: 'log'; level: 'info' | 'error'; line: string }
