/**
 * One catalogue of the errors the balancer answers with. Every code has a stable HTTP status
 * and a message in the SPEC's shape (`<Error> ...`); the README documents each code and a
 * test checks that it does. Throw `new BalancerError(code, detail?)` anywhere; the HTTP front
 * turns it into `{"message": ..., "status": "failure"}` with the catalogued status.
 */

export const ERRORS = {
  INVALID_JSON: { status: 400, message: 'Invalid JSON payload' },
  INVALID_N: { status: 400, message: 'n must be a positive integer' },
  INVALID_HOSTNAMES: { status: 400, message: 'hostnames must be a list of strings' },
  ADD_TOO_MANY_HOSTNAMES: { status: 400, message: 'Length of hostname list is more than newly added instances' },
  RM_TOO_MANY_HOSTNAMES: { status: 400, message: 'Length of hostname list is more than removable instances' },
  DUPLICATE_HOSTNAME: { status: 400, message: 'Duplicate hostname in request' },
  HOSTNAME_IN_USE: { status: 400, message: 'Hostname already in use' },
  HOSTNAME_NOT_FOUND: { status: 400, message: 'Hostname does not exist' },
  RM_MORE_THAN_EXIST: { status: 400, message: 'n is larger than the number of replicas' },
  INVALID_HOSTNAME: { status: 400, message: 'Invalid hostname' },
  INVALID_WEIGHT: { status: 400, message: 'weights must be a list of positive integers' },
  RING_FULL: { status: 400, message: 'The ring has no room for more servers' },
  TOO_MANY_REPLICAS: { status: 400, message: 'More replicas than --max-replicas allows' },
  BODY_TOO_LARGE: { status: 413, message: 'Request body too large' },
  REQUEST_TIMEOUT: { status: 408, message: 'Request body not received in time' },
  METHOD_NOT_ALLOWED: { status: 405, message: 'Method not allowed' },
  ADMIN_FORBIDDEN: { status: 403, message: 'Membership changes are not allowed from this address' },
  CROSS_SITE: { status: 403, message: 'Cross-site request refused' },
  UNAUTHORIZED: { status: 401, message: 'Membership changes need a bearer token' },
  ADMIN_NOT_FOUND: { status: 404, message: 'No such admin endpoint' },
  ENDPOINT_NOT_FOUND: { status: 400, message: 'endpoint does not exist in server replicas' },
  REPLICA_START_FAILED: { status: 500, message: 'Replica failed to start' },
  NO_REPLICAS: { status: 503, message: 'No server replicas available' },
  TOO_MANY_CONNECTIONS: { status: 503, message: 'Too many open connections' },
  UPSTREAM_UNREACHABLE: { status: 502, message: 'Server replica could not be reached' },
  UPSTREAM_TIMEOUT: { status: 504, message: 'Server replica did not answer in time' },
  BAD_REQUEST: { status: 400, message: 'Bad request' },
  REQUEST_TOO_LARGE: { status: 413, message: 'Request body too large' },
  URI_TOO_LONG: { status: 414, message: 'Request line too long' },
  EXPECTATION_FAILED: { status: 417, message: 'Expectation failed' },
  HEADERS_TOO_LARGE: { status: 431, message: 'Request header fields too large' },
  NOT_IMPLEMENTED: { status: 501, message: 'Not implemented' },
  VERSION_NOT_SUPPORTED: { status: 505, message: 'HTTP version not supported' },
  INTERNAL: { status: 500, message: 'Internal error' },
  SHUTTING_DOWN: { status: 503, message: 'Load balancer is shutting down' },
  NOT_THE_WRITER: { status: 409, message: 'This balancer follows another one: send /add and /rm to the writer' },
} as const satisfies Record<string, { status: number; message: string }>

export type ErrorCode = keyof typeof ERRORS

export class BalancerError extends Error {
  readonly code: ErrorCode
  readonly status: number

  /**
   * @param code catalogue entry
   * @param message full text after `<Error> `; defaults to the catalogue's message
   */
  constructor(code: ErrorCode, message?: string, options?: { cause?: unknown }) {
    super(message ?? ERRORS[code].message, options)
    this.name = 'BalancerError'
    this.code = code
    this.status = ERRORS[code].status
  }

  /** The SPEC's JSON body for this error. */
  toJSON(): { message: string; status: 'failure' } {
    return { message: `<Error> ${this.message}`, status: 'failure' }
  }
}
