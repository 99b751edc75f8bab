/**
 * GET /dashboard: one self-contained page (inline CSS and JS, no CDN, no build step) that polls
 * /stats every second and draws the replicas, the ring's M slots coloured by owner, recent
 * events, and the last minutes of request rate and latency. Replica names only ever reach
 * the page through textContent, never as HTML. The inline script is allowed by its hash in
 * the Content-Security-Policy, so nothing else can run on the page.
 */
import { createHash } from 'node:crypto'

const STYLE = `
*{box-sizing:border-box}body{margin:0;font:13px/1.4 system-ui,sans-serif;background:#0f1419;color:#d8dee6}
header{display:flex;gap:16px;align-items:baseline;padding:10px 16px;background:#151b22;border-bottom:1px solid #26303b}
h1{font-size:16px;margin:0}h2{font-size:13px;margin:0 0 6px;color:#9fb0c2;text-transform:uppercase;letter-spacing:.05em}
#status{margin-left:auto}.ok{color:#7bd88f}.bad{color:#ff6b6b}.warn{color:#ffcc66}
main{display:grid;grid-template-columns:minmax(320px,420px) 1fr;gap:12px;padding:12px}
section{background:#151b22;border:1px solid #26303b;border-radius:6px;padding:10px;min-width:0}
#ring{width:100%;aspect-ratio:1}canvas.chart{width:100%;height:150px}
.tablewrap{max-height:520px;overflow:auto}table{border-collapse:collapse;width:100%;font-variant-numeric:tabular-nums}
th,td{padding:3px 6px;text-align:right;border-bottom:1px solid #222b35;white-space:nowrap}th{position:sticky;top:0;background:#151b22;color:#9fb0c2}
td.name,th.name{text-align:left;max-width:220px;overflow:hidden;text-overflow:ellipsis}
.sw{display:inline-block;width:10px;height:10px;border-radius:2px;margin-right:6px;vertical-align:-1px}
#events{max-height:240px;overflow:auto;margin:0;padding:0;list-style:none;font-size:12px}#events li{padding:2px 0;border-bottom:1px solid #1e262f}
.kind{display:inline-block;min-width:64px;font-weight:600}.dim{color:#8a98a8}#summary span{margin-right:14px}
#hover{min-height:1.4em;color:#9fb0c2}
`

