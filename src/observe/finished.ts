/** What the request path tells observability about one finished request (request-observer.ts, access-log.ts). */

/** What the access log reads of a client request (node:http's IncomingMessage, the fast front's request). */
export interface LoggedRequest {
  readonly method?: string | undefined
  readonly url?: string | undefined
  readonly httpVersion?: string | undefined
  readonly headers?: { readonly [name: string]: string | string[] | undefined } | undefined
  readonly socket: { readonly remoteAddress?: string | undefined }
}

/** One finished request, as the request path reports it (an Exchange implements this, no object per request). */
export interface FinishedRequest {
  readonly incoming: LoggedRequest
  /** The status the client got (499: it left before any answer). */
  readonly status: number
  /** performance.now() when the request arrived. */
  readonly startedAt: number
  /** ms from the last attempt's send to the replica's head; -1 when no head came. */
  readonly upstreamMs: number
  /** Request body bytes read from the client, response body bytes written to it. */
  readonly bytesIn: number
  readonly bytesOut: number
  /** Envoy-style termination flag (flags.ts). */
  readonly flag: string
  /** The replica of the last attempt, if any. */
  readonly replicaName: string | undefined
}
