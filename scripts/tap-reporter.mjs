// @ts-check
/**
 * The test reporter of `npm test` (package.json "tap".reporter): one line per test file, and
 * full detail only for a file that failed (its failing assertions with their diagnostics and
 * the subtests around them; passing assertions are left out). Ends with tap's own totals line,
 * `# { total: N, pass: N, fail: N }`, which .ci/run reads.
 *
 * tap pipes its raw TAP stream into this Transform; at top level the stream is one subtest per
 * test file ("# Subtest: test/x.ts", the file's indented TAP, then "ok N - test/x.ts"). The raw
 * TAP is still there: `npx tap --reporter=tap test/x.ts`.
 */
import { Transform } from 'node:stream'

export default class FileLines extends Transform {
  constructor() {
    super({ encoding: 'utf8' })
    /** @type {string} */ this.partial = ''
    /** @type {string[]} the current file's indented lines */ this.block = []
    this.files = 0
    this.failedFiles = /** @type {string[]} */ ([])
  }

  /** @param {Buffer | string} chunk @param {BufferEncoding} _enc @param {() => void} done */
  _transform(chunk, _enc, done) {
    const lines = (this.partial + String(chunk)).split('\n')
    this.partial = lines.pop() ?? ''
    for (const line of lines) this.line(line)
    done()
  }

  /** @param {() => void} done */
  _flush(done) {
    if (this.partial !== '') this.line(this.partial)
    done()
  }

  /** @param {string} line */
  line(line) {
    if (/^\s/.test(line) || line === '') {
      this.block.push(line)
      return
    }
    const result = /^(not ok|ok) \d+ - (.*?)(?: # (.*))?$/.exec(line)
    if (result) {
      const [, status, name, directive = ''] = result
      this.files++
      const time = /time=([\d.]+)ms/.exec(directive)
      const seconds = time ? ` (${(Number(time[1]) / 1000).toFixed(1)} s)` : ''
      const note = directive.replace(/\s*time=[\d.]+ms/, '').trim()
      if (status === 'ok') {
        this.push(`ok      ${name}${seconds}${note ? `  # ${note}` : ''}\n`)
      } else {
        this.failedFiles.push(name ?? '')
        this.push(`NOT OK  ${name}${seconds}${note ? `  # ${note}` : ''}\n`)
        this.push(failureDetail(this.block))
      }
      this.block = []
      return
    }
    if (line.startsWith('# Subtest: ')) {
      this.block = []
      return
    }
    if (line.startsWith('# {') || line.startsWith('Bail out!')) {
      if (this.failedFiles.length > 0) this.push(`\n${this.failedFiles.length} of ${this.files} test files failed: ${this.failedFiles.join(', ')}\n`)
      this.push(`${line}\n`)
    }
    // "TAP version", the plan, "# time=", "# No coverage generated": not needed.
  }
}

/**
 * A failed file's TAP reduced to its failures: each `not ok` line with its YAML diagnostics,
 * under the `# Subtest:` headers that lead to it. Passing assertions and subtests, plans and
 * timing comments are left out.
 * @param {string[]} block
 */
function failureDetail(block) {
  const out = []
  /** @type {{ indent: number, line: string, printed: boolean }[]} open subtests */
  const open = []
  let detailIndent = -1 // > -1: inside the YAML diagnostics of a printed `not ok`
  for (const line of block) {
    const trimmed = line.trimStart()
    const indent = line.length - trimmed.length
    if (trimmed === '') continue
    if (detailIndent >= 0) {
      if (indent > detailIndent) {
        out.push(line)
        continue
      }
      detailIndent = -1
    }
    if (trimmed.startsWith('# Subtest:')) {
      while (open.length > 0 && open[open.length - 1].indent >= indent) open.pop()
      open.push({ indent, line, printed: false })
    } else if (/^(not )?ok \d+/.test(trimmed)) {
      // A result closes the subtests at its own depth (its own header) and deeper.
      while (open.length > 0 && open[open.length - 1].indent >= indent) open.pop()
      if (trimmed.startsWith('not ok')) {
        for (const h of open) if (!h.printed) (out.push(h.line), (h.printed = true))
        out.push(line)
        detailIndent = indent
      }
    }
  }
  return out.length > 0 ? `${out.join('\n')}\n` : ''
}
