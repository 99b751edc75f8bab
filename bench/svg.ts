/**
 * A tiny SVG chart generator for the analysis (no chart library): grouped bar charts and
 * line charts with axes, nice ticks, a legend and optional horizontal reference lines.
 * Output is a standalone SVG string that renders the same in browsers and on GitHub.
 */

export interface Series {
  name: string
  values: readonly number[]
  color?: string
  /** Line charts: a dashed line (or this SVG dash pattern, e.g. "2 4"). */
  dashed?: boolean | string
}

export interface RefLine {
  value: number
  label: string
  color?: string
}

export interface ChartOptions {
  title: string
  subtitle?: string
  /** Category labels (bars) or x values (lines). */
  categories: readonly string[]
  series: readonly Series[]
  yLabel: string
  xLabel?: string
  refLines?: readonly RefLine[]
  /** Force the y-axis maximum (e.g. 100 for percentages). */
  yMax?: number
  width?: number
  height?: number
  /** Print each bar's value above it (bar charts). Default true when there are few bars. */
  barLabels?: boolean
  /** Format for values (bar labels, tooltips); also ticks unless tickFormat is given. */
  format?: (v: number) => string
  tickFormat?: (v: number) => string
}

export const PALETTE = ['#4e79a7', '#f28e2b', '#e15759', '#76b7b2', '#59a14f', '#edc948', '#b07aa1', '#ff9da7', '#9c755f', '#bab0ac']

const FONT = 'font-family="system-ui, -apple-system, Segoe UI, Helvetica, Arial, sans-serif"'

function esc(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;')
}

/** A "nice" axis: max rounded up to 1, 2, 2.5 or 5 x 10^k, and its tick step. */
export function niceScale(max: number, ticks = 5): { max: number; step: number } {
  if (!(max > 0)) return { max: 1, step: 0.2 }
  const rough = max / ticks
  const mag = 10 ** Math.floor(Math.log10(rough))
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= rough)!
  return { max: Math.ceil(max / step - 1e-9) * step, step }
}

function defaultFormat(v: number): string {
  if (Math.abs(v) >= 1000) return Math.round(v).toLocaleString('en-US')
  if (Number.isInteger(v)) return String(v)
  return v.toFixed(Math.abs(v) < 10 ? 1 : 0)
}

interface Frame {
  w: number
  h: number
  left: number
  top: number
  plotW: number
  plotH: number
  yMax: number
  step: number
  parts: string[]
  y: (v: number) => number
  fmt: (v: number) => string
  tick: (v: number) => string
}

function frame(o: ChartOptions, dataMax: number): Frame {
  const w = o.width ?? 720
  const h = o.height ?? 420
  const left = 72
  const right = 24
  const top = o.subtitle ? 70 : 52
  const legendRows = legendLayout(o, w - left - right).rows
  const bottom = 56 + (o.series.length > 1 ? 22 * legendRows : 0)
  const plotW = w - left - right
  const plotH = h - top - bottom
  const refMax = Math.max(0, ...(o.refLines ?? []).map((r) => r.value))
  const { max: yMax, step } = o.yMax !== undefined ? { max: o.yMax, step: niceScale(o.yMax).step } : niceScale(Math.max(dataMax, refMax) * 1.08)
  const fmt = o.format ?? defaultFormat
  const tick = o.tickFormat ?? fmt
  const y = (v: number): number => top + plotH - (Math.max(0, Math.min(v, yMax)) / yMax) * plotH
  const parts: string[] = []
  parts.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${w}" height="${h}" viewBox="0 0 ${w} ${h}" ${FONT}>`)
  parts.push(`<rect width="${w}" height="${h}" fill="#ffffff"/>`)
  parts.push(`<text x="${w / 2}" y="26" text-anchor="middle" font-size="17" font-weight="600" fill="#222">${esc(o.title)}</text>`)
  if (o.subtitle) parts.push(`<text x="${w / 2}" y="47" text-anchor="middle" font-size="12.5" fill="#555">${esc(o.subtitle)}</text>`)
  // Grid and y ticks.
  for (let v = 0; v <= yMax + 1e-9; v += step) {
    const yy = y(v).toFixed(1)
    parts.push(`<line x1="${left}" y1="${yy}" x2="${left + plotW}" y2="${yy}" stroke="#e6e6e6"/>`)
    parts.push(`<text x="${left - 8}" y="${(y(v) + 4).toFixed(1)}" text-anchor="end" font-size="11.5" fill="#444">${esc(tick(v))}</text>`)
  }
  parts.push(`<line x1="${left}" y1="${top + plotH}" x2="${left + plotW}" y2="${top + plotH}" stroke="#444"/>`)
  parts.push(`<line x1="${left}" y1="${top}" x2="${left}" y2="${top + plotH}" stroke="#444"/>`)
  const yMid = top + plotH / 2
  parts.push(`<text x="16" y="${yMid}" text-anchor="middle" font-size="12.5" fill="#333" transform="rotate(-90 16 ${yMid})">${esc(o.yLabel)}</text>`)
  if (o.xLabel) parts.push(`<text x="${left + plotW / 2}" y="${top + plotH + 40}" text-anchor="middle" font-size="12.5" fill="#333">${esc(o.xLabel)}</text>`)
  return { w, h, left, top, plotW, plotH, yMax, step, parts, y, fmt, tick }
}

function refLines(f: Frame, o: ChartOptions): void {
  for (const r of o.refLines ?? []) {
    const yy = f.y(r.value).toFixed(1)
    const color = r.color ?? '#888'
    f.parts.push(`<line x1="${f.left}" y1="${yy}" x2="${f.left + f.plotW}" y2="${yy}" stroke="${color}" stroke-width="1.5" stroke-dasharray="6 4"/>`)
    f.parts.push(`<text x="${f.left + f.plotW - 4}" y="${(f.y(r.value) - 5).toFixed(1)}" text-anchor="end" font-size="11.5" fill="${color}" stroke="#ffffff" stroke-width="3" paint-order="stroke">${esc(r.label)}</text>`)
  }
}

