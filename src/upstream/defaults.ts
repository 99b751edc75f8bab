/**
 * The transport's numeric defaults, defined once: the pool uses them when an option is left
 * out, config.ts shows them in --help and uses them for its flags' defaults.
 */
export const POOL_DEFAULTS = {
  /** Most connections to one replica at once; more requests wait in order. */
  maxSockets: 512,
  /** Most idle connections kept per replica (most recently used first). */
  maxIdle: 256,
  /** ms an idle pooled connection stays open: under the replica's own 65 s keep-alive timeout. */
  idleTimeoutMs: 30_000,
  /** Most requests in flight on one connection (1: no pipelining). */
  pipeline: 1,
  /** ms a pipelined request may wait behind others before it is sent again alone (0: never). */
  stallMs: 50,
  /** ms without pipelining to a replica after a stall or an aborted pipeline. */
  cooldownMs: 10_000,
} as const

/** A stall is at least this many times the replica's typical answer time (pool.ts). */
export const STALL_FACTOR = 8
/** Answers a pool must have seen before its typical answer time means anything. */
export const TYPICAL_AFTER = 16
