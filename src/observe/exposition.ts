/**
 * Prometheus text exposition format 0.0.4: `# HELP`, `# TYPE`, then one `name{labels} value`
 * line per series. Label values are escaped as the format requires (backslash, double quote,
 * line feed), so any replica name is safe; HELP text escapes backslash and line feed.
 */

export const CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8'

export function escapeLabelValue(value: string): string {
  return value.replace(/[\\"\n]/g, (c) => (c === '\\' ? '\\\\' : c === '"' ? '\\"' : '\\n'))
}

function escapeHelp(text: string): string {
  return text.replace(/[\\\n]/g, (c) => (c === '\\' ? '\\\\' : '\\n'))
}

/** A sample value: integers as integers, infinities and NaN as the format spells them. */
export function formatValue(n: number): string {
  if (Number.isNaN(n)) return 'NaN'
  if (n === Infinity) return '+Inf'
  if (n === -Infinity) return '-Inf'
  return String(n)
}

/** Builds one exposition text, family by family. */
export class TextWriter {
  private out = ''

  family(name: string, type: 'counter' | 'gauge' | 'histogram', help: string): this {
    this.out += `# HELP ${name} ${escapeHelp(help)}\n# TYPE ${name} ${type}\n`
    return this
  }

  /** One sample; `labels` alternate name, value. */
  sample(name: string, value: number, ...labels: string[]): this {
    this.out += name
    if (labels.length > 0) {
      this.out += '{'
      for (let i = 0; i < labels.length; i += 2) this.out += `${i > 0 ? ',' : ''}${labels[i]}="${escapeLabelValue(labels[i + 1]!)}"`
      this.out += '}'
    }
    this.out += ` ${formatValue(value)}\n`
    return this
  }

  text(): string {
    return this.out
  }
}
