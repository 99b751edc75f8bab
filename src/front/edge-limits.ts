/**
 * The limits and timeouts of the HTTP front (README: Limits and hardening): their shape, their
 * defaults (defined once, here), and how long a lingering close lasts.
 */

/** Limits and timeouts of the HTTP front (README: Limits and hardening). */
export interface EdgeConfig {
  /** Most requests of one client connection in flight (read and not yet answered); 1: one at a time. */
  readonly maxPipelined: number
  /** ms a client has to send a whole request head (then 408 and close). */
  readonly headerTimeoutMs: number
  /** ms a client may stay silent in the middle of a request body (then 408 and close). */
  readonly clientTimeoutMs: number
  /** ms an idle keep-alive connection stays open. */
  readonly keepAliveTimeoutMs: number
  /** Largest request head in bytes (431; a longer request line alone: 414). */
  readonly maxHeaderSize: number
  /** Most header lines in a request (431). */
  readonly maxHeaders: number
  /** Largest proxied request body in bytes (413); undefined: unlimited. */
  readonly maxRequestBody: number | undefined
}

/** The defaults: config.ts shows them in --help and uses them; fronts built without a Config (tests) too. */
export const EDGE_DEFAULTS: EdgeConfig = Object.freeze({
  maxPipelined: 1,
  headerTimeoutMs: 10_000,
  clientTimeoutMs: 60_000,
  keepAliveTimeoutMs: 65_000,
  maxHeaderSize: 16_384,
  maxHeaders: 100,
  maxRequestBody: undefined,
})

/**
 * How long a lingering close reads and drops what the client still sends after our last
 * byte, before it closes (RFC 9112 9.6; nginx: lingering_time 30 s, lingering_timeout 5 s).
 */
export const LINGER_MS = 2_000
