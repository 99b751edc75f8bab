/**
 * The node:http server behind the edge, with the settings the edge relies on: node:http's
 * head limit leaves room for the edge's own (431 / 414 are the edge's answers, and its rewrites
 * may lengthen a head a little); no silent truncation of a header set (maxHeadersCount 0: the
 * edge counts lines itself, --max-headers); no per-request deadline (an upload may take long:
 * the edge's header and client timeouts cover stalls); the keep-alive timeout announced in
 * `Keep-Alive: timeout=` and enforced by the edge's sweep.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { EdgeConfig } from './edge-limits.js'

export function createEdgeServer(edge: EdgeConfig, handler: (req: IncomingMessage, res: ServerResponse) => void): Server {
  const server = createServer({ maxHeaderSize: 2 * edge.maxHeaderSize + 1024 }, handler)
  server.maxHeadersCount = 0
  server.requestTimeout = 0
  server.keepAliveTimeout = edge.keepAliveTimeoutMs
  // Heads reach node:http whole (the edge reads them), so this never fires before the edge's 408.
  server.headersTimeout = edge.headerTimeoutMs + 1000
  return server
}