const SCRIPT = `
'use strict'
const $ = (id) => document.getElementById(id)
const colors = new Map()
function colorOf(name) {
  let c = colors.get(name)
  if (c) return c
  let h = 2166136261
  for (let i = 0; i < name.length; i++) { h ^= name.charCodeAt(i); h = Math.imul(h, 16777619) >>> 0 }
  c = 'hsl(' + (h % 360) + ',' + (55 + (h >>> 9) % 30) + '%,' + (48 + (h >>> 17) % 16) + '%)'
  colors.set(name, c)
  return c
}
const fmt = (n, d = 0) => (n === null || n === undefined ? '-' : Number(n).toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d }))
function el(tag, text, cls) { const e = document.createElement(tag); if (text !== undefined) e.textContent = text; if (cls) e.className = cls; return e }
let last = null
function drawRing(stats) {
  const cv = $('ring'), size = cv.clientWidth * devicePixelRatio
  if (cv.width !== size) { cv.width = size; cv.height = size }
  const g = cv.getContext('2d'), r = size / 2, owners = stats.ring.owners, names = stats.ring.names, m = stats.ring.slots
  g.clearRect(0, 0, size, size)
  const step = (Math.PI * 2) / m, gap = m <= 1024 ? step * 0.08 : 0
  for (let s = 0; s < m; s++) {
    const a0 = -Math.PI / 2 + s * step
    g.beginPath(); g.arc(r, r, r * 0.96, a0 + gap, a0 + step - gap); g.arc(r, r, r * 0.7, a0 + step - gap, a0 + gap, true); g.closePath()
    g.fillStyle = owners.length ? colorOf(names[owners[s]]) : '#2a323c'; g.fill()
  }
  g.fillStyle = '#d8dee6'; g.textAlign = 'center'; g.textBaseline = 'middle'
  g.font = (r * 0.16) + 'px system-ui'; g.fillText(String(stats.N), r, r - r * 0.07)
  g.font = (r * 0.07) + 'px system-ui'; g.fillStyle = '#9fb0c2'; g.fillText('replicas, ' + m + ' slots', r, r + r * 0.1)
}
function drawChart(id, series, unit) {
  const cv = $(id), w = cv.clientWidth * devicePixelRatio, h = cv.clientHeight * devicePixelRatio
  if (cv.width !== w || cv.height !== h) { cv.width = w; cv.height = h }
  const g = cv.getContext('2d'), pad = 34 * devicePixelRatio
  g.clearRect(0, 0, w, h)
  const pts = series.flatMap((s) => s.values).filter((v) => v !== null)
  const max = Math.max(1e-9, ...pts) * 1.1
  g.strokeStyle = '#26303b'; g.fillStyle = '#8a98a8'; g.font = (10 * devicePixelRatio) + 'px system-ui'; g.textBaseline = 'middle'
  for (let i = 0; i <= 3; i++) { const y = h - 6 - (h - 12) * (i / 3); g.beginPath(); g.moveTo(pad, y); g.lineTo(w, y); g.stroke(); g.fillText(fmt(max * i / 3, max < 10 ? 1 : 0) + unit, 2, y) }
  for (const s of series) {
    const n = s.values.length; if (n < 2) continue
    g.strokeStyle = s.color; g.lineWidth = 1.5 * devicePixelRatio; g.beginPath(); let pen = false
    s.values.forEach((v, i) => { if (v === null) { pen = false; return } const x = pad + (w - pad) * (i / (n - 1)), y = h - 6 - (h - 12) * (v / max); pen ? g.lineTo(x, y) : g.moveTo(x, y); pen = true })
    g.stroke()
  }
}
function render(stats) {
  last = stats
  drawRing(stats)
  const tbody = $('rows'); tbody.replaceChildren()
  let rps = 0, inflight = 0
  for (const r of stats.replicas) {
    rps += r.rps; inflight += r.inflight
    const tr = el('tr'); tr.dataset.replica = r.name
    const name = el('td', undefined, 'name'); const sw = el('span', undefined, 'sw'); sw.style.background = colorOf(r.name); name.append(sw, el('span', r.name)); name.title = r.name
    const state = el('td', r.state, r.state === 'up' ? 'ok' : r.state === 'suspect' ? 'warn' : 'bad')
    const hc = r.health.last ? (r.health.last.ok ? 'ok ' : 'failed ') + fmt(r.health.last.ms, 1) + ' ms' : '-'
    tr.append(name, state, el('td', fmt(r.rps, 1)), el('td', fmt(r.p50Ms, 2)), el('td', fmt(r.p99Ms, 2)), el('td', fmt(r.total)), el('td', fmt(r.requests['5xx'])), el('td', fmt(r.errorTotal)), el('td', fmt(r.inflight)), el('td', fmt(r.slots) + ' (' + fmt(r.share * 100, 1) + '%)'), el('td', String(r.weight)), el('td', hc))
    tbody.append(tr)
  }
  $('summary').replaceChildren(el('span', 'N ' + stats.N), el('span', fmt(rps, 1) + ' req/s'), el('span', fmt(inflight) + ' in flight'), el('span', 'M ' + stats.ring.slots), ...(stats.ring.digest ? [el('span', 'table ' + stats.ring.digest)] : []))
  const ev = $('events'); ev.replaceChildren()
  for (const e of stats.events.slice().reverse()) {
    const li = el('li'); const k = el('span', e.kind, 'kind ' + (e.kind === 'joined' || e.kind === 'restored' ? 'ok' : e.kind === 'suspect' ? 'warn' : e.kind === 'replaced' ? '' : 'bad'))
    li.append(el('span', new Date(e.at).toLocaleTimeString() + ' ', 'dim'), k, el('span', ' ' + e.replica + ': ' + e.detail)); ev.append(li)
  }
  const h = stats.history
  drawChart('rate', [{ values: h.map((p) => p.rps), color: '#6cb6ff' }, { values: h.map((p) => p.errorsPerSecond), color: '#ff6b6b' }], '')
  drawChart('latency', [{ values: h.map((p) => p.p50Ms), color: '#7bd88f' }, { values: h.map((p) => p.p99Ms), color: '#ffcc66' }], ' ms')
  $('status').textContent = 'live · ' + new Date(stats.time).toLocaleTimeString(); $('status').className = 'ok'
}
$('ring').addEventListener('mousemove', (e) => {
  if (!last || !last.ring.owners.length) return
  const b = e.target.getBoundingClientRect(), x = e.clientX - b.left - b.width / 2, y = e.clientY - b.top - b.height / 2
  let a = Math.atan2(y, x) + Math.PI / 2; if (a < 0) a += Math.PI * 2
  const slot = Math.floor((a / (Math.PI * 2)) * last.ring.slots) % last.ring.slots
  $('hover').textContent = 'slot ' + slot + ': ' + last.ring.names[last.ring.owners[slot]]
})
async function poll() {
  try {
    const res = await fetch('stats', { cache: 'no-store' })
    if (!res.ok) throw new Error('HTTP ' + res.status)
    render(await res.json())
  } catch (err) {
    $('status').textContent = 'disconnected (' + err.message + '), retrying'; $('status').className = 'bad'
  }
  setTimeout(poll, 1000)
}
poll()
`

const BODY = `<header><h1>ring-balancer</h1><div id="summary"></div><div id="status" class="warn">connecting…</div></header>
<main>
<section><h2>Ring: slot owners</h2><canvas id="ring"></canvas><div id="hover"></div></section>
<section><h2>Replicas</h2><div class="tablewrap"><table><thead><tr><th class="name">replica</th><th>state</th><th>req/s</th><th>p50 ms</th><th>p99 ms</th><th>requests</th><th>5xx</th><th>errors</th><th>in flight</th><th>slots</th><th>weight</th><th>last check</th></tr></thead><tbody id="rows"></tbody></table></div></section>
<section><h2>Requests per second <span class="dim">(red: upstream errors)</span></h2><canvas id="rate" class="chart"></canvas>
<h2>Latency <span class="dim">(green p50, yellow p99)</span></h2><canvas id="latency" class="chart"></canvas></section>
<section><h2>Membership and health events</h2><ul id="events"></ul></section>
</main>`

export const DASHBOARD_HTML = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>ring-balancer dashboard</title><link rel="icon" href="data:,"><style>${STYLE}</style></head>
<body>${BODY}<script>${SCRIPT}</script></body></html>
`

const scriptHash = createHash('sha256').update(SCRIPT).digest('base64')

/** Headers for the page: only its own script and styles run, it talks only to its own origin. */
export const DASHBOARD_HEADERS: Readonly<Record<string, string>> = Object.freeze({
  'content-type': 'text/html; charset=utf-8',
  'content-security-policy': `default-src 'none'; script-src 'sha256-${scriptHash}'; style-src 'unsafe-inline'; connect-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'`,
  'x-content-type-options': 'nosniff',
  'cache-control': 'no-store',
})
