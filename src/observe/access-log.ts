/**
 * The access log (`--access-log json|combined`, `--access-log-file PATH`, default stdout): one
 * line per client request, appended to a string buffer and written out in one write when
 * the flush timer fires (every `flushMs`), when the buffer passes `maxBufferBytes`, and on
 * close. A sink that cannot keep up (a full disk, a stuck pipe) never grows memory without
 * bound: while more than `maxPendingBytes` wait in the stream, lines are dropped and
 * counted, as HAProxy drops log lines rather than stall traffic.
 */
import { createWriteStream } from 'node:fs'
import type { Writable } from 'node:stream'
import type { FinishedRequest } from './finished.js'

export type AccessLogFormat = 'json' | 'combined'

export interface AccessLogOptions {
  format: AccessLogFormat
  /** Where lines go: a stream, or a file path opened for appending; default stdout. */
  sink?: Writable | string
  flushMs?: number
  maxBufferBytes?: number
  maxPendingBytes?: number
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec']
const pad = (n: number): string => (n < 10 ? `0${n}` : String(n))
const ms3 = (n: number): number => Math.round(n * 1000) / 1000

/** Combined-log quoting, as nginx does: `"`, `\` and control bytes as \xHH. */
function quote(value: string | undefined): string {
  if (value === undefined || value === '') return '"-"'
  return `"${value.replace(/[\x00-\x1f\x7f"\\]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`)}"`
}

function header(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v
}

/** `[10/Oct/2000:13:55:36 +0000]`: Common Log Format time, in UTC. */
function clfTime(d: Date): string {
  return `[${pad(d.getUTCDate())}/${MONTHS[d.getUTCMonth()]}/${d.getUTCFullYear()}:${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())} +0000]`
}

export function jsonLine(r: FinishedRequest, totalMs: number, now: Date): string {
  return `${JSON.stringify({
    time: now.toISOString(),
    client: r.incoming.socket.remoteAddress ?? '-',
    method: r.incoming.method ?? '-',
    target: r.incoming.url ?? '-',
    protocol: `HTTP/${r.incoming.httpVersion ?? '1.1'}`,
    status: r.status,
    bytes_in: r.bytesIn,
    bytes_out: r.bytesOut,
    duration_ms: ms3(totalMs),
    upstream_ms: r.upstreamMs < 0 ? null : ms3(r.upstreamMs),
    replica: r.replicaName ?? null,
    flags: r.flag,
  })}\n`
}

/** Apache/nginx `combined`, then the replica, total ms, upstream ms and flags. */
export function combinedLine(r: FinishedRequest, totalMs: number, now: Date): string {
  const req = r.incoming
  const line = `${req.method ?? '-'} ${req.url ?? '-'} HTTP/${req.httpVersion ?? '1.1'}`
  const upstream = r.upstreamMs < 0 ? '-' : ms3(r.upstreamMs)
  return `${req.socket.remoteAddress ?? '-'} - - ${clfTime(now)} ${quote(line)} ${r.status} ${r.bytesOut} ${quote(header(req.headers?.referer))} ${quote(header(req.headers?.['user-agent']))} ${quote(r.replicaName)} ${ms3(totalMs)} ${upstream} ${r.flag}\n`
}

export class AccessLog {
  /** Lines dropped because the sink could not keep up. */
  dropped = 0
  private buffer = ''
  private readonly timer: NodeJS.Timeout
  private readonly stream: Writable
  private readonly ownStream: boolean
  private readonly format: (r: FinishedRequest, totalMs: number, now: Date) => string
  private readonly maxBufferBytes: number
  private readonly maxPendingBytes: number
  private closed = false

  constructor(options: AccessLogOptions) {
    this.format = options.format === 'json' ? jsonLine : combinedLine
    const sink = options.sink ?? process.stdout
    this.ownStream = typeof sink === 'string'
    this.stream = typeof sink === 'string' ? createWriteStream(sink, { flags: 'a' }) : sink
    // A write error (disk full, closed pipe) must not take the balancer down: report once, keep serving.
    this.stream.on('error', (err) => {
      if (!this.closed) console.error(`access log: ${err.message}; lines are dropped from now on`)
      this.closed = true
    })
    this.maxBufferBytes = options.maxBufferBytes ?? 64 * 1024
    this.maxPendingBytes = options.maxPendingBytes ?? 8 * 1024 * 1024
    this.timer = setInterval(() => this.flush(), options.flushMs ?? 1000)
    this.timer.unref()
  }

  request(r: FinishedRequest, totalMs: number): void {
    if (this.closed) {
      this.dropped++
      return
    }
    this.buffer += this.format(r, totalMs, new Date())
    if (this.buffer.length >= this.maxBufferBytes) this.flush()
  }

  /** Write what is buffered in one write (or drop it, counted, when the sink is too far behind). */
  flush(): void {
    if (this.buffer.length === 0) return
    const text = this.buffer
    this.buffer = ''
    if (this.closed) return
    if (this.stream.writableLength > this.maxPendingBytes) {
      let lines = 0
      for (let i = text.indexOf('\n'); i !== -1; i = text.indexOf('\n', i + 1)) lines++
      this.dropped += lines
      return
    }
    this.stream.write(text)
  }

  /** Flush and stop the timer; a file is closed once its last bytes are written. */
  async close(): Promise<void> {
    clearInterval(this.timer)
    this.flush()
    this.closed = true
    if (!this.ownStream) return
    await new Promise<void>((resolve) => this.stream.end(() => resolve()))
  }
}
