/**
 * Where a chunked request body ends (RFC 9112 7.1), found without copying it: the edge
 * (edge-connection.ts) passes the body's bytes on to node:http as they come and must know
 * where the next request head starts, so that it reads that head with its own rules. It is
 * strict — a chunk size is 1-12 hex digits, every line ends in CRLF, chunk data is followed by
 * CRLF, trailer lines are field lines — so a body it accepts is framed the same way by llhttp,
 * and anything it refuses is never passed on (400 and close).
 */

const SIZE = 0
const DATA = 1
const DATA_CR = 2
const DATA_LF = 3
const TRAILER = 4
const DONE = 5

/** Longest chunk-size line (with extensions) or trailer line. */
const MAX_LINE = 4096
/** Most trailer lines. */
const MAX_TRAILERS = 64

const HEX = new Int8Array(256).fill(-1)
for (let c = 0; c < 10; c++) HEX[48 + c] = c
for (let c = 0; c < 6; c++) HEX[65 + c] = HEX[97 + c] = 10 + c

export class ChunkedError extends Error {
  override name = 'ChunkedError'
}

export class ChunkedScanner {
  private state = SIZE
  private line = ''
  private remaining = 0
  private trailers = 0
  /** Chunk data bytes seen so far (the body's decoded length, for the body limit). */
  dataBytes = 0

  get done(): boolean {
    return this.state === DONE
  }

  /**
   * Scan `buf` from `pos`. Returns the index just past the body's end, or -1 when all of
   * `buf` belongs to the body and more is to come. Throws ChunkedError on a framing error.
   */
  scan(buf: Buffer, pos: number): number {
    while (pos < buf.length) {
      switch (this.state) {
        case SIZE:
        case TRAILER: {
          const lf = buf.indexOf(10, pos)
          const stop = lf === -1 ? buf.length : lf
          if (this.line.length + stop - pos > MAX_LINE) throw new ChunkedError('chunk line too long')
          this.line += buf.toString('latin1', pos, stop)
          if (lf === -1) return -1
          pos = lf + 1
          const line = this.line
          this.line = ''
          if (!line.endsWith('\r') || line.indexOf('\r') !== line.length - 1) throw new ChunkedError('chunk line not ended by CRLF')
          if (this.state === SIZE) this.sizeLine(line.slice(0, -1))
          else if (line.length === 1) {
            this.state = DONE
            return pos
          } else this.trailerLine(line.slice(0, -1))
          break
        }
        case DATA: {
          const take = Math.min(this.remaining, buf.length - pos)
          this.remaining -= take
          pos += take
          if (this.remaining === 0) this.state = DATA_CR
          break
        }
        case DATA_CR:
          if (buf[pos++] !== 13) throw new ChunkedError('chunk data longer than its size')
          this.state = DATA_LF
          break
        case DATA_LF:
          if (buf[pos++] !== 10) throw new ChunkedError('chunk data not followed by CRLF')
          this.state = SIZE
          break
        case DONE:
          return pos
      }
    }
    return this.state === DONE ? pos : -1
  }

  private sizeLine(line: string): void {
    let i = 0
    let size = 0
    while (i < line.length && HEX[line.charCodeAt(i)]! >= 0) {
      size = size * 16 + HEX[line.charCodeAt(i)]!
      i++
    }
    if (i === 0 || i > 12) throw new ChunkedError('bad chunk size')
    if (i < line.length) {
      // chunk-ext = *( BWS ";" BWS ext-name [ BWS "=" BWS ext-val ] ): only visible characters, SP, HTAB.
      let j = i
      while (j < line.length && (line.charCodeAt(j) === 32 || line.charCodeAt(j) === 9)) j++
      if (line.charCodeAt(j) !== 59 /* ; */) throw new ChunkedError('bad chunk size')
      for (; j < line.length; j++) {
        const c = line.charCodeAt(j)
        if ((c < 32 && c !== 9) || c === 127) throw new ChunkedError('bad chunk extension')
      }
    }
    if (size === 0) {
      this.state = TRAILER
      return
    }
    this.dataBytes += size
    this.remaining = size
    this.state = DATA
  }

  private trailerLine(line: string): void {
    if (++this.trailers > MAX_TRAILERS) throw new ChunkedError('too many trailer lines')
    const colon = line.indexOf(':')
    if (colon <= 0) throw new ChunkedError('bad trailer line')
    for (let i = 0; i < colon; i++) {
      const c = line.charCodeAt(i)
      if (!(c > 32 && c < 127) || '"(),/:;<=>?@[\\]{}'.includes(line[i]!)) throw new ChunkedError('bad trailer name')
    }
    for (let i = colon + 1; i < line.length; i++) {
      const c = line.charCodeAt(i)
      if ((c < 32 && c !== 9) || c === 127) throw new ChunkedError('bad trailer value')
    }
  }
}
