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

/**
 * Time stamps, formatted once a second: a busy balancer logs thousands of lines a second, and
 * a Date formatted per line was most of a line's cost. Each cache holds the text of the last
 * second seen (a memo of a pure function: sharing it between logs changes nothing).
 */
let isoSecond = -1
let isoPrefix = ''
let clfSecond = -1
let clfText = ''

/** `2000-10-10T13:55:36.123Z` (as Date#toISOString) for a Date.now() value. */
export function isoTime(ms: number): string {
  const second = Math.floor(ms / 1000)
  if (second !== isoSecond) {
    isoSecond = second
    isoPrefix = new Date(second * 1000).toISOString().slice(0, 20)
  }
  const milli = ms - second * 1000
  return `${isoPrefix}${milli < 10 ? '00' : milli < 100 ? '0' : ''}${milli}Z`
}

/** `[10/Oct/2000:13:55:36 +0000]`: Common Log Format time, in UTC, for a Date.now() value. */
export function clfTime(ms: number): string {
  const second = Math.floor(ms / 1000)
  if (second !== clfSecond) {
    const d = new Date(second * 1000)
    clfSecond = second
    clfText = `[${pad(d.getUTCDate())}/${MONTHS[d.getUTCMonth()]}/${d.getUTCFullYear()}:${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())} +0000]`
  }
  return clfText
}

/** Printable ASCII other than `"` and `\`: a JSON string as it is. Anything else goes through JSON.stringify. */
const PLAIN = /^[\x20\x21\x23-\x5b\x5d-\x7e]*$/

/** As JSON.stringify writes a number (null for NaN and the infinities). */
function jsonNumber(n: number): string {
  return Number.isFinite(n) ? String(n) : 'null'
}

function jsonString(value: string): string {
  return PLAIN.test(value) ? `"${value}"` : JSON.stringify(value)
}

/**
 * One JSON object per line, fields always in this order. Written out by hand rather than
 * JSON.stringify of an object per request (a third of the cost); the strings a client
 * controls go through JSON.stringify whenever they hold anything but plain ASCII.
 */
export function jsonLine(r: FinishedRequest, totalMs: number, now: number): string {
  const req = r.incoming
  const upstream = r.upstreamMs < 0 ? 'null' : jsonNumber(ms3(r.upstreamMs))
  const replica = r.replicaName === undefined ? 'null' : jsonString(r.replicaName)
  return `{"time":"${isoTime(now)}","client":${jsonString(req.socket.remoteAddress ?? '-')},"method":${jsonString(req.method ?? '-')},"target":${jsonString(req.url ?? '-')},"protocol":${jsonString(`HTTP/${req.httpVersion ?? '1.1'}`)},"status":${r.status},"bytes_in":${r.bytesIn},"bytes_out":${r.bytesOut},"duration_ms":${jsonNumber(ms3(totalMs))},"upstream_ms":${upstream},"replica":${replica},"flags":${jsonString(r.flag)}}\n`
}

/** Apache/nginx `combined`, then the replica, total ms, upstream ms and flags. */
export function combinedLine(r: FinishedRequest, totalMs: number, now: number): string {
  const req = r.incoming
  const line = `${req.method ?? '-'} ${req.url ?? '-'} HTTP/${req.httpVersion ?? '1.1'}`
  const upstream = r.upstreamMs < 0 ? '-' : ms3(r.upstreamMs)
  return `${req.socket.remoteAddress ?? '-'} - - ${clfTime(now)} ${quote(line)} ${r.status} ${r.bytesOut} ${quote(header(req.headers?.referer))} ${quote(header(req.headers?.['user-agent']))} ${quote(r.replicaName)} ${ms3(totalMs)} ${upstream} ${r.flag}\n`
}

export class AccessLog {
  /** Lines dropped because the sink could not keep up. */
  dropped = 0
  /**
   * Lines are encoded (UTF-8) straight into this buffer and written out in one write when it
   * is flushed: no string of a second's lines is built, flattened and encoded again.
   */
  private buffer: Buffer
  private used = 0
  /** Lines in the buffer (counted as dropped if the sink is too far behind to take them). */
  private lines = 0
  private readonly timer: NodeJS.Timeout
  private readonly stream: Writable
  private readonly ownStream: boolean
  private readonly format: (r: FinishedRequest, totalMs: number, now: number) => string
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
    // Room past the flush bound for one more ordinary line, however close to it the buffer is.
    this.buffer = Buffer.allocUnsafeSlow(this.maxBufferBytes + 8 * 1024)
    this.maxPendingBytes = options.maxPendingBytes ?? 8 * 1024 * 1024
    this.timer = setInterval(() => this.flush(), options.flushMs ?? 1000)
    this.timer.unref()
  }

  request(r: FinishedRequest, totalMs: number): void {
    if (this.closed) {
      this.dropped++
      return
    }
    const line = this.format(r, totalMs, Date.now())
    // A UTF-16 unit is at most 3 UTF-8 bytes: with that much room the line fits whole.
    const worst = line.length * 3
    if (this.used + worst > this.buffer.length) {
      this.flush()
      if (worst > this.buffer.length) {
        // A line longer than the buffer (a very long target, up to --max-header-size): on its own.
        this.writeOut(Buffer.from(line), 1)
        return
      }
    }
    this.used += this.buffer.write(line, this.used)
    this.lines++
    if (this.used >= this.maxBufferBytes) this.flush()
  }

  /** Write what is buffered in one write (or drop it, counted, when the sink is too far behind). */
  flush(): void {
    if (this.used === 0) return
    const chunk = this.buffer.subarray(0, this.used)
    const lines = this.lines
    // The stream keeps the chunk until it is written: the next lines go into a new buffer.
    this.buffer = Buffer.allocUnsafeSlow(this.buffer.length)
    this.used = 0
    this.lines = 0
    this.writeOut(chunk, lines)
  }

  private writeOut(chunk: Buffer, lines: number): void {
    if (this.closed) return
    if (this.stream.writableLength > this.maxPendingBytes) {
      this.dropped += lines
      return
    }
    this.stream.write(chunk)
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
