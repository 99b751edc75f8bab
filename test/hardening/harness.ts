/**
 * The hardening suite's rig: an edge (the fast front, or node:http only) in front of one
 * recording replica, and a raw client that sends exact bytes and reads exact answers.
 * The replica records a request only once it has read all of it (method, target, Host, body),
 * so a request whose body the edge refused, or a smuggled one, shows up only if it got through.
 */
import type { Test } from 'tap'
import { createServer, type IncomingMessage } from 'node:http'
import { connect, type Socket } from 'node:net'
import { HashRing } from '../../src/ring/ring.js'
import { Upstream } from '../../src/upstream/upstream.js'
import { createProxy, type ProxyOptions } from '../../src/front/http.js'
import { FastFront, EDGE_DEFAULTS } from '../../src/front/fast.js'
import { createEdgeServer } from '../../src/front/edge-server.js'
import type { EdgeConfig } from '../../src/config.js'
import { listen } from '../fixtures/http.js'
import { within } from '../fixtures/sockets.js'

export interface Seen {
  method: string
  url: string
  host: string | undefined
  body: string
}

export interface Rig {
  port: number
  seen: Seen[]
  front: FastFront
}

export type FrontKind = 'fast' | 'node'
export const FRONTS: readonly FrontKind[] = ['fast', 'node']

/** The edge in front of the recording replica, or of the replica listening on `replicaPort`. */
export async function rig(t: Test, kind: FrontKind, edge: Partial<EdgeConfig> = {}, replicaPort?: number, maxConnections?: number): Promise<Rig> {
  const seen: Seen[] = []
  const replica = createServer((req: IncomingMessage, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      const entry = { method: req.method ?? '', url: req.url ?? '', host: req.headers.host, body: Buffer.concat(chunks).toString('latin1') }
      seen.push(entry)
      const slow = /[?&]wait=(\d+)/.exec(entry.url)
      const answer = (): void => {
        const text = `${entry.method} ${entry.url}`
        res.setHeader('content-type', 'text/plain')
        // The body names the request; a HEAD answer carries no body, so says it in a header too.
        res.setHeader('x-seen', text)
        res.setHeader('content-length', entry.method === 'HEAD' ? 0 : Buffer.byteLength(text))
        res.end(entry.method === 'HEAD' ? undefined : text)
      }
      if (slow) setTimeout(answer, Number(slow[1]))
      else answer()
    })
  })
  const port0 = replicaPort ?? (await listen(t, replica))
  const ring = new HashRing<Upstream>({ slots: 64, vnodes: 1, hash: 'default', probe: 'linear' })
  const u = new Upstream({ name: 'r', host: '127.0.0.1', port: port0, id: 'r' })
  t.teardown(() => u.close())
  ring.add('r', u)
  const options: ProxyOptions = { ring, keyOf: () => 0, upstreamTimeoutMs: 5000 }
  const limits: EdgeConfig = { ...EDGE_DEFAULTS, ...edge }
  const proxy = createProxy(options)
  const server = createEdgeServer(limits, (req, res) => proxy(req, res))
  const front = new FastFront(server, { ...options, isAdminPath: (p) => p === '/admin', keyHeaders: [], fast: kind === 'fast', edge: limits, ...(maxConnections === undefined ? {} : { maxConnections }) })
  t.teardown(() => front.closeAll())
  const port = await listen(t, server)
  return { port, seen, front }
}

/** One parsed answer. */
export interface Answer {
  status: number
  headers: string
  body: string
}

/** A raw client: bytes in, answers and the connection's fate out. */
export class Client {
  readonly socket: Socket
  private buf = Buffer.alloc(0)
  ended = false
  closed = false
  error: string | undefined

  constructor(t: Test, port: number) {
    this.socket = connect({ port, host: '127.0.0.1', allowHalfOpen: true })
    this.socket.on('data', (c: Buffer) => (this.buf = Buffer.concat([this.buf, c])))
    this.socket.on('end', () => (this.ended = true))
    this.socket.on('error', (err: NodeJS.ErrnoException) => (this.error ??= err.code))
    this.socket.on('close', () => (this.closed = true))
    t.teardown(() => {
      this.socket.destroy()
    })
  }

  send(bytes: string | Buffer): void {
    this.socket.write(typeof bytes === 'string' ? Buffer.from(bytes, 'latin1') : bytes)
  }

  /** The complete final answers received so far (1xx skipped). */
  answers(): Answer[] {
    return splitAnswers(this.buf)
  }

  async waitAnswers(n: number, ms = 4000): Promise<Answer[]> {
    await within(`${n} answer(s)`, ms, poll(() => this.answers().length >= n || this.closed))
    return this.answers()
  }

  /** Wait for the far end's FIN or close. */
  async waitEnd(ms = 4000): Promise<void> {
    await within('the connection to end', ms, poll(() => this.ended || this.closed))
  }

  get text(): string {
    return this.buf.toString('latin1')
  }
}

function poll(check: () => boolean): Promise<void> {
  return new Promise((resolve) => {
    const timer = setInterval(() => {
      if (check()) {
        clearInterval(timer)
        resolve()
      }
    }, 5)
    if (check()) {
      clearInterval(timer)
      resolve()
    }
  })
}

/** Split bytes into answers framed by Content-Length or chunked; stops at an incomplete one. */
export function splitAnswers(buf: Buffer): Answer[] {
  const out: Answer[] = []
  let pos = 0
  for (;;) {
    const end = buf.indexOf('\r\n\r\n', pos)
    if (end === -1) return out
    const head = buf.toString('latin1', pos, end)
    const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(head)?.[1] ?? NaN)
    let bodyEnd: number
    let body: string
    const len = /\r\ncontent-length: *(\d+)/i.exec(head)
    if (/\r\ntransfer-encoding: *chunked/i.test(head)) {
      let p = end + 4
      body = ''
      for (;;) {
        const lineEnd = buf.indexOf('\r\n', p)
        if (lineEnd === -1) return out
        const size = parseInt(buf.toString('latin1', p, lineEnd), 16)
        if (buf.length < lineEnd + 2 + size + 2) return out
        body += buf.toString('latin1', lineEnd + 2, lineEnd + 2 + size)
        p = lineEnd + 2 + size + 2
        if (size === 0) break
      }
      bodyEnd = p
    } else {
      const n = len ? Number(len[1]) : 0
      if (buf.length < end + 4 + n) return out
      body = buf.toString('latin1', end + 4, end + 4 + n)
      bodyEnd = end + 4 + n
    }
    pos = bodyEnd
    if (status >= 100 && status < 200) continue
    out.push({ status, headers: head, body })
  }
}
