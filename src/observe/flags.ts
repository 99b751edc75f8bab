/**
 * Envoy's response flags, the ones this balancer can set, for the access log's `flags` field
 * (Envoy's %RESPONSE_FLAGS%): why a request ended other than with a replica's full answer.
 */
export const NO_FLAG = '-'
/** No replica in the ring (503). */
export const NO_HEALTHY_UPSTREAM = 'UH'
/** The replica could not be connected to (refused, unreachable). */
export const UPSTREAM_CONNECT_FAILURE = 'UF'
/** The replica's connection broke before its answer was complete. */
export const UPSTREAM_CONNECTION_TERMINATION = 'UC'
/** The replica stayed silent past --upstream-timeout (504, or a cut answer). */
export const UPSTREAM_TIMEOUT = 'UT'
/** The replica's answer was not valid HTTP/1.1. */
export const UPSTREAM_PROTOCOL_ERROR = 'UPE'
/** The client went away before its answer was complete. */
export const DOWNSTREAM_CONNECTION_TERMINATION = 'DC'
/** The client's request broke the protocol or a limit (the edge's 4xx). */
export const DOWNSTREAM_PROTOCOL_ERROR = 'DPE'
/** A connection limit refused it. */
export const UPSTREAM_OVERFLOW = 'UO'

/** The flag for a failed attempt's transport error code. */
export function flagOfUpstreamError(code: string | undefined): string {
  switch (code) {
    case 'ETIMEDOUT_UPSTREAM':
    case 'ETIMEDOUT':
      return UPSTREAM_TIMEOUT
    case 'ECONNREFUSED':
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
    case 'EADDRNOTAVAIL':
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return UPSTREAM_CONNECT_FAILURE
    default:
      return code?.startsWith('HPE_') ? UPSTREAM_PROTOCOL_ERROR : UPSTREAM_CONNECTION_TERMINATION
  }
}
