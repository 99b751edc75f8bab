/**
 * What a connection and the party it works for say to each other: the request the route layer
 * builds once per attempt, the calls a connection makes back (head, body, failure), and the
 * connection as that party sees it.
 */
import type { Socket } from 'node:net'
import type { UpstreamError } from './errors.js'

/** A connection as the party it works for sees it (connection.ts implements it). */
export interface UpstreamConnection {
  readonly socket: Socket
  /** Request body bytes; false when the socket wants the writer to wait for 'drain'. */
  write(chunk: Buffer | string): boolean
  /** The request body is complete (the caller wrote its final framing). */
  endRequest(): void
  /** `user` gives up on its request (its client went away). */
  discard(user: ConnectionUser): void
  /** Stop (and start again) reading answers: the client is slow to take them. */
  pause(): void
  resume(): void
}

/** The party a connection works for: the route layer's exchange for one request. */
export interface ConnectionUser {
  /** This connection carries the user's request from now on (maybe not connected yet). */
  onStart(conn: UpstreamConnection): void
  /** The request head is on its way and the socket is connected: the body may flow. */
  onConnected(conn: UpstreamConnection): void
  /** The replica's response head, as read (see ResponseHandler.onHead). */
  onHead(statusCode: number, statusMessage: string, headText: string): void
  /** Body bytes; exactly one call has `last` set, after which the connection is no longer the user's. */
  onData(chunk: Buffer, last: boolean): void
  /** The attempt failed (before or during the response); the connection is gone. */
  onFailure(err: UpstreamError, conn: UpstreamConnection | undefined): void
}

/** One request for the pool, built once per attempt (src/route/attempt.ts). */
export interface UpstreamRequest {
  readonly user: ConnectionUser
  /** The request line and headers, blank line included, as latin1. */
  readonly head: string
  /** A HEAD request: its answer has no body. */
  readonly isHead: boolean
  /** ms the replica may stay silent before the request fails with UpstreamTimeoutError. */
  readonly timeoutMs: number
  /** No request body follows the head. */
  readonly bodyless: boolean
  /** A GET or HEAD without a body: may share a connection with others (pool.ts, pipelining). */
  readonly pipelinable: boolean
}