function dash(s: Series): string {
  if (!s.dashed) return ''
  return ` stroke-dasharray="${typeof s.dashed === 'string' ? s.dashed : '6 4'}"`
}

/** Legend items flow left to right and wrap; widths estimated from the text length. */
function legendLayout(o: ChartOptions, width: number): { rows: number; at: Array<{ x: number; row: number }> } {
  const at: Array<{ x: number; row: number }> = []
  let x = 0
  let row = 0
  for (const s of o.series) {
    const itemW = 30 + s.name.length * 6.8 + 22
    if (x > 0 && x + itemW > width) {
      x = 0
      row++
    }
    at.push({ x, row })
    x += itemW
  }
  return { rows: o.series.length > 1 ? row + 1 : 0, at }
}

function legend(f: Frame, o: ChartOptions, kind: 'bar' | 'line'): void {
  if (o.series.length < 2) return
  const base = f.top + f.plotH + (o.xLabel ? 58 : 40)
  const { at } = legendLayout(o, f.plotW)
  o.series.forEach((s, i) => {
    const x = f.left + at[i]!.x
    const yy = base + at[i]!.row * 22
    const color = s.color ?? PALETTE[i % PALETTE.length]
    if (kind === 'bar') f.parts.push(`<rect x="${x}" y="${yy - 10}" width="14" height="12" fill="${color}"/>`)
    else f.parts.push(`<line x1="${x}" y1="${yy - 4}" x2="${x + 22}" y2="${yy - 4}" stroke="${color}" stroke-width="2.5"${dash(s)}/>`)
    f.parts.push(`<text x="${x + (kind === 'bar' ? 20 : 28)}" y="${yy}" font-size="12" fill="#333">${esc(s.name)}</text>`)
  })
}

/** Grouped bars: one group per category, one bar per series. */
export function barChart(o: ChartOptions): string {
  const dataMax = Math.max(0, ...o.series.flatMap((s) => s.values))
  const f = frame(o, dataMax)
  const groups = o.categories.length
  const groupW = f.plotW / groups
  const inner = groupW * 0.78
  const barW = inner / o.series.length
  const showLabels = o.barLabels ?? groups * o.series.length <= 24
  o.categories.forEach((cat, g) => {
    const gx = f.left + g * groupW + (groupW - inner) / 2
    o.series.forEach((s, i) => {
      const v = s.values[g] ?? 0
      const x = gx + i * barW
      const yy = f.y(v)
      const color = s.color ?? PALETTE[(o.series.length === 1 ? g : i) % PALETTE.length]
      f.parts.push(`<rect x="${(x + 1).toFixed(1)}" y="${yy.toFixed(1)}" width="${Math.max(1, barW - 2).toFixed(1)}" height="${(f.top + f.plotH - yy).toFixed(1)}" fill="${color}"><title>${esc(`${s.name}, ${cat}: ${f.fmt(v)}`)}</title></rect>`)
      if (showLabels) {
        // Narrow bars get compact labels (3.4k), so neighbours do not overlap.
        const label = barW < 34 && Math.abs(v) >= 1000 ? `${(v / 1000).toFixed(1)}k` : f.fmt(v)
        f.parts.push(`<text x="${(x + barW / 2).toFixed(1)}" y="${(yy - 4).toFixed(1)}" text-anchor="middle" font-size="${barW < 34 ? 9.5 : barW < 48 ? 10.5 : 11.5}" fill="#222">${esc(label)}</text>`)
      }
    })
    f.parts.push(`<text x="${(f.left + g * groupW + groupW / 2).toFixed(1)}" y="${f.top + f.plotH + 18}" text-anchor="middle" font-size="12" fill="#333">${esc(cat)}</text>`)
  })
  refLines(f, o)
  legend(f, o, 'bar')
  f.parts.push('</svg>')
  return f.parts.join('\n') + '\n'
}

/** Lines over evenly spaced x categories, with a dot at every point. */
export function lineChart(o: ChartOptions): string {
  const dataMax = Math.max(0, ...o.series.flatMap((s) => s.values.filter(Number.isFinite)))
  const f = frame(o, dataMax)
  const n = o.categories.length
  const x = (i: number): number => f.left + (n === 1 ? f.plotW / 2 : 30 + (i * (f.plotW - 60)) / (n - 1))
  o.categories.forEach((cat, i) => {
    f.parts.push(`<text x="${x(i).toFixed(1)}" y="${f.top + f.plotH + 18}" text-anchor="middle" font-size="12" fill="#333">${esc(cat)}</text>`)
  })
  refLines(f, o)
  o.series.forEach((s, si) => {
    const color = s.color ?? PALETTE[si % PALETTE.length]
    const points = s.values.map((v, i) => `${x(i).toFixed(1)},${f.y(v).toFixed(1)}`).join(' ')
    f.parts.push(`<polyline points="${points}" fill="none" stroke="${color}" stroke-width="2.5"${dash(s)}/>`)
    s.values.forEach((v, i) => {
      f.parts.push(`<circle cx="${x(i).toFixed(1)}" cy="${f.y(v).toFixed(1)}" r="3.5" fill="${color}"><title>${esc(`${s.name}, ${o.categories[i]}: ${f.fmt(v)}`)}</title></circle>`)
    })
  })
  legend(f, o, 'line')
  f.parts.push('</svg>')
  return f.parts.join('\n') + '\n'
}
