/**
 * `npm run analysis`: SPEC section 7, with real requests through the real balancer
 * (dist/src/main.js, which starts its own replicas), counting which replica answered each
 * request from its `/home` answer ("Hello from Server: X").
 *
 *   A-1  10,000 asynchronous requests on N = 3: requests per server (bar chart per preset).
 *   A-2  N = 2..6, 10,000 requests each: mean, max, min and standard deviation of the load
 *        per server (line chart per preset).
 *   A-3  recovery after a replica is killed: bench/recovery.ts when present (see the hook in
 *        bench/analysis-kit.ts); skipped otherwise.
 *   A-4  every hash preset side by side: the same charts per preset, the busiest server's
 *        share for every N, and the share of keys that move when a server is added or removed.
 *
 * The balancer runs with `--key query:id` and every run sends the same 10,000 request ids
 * (6-digit, like the assignment's random ids, from a seeded generator), so runs are
 * reproducible and comparable, and a key's move between runs is a real move.
 * Writes docs/analysis/analysis.md, analysis.json and the SVG charts.
 *
 *   npm run analysis -- [--requests 10000] [--presets default,linear] [--seed 1] [--out DIR]
 *   npm run analysis -- --replot     (charts and analysis.md again from analysis.json)
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { cpus } from 'node:os'
import { join, relative } from 'node:path'
import { admin, sendRequests, type AnalysisContext, type Hits, type RecoverySection, type SectionResult } from './analysis-kit.js'
import { root, startMain } from './procs.js'
import { mean, round, seededRandom, stddev } from './stats.js'
import { barChart, lineChart, PALETTE } from './svg.js'
import { HashRing } from '../src/ring/ring.js'
import { HASH_PRESET_NAMES } from '../src/ring/hashes.js'

interface Preset {
  name: string
  hash: string
  formula: string
}

/** What each known preset computes, for the tables and chart subtitles. */
const FORMULAS: Record<string, string> = {
  default: 'H = fmix32(id) mod M; slots assigned to hostnames by a capacity-capped rendezvous table (≤ 1.05 × fair share), no virtual servers',
  ring: 'H = fmix32(id) mod M; Φ = fmix32(FNV-1a("hostname#j")) mod M (a plain well-mixed ring)',
  assignment: 'H(i) = i² + 2i + 17; Φ(i, j) = i² + j² + 2j + 25',
  quadratic: 'H(i) = 2i² + i + 17; Φ(i, j) = i + j + 2j² + 25',
  linear: 'H(i) = 3i + 17; Φ(i, j) = i + 3j + 25',
}

/** Every preset the ring offers (a new one shows up here by itself), plus one custom formula. */
const PRESETS: Preset[] = [
  ...HASH_PRESET_NAMES.map((name) => ({ name, hash: name, formula: FORMULAS[name] ?? `the \`${name}\` preset (src/ring/hashes.ts)` })),
  {
    name: 'custom',
    hash: 'custom:h=0,37,11;phi=3,29,1,61,25',
    formula: 'an example of --hash custom:h=0,37,11;phi=3,29,1,61,25 — H(i) = 37i + 11; Φ(i, j) = 3i² + 29i + j² + 61j + 25',
  },
]

const N_RANGE = [2, 3, 4, 5, 6]

interface Options {
  requests: number
  presets: Preset[]
  seed: number
  out: string
  /** Redraw charts and analysis.md from the last analysis.json, without sending requests. */
  replot: boolean
}

function parseOptions(argv: string[]): Options {
  const o: Options = { requests: 10_000, presets: PRESETS, seed: 1, out: join(root, 'docs', 'analysis'), replot: false }
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!
    if (arg === '--replot') {
      o.replot = true
      continue
    }
    const v = argv[++i]
    if (v === undefined) throw new Error(`${arg} needs a value`)
    if (arg === '--requests') o.requests = Number(v)
    else if (arg === '--seed') o.seed = Number(v)
    else if (arg === '--out') o.out = v
    else if (arg === '--presets') {
      const names = v.split(',').map((s) => s.trim())
      o.presets = names.map((n) => {
        const p = PRESETS.find((x) => x.name === n)
        if (!p) throw new Error(`unknown preset ${n}; use ${PRESETS.map((x) => x.name).join(',')}`)
        return p
      })
    } else throw new Error(`unknown flag ${arg}; use --requests N --presets LIST --seed S --out DIR --replot`)
  }
  if (!(Number.isInteger(o.requests) && o.requests >= 100)) throw new Error('--requests must be an integer >= 100')
  return o
}

interface LoadStats {
  n: number
  servers: string[]
  counts: number[]
  mean: number
  max: number
  min: number
  std: number
  /** The busiest server's share of all answered requests, in percent. */
  maxSharePct: number
  errors: number
}

interface Moves {
  /** Keys (of all sent) whose server changed when Server 4 joined N = 3. */
  addMovedPct: number
  /** Of those, the share that went to the new server (100 % for a consistent ring). */
  addToNewPct: number
  /** The new server's share after joining: the ideal number of moves. */
  newServerSharePct: number
  /** Keys whose server changed when Server 2 left (N = 4 -> 3). */
  rmMovedPct: number
  /** Of those, the share that had been on the removed server (100 % for a consistent ring). */
  rmFromRemovedPct: number
  /** The removed server's share before leaving: the ideal number of moves. */
  removedServerSharePct: number
}

interface RingFacts {
  /** `table`: slots assigned to servers directly, no virtual servers. */
  kind: string
  /** Slots occupied by the virtual servers of each server, N = 3. */
  vnodeSlots: Record<string, readonly number[]>
  /** Slots of the M owned by each server (nearest occupied slot clockwise). */
  slotShare: Record<string, number>
  /** Distinct slots the request ids land on. */
  requestSlots: number
  slots: number
}

interface PresetResult {
  preset: Preset
  loads: LoadStats[]
  moves?: Moves
  ring: RingFacts
}

function loadStats(n: number, servers: string[], hits: Hits): LoadStats {
  const counts = servers.map((s) => hits.counts.get(s) ?? 0)
  const total = counts.reduce((a, b) => a + b, 0)
  return {
    n,
    servers,
    counts,
    mean: mean(counts),
    max: Math.max(...counts),
    min: Math.min(...counts),
    std: stddev(counts),
    maxSharePct: total ? (100 * Math.max(...counts)) / total : 0,
    errors: hits.errors,
  }
}

function pctOf(part: number, whole: number): number {
  return whole === 0 ? 0 : (100 * part) / whole
}

async function replicasOf(url: string): Promise<string[]> {
  const rep = await admin(url, 'GET', '/rep')
  return (rep.json.message as { replicas: string[] }).replicas
}

async function runPreset(p: Preset, ids: number[], log: (s: string) => void): Promise<PresetResult> {
  const loads: LoadStats[] = []
  let moves: Moves | undefined
  for (const n of N_RANGE) {
    const balancer = await startMain(['--replicas', String(n), '--hash', p.hash, '--key', 'query:id'])
    try {
      const servers = await replicasOf(balancer.url)
      const hits = await sendRequests(balancer.url, ids)
      const stats = loadStats(n, servers, hits)
      loads.push(stats)
      log(`  ${p.name} N=${n}: ${stats.counts.join(' / ')} (max ${stats.maxSharePct.toFixed(1)} %, ${hits.errors} errors, ${Math.round(hits.ms)} ms)`)
      if (n === 3) moves = await measureMoves(balancer.url, ids, hits, log)
    } finally {
      await balancer.stop()
    }
  }
  return { preset: p, loads, ...(moves ? { moves } : {}), ring: ringFacts(p, ids) }
}

/** N = 3: add `Server 4`, send the same ids again, then remove `Server 2` and send again. */
async function measureMoves(url: string, ids: number[], before: Hits, log: (s: string) => void): Promise<Moves> {
  const added = await admin(url, 'POST', '/add', { n: 1, hostnames: ['Server 4'] })
  if (added.status !== 200) throw new Error(`/add failed: ${JSON.stringify(added.json)}`)
  const afterAdd = await sendRequests(url, ids)
  const removed = await admin(url, 'DELETE', '/rm', { n: 1, hostnames: ['Server 2'] })
  if (removed.status !== 200) throw new Error(`/rm failed: ${JSON.stringify(removed.json)}`)
  const afterRm = await sendRequests(url, ids)
  let addMoved = 0
  let addToNew = 0
  let rmMoved = 0
  let rmFromRemoved = 0
  for (let k = 0; k < ids.length; k++) {
    const a = before.servers[k]!
    const b = afterAdd.servers[k]!
    const c = afterRm.servers[k]!
    if (a === '' || b === '' || c === '') continue
    if (a !== b) {
      addMoved++
      if (b === 'Server 4') addToNew++
    }
    if (b !== c) {
      rmMoved++
      if (b === 'Server 2') rmFromRemoved++
    }
  }
  const total = ids.length
  const m: Moves = {
    addMovedPct: pctOf(addMoved, total),
    addToNewPct: pctOf(addToNew, addMoved),
    newServerSharePct: pctOf(afterAdd.counts.get('Server 4') ?? 0, total),
    rmMovedPct: pctOf(rmMoved, total),
    rmFromRemovedPct: pctOf(rmFromRemoved, rmMoved),
    removedServerSharePct: pctOf(afterAdd.counts.get('Server 2') ?? 0, total),
  }
  log(
    `  moves: add Server 4 moved ${m.addMovedPct.toFixed(1)} % (its share ${m.newServerSharePct.toFixed(1)} %), ` +
      `remove Server 2 moved ${m.rmMovedPct.toFixed(1)} % (its share ${m.removedServerSharePct.toFixed(1)} %)`,
  )
  return m
}

/** The ring's shape for N = 3, computed with the same HashRing the balancer uses. */
function ringFacts(p: Preset, ids: number[]): RingFacts {
  const ring = new HashRing<string>({ slots: 512, hash: p.hash })
  for (let i = 1; i <= 3; i++) ring.add(`Server ${i}`, `Server ${i}`)
  const vnodeSlots: Record<string, readonly number[]> = {}
  // A table preset has no virtual servers (slotsOf would list every slot it owns).
  for (const name of ring.names()) vnodeSlots[name] = ring.hash.kind === 'table' ? [] : [...ring.slotsOf(name)].sort((a, b) => a - b)
  const slotShare = Object.fromEntries(ring.shares())
  const requestSlots = new Set(ids.map((id) => ring.slotOf(id))).size
  return { kind: ring.hash.kind, vnodeSlots, slotShare, requestSlots, slots: ring.slots }
}

function charts(results: PresetResult[], o: Options, write: (file: string, svg: string) => string): string[] {
  const files: string[] = []
  const pct = (v: number): string => `${v.toFixed(v < 10 ? 1 : 0)} %`
  for (const r of results) {
    const a1 = r.loads.find((l) => l.n === 3)!
    files.push(
      write(
        `a1-${r.preset.name}.svg`,
        barChart({
          title: `A-1: ${o.requests.toLocaleString('en-US')} requests on N = 3 — ${r.preset.name}`,
          subtitle: r.preset.formula.length > 90 ? r.preset.formula.slice(r.preset.formula.indexOf('H(')) : r.preset.formula,
          categories: a1.servers,
          series: [{ name: 'requests', values: a1.counts }],
          yLabel: 'requests served',
          refLines: [{ value: o.requests / 3, label: `even: ${Math.round(o.requests / 3).toLocaleString('en-US')}` }],
        }),
      ),
    )
    files.push(
      write(
        `a2-${r.preset.name}.svg`,
        lineChart({
          title: `A-2: load per server for N = 2..6 — ${r.preset.name}`,
          subtitle: `${o.requests.toLocaleString('en-US')} requests per N; mean = ${o.requests.toLocaleString('en-US')} / N by definition, the spread is what matters`,
          categories: r.loads.map((l) => `N = ${l.n}`),
          series: [
            { name: 'max', values: r.loads.map((l) => l.max), color: PALETTE[2] },
            { name: 'mean', values: r.loads.map((l) => l.mean), color: PALETTE[0] },
            { name: 'min', values: r.loads.map((l) => l.min), color: PALETTE[4] },
            { name: 'standard deviation', values: r.loads.map((l) => l.std), color: PALETTE[6], dashed: true },
          ],
          yLabel: 'requests per server',
          yMax: o.requests,
        }),
      ),
    )
  }
  files.push(
    write(
      'a1-presets.svg',
      barChart({
        title: `A-1/A-4: requests per server on N = 3, every preset`,
        subtitle: `${o.requests.toLocaleString('en-US')} requests through the balancer per preset; the dashed line is an even split`,
        categories: results.map((r) => r.preset.name),
        series: [0, 1, 2].map((i) => ({ name: `Server ${i + 1}`, values: results.map((r) => r.loads.find((l) => l.n === 3)!.counts[i] ?? 0) })),
        yLabel: 'requests served',
        refLines: [{ value: o.requests / 3, label: 'even' }],
        barLabels: true,
      }),
    ),
  )
  files.push(
    write(
      'a4-max-share.svg',
      lineChart({
        title: 'A-4: share of requests on the busiest server',
        subtitle: `${o.requests.toLocaleString('en-US')} requests per point; lower is better, the dashed line (100 / N) is perfect balance`,
        categories: N_RANGE.map((n) => `N = ${n}`),
        series: [
          // One dotted line: linear and quadratic lie on top of each other.
          ...results.map((r, i) => ({ name: r.preset.name, values: r.loads.map((l) => l.maxSharePct), color: PALETTE[i], ...(i === 3 ? { dashed: '2 4' } : {}) })),
          { name: 'even (100 / N)', values: N_RANGE.map((n) => 100 / n), color: '#777', dashed: true },
        ],
        yLabel: 'busiest server, % of requests',
        yMax: 100,
        format: (v) => `${Math.round(v)} %`,
      }),
    ),
  )
  const withMoves = results.filter((r) => r.moves)
  if (withMoves.length > 0) {
    files.push(
      write(
        'a4-moves.svg',
        barChart({
          title: 'A-4: share of keys that move when a server joins or leaves',
          subtitle: 'ideal: only the keys the joining server takes / the leaving server had (≈ 25 % of 4 servers)',
          categories: withMoves.map((r) => r.preset.name),
          series: [
            { name: 'moved when Server 4 joined N = 3', values: withMoves.map((r) => r.moves!.addMovedPct), color: PALETTE[0] },
            { name: 'moved when Server 2 left again', values: withMoves.map((r) => r.moves!.rmMovedPct), color: PALETTE[1] },
          ],
          yLabel: '% of request keys',
          refLines: [{ value: 25, label: 'even share of 4 servers: 25 %' }],
          format: pct,
          tickFormat: (v) => `${Math.round(v)} %`,
          barLabels: true,
        }),
      ),
    )
  }
  return files
}

function markdown(results: PresetResult[], o: Options, files: string[], recovery: SectionResult | undefined, seconds: number, date: string): string {
  const f1 = (v: number): string => v.toFixed(1)
  const int = (v: number): string => Math.round(v).toLocaleString('en-US')
  const lines: string[] = [
    '# Load distribution analysis (SPEC section 7)',
    '',
    `Generated by \`npm run analysis\` on ${date.slice(0, 16).replace('T', ' ')} UTC ` +
      `(${cpus().length} x ${cpus()[0]?.model ?? 'CPU'}, Node ${process.version}) in ${Math.round(seconds)} s. ` +
      `Every number is a count of real answers: ${o.requests.toLocaleString('en-US')} asynchronous GET /home requests through \`dist/src/main.js --key query:id\` ` +
      `(the same seeded 6-digit request ids, seed ${o.seed}, for every run), M = 512 slots; the presets with virtual servers use K = 9 and linear probing.`,
    '',
    '| preset | formulas |',
    '|---|---|',
    ...results.map((r) => `| ${r.preset.name} | ${r.preset.formula.replace(/\|/g, '\\|')} |`),
    '',
    '## A-1: requests per server, N = 3',
    '',
    '| preset | Server 1 | Server 2 | Server 3 | busiest server | errors |',
    '|---|---:|---:|---:|---:|---:|',
    ...results.map((r) => {
      const l = r.loads.find((x) => x.n === 3)!
      return `| ${r.preset.name} | ${l.counts.map(int).join(' | ')} | ${f1(l.maxSharePct)} % | ${l.errors} |`
    }),
    '',
    ...results.map((r) => `![A-1 ${r.preset.name}](a1-${r.preset.name}.svg)`),
    '',
    '## A-2: N = 2..6',
    '',
    `Mean load per server is ${o.requests.toLocaleString('en-US')} / N whatever the hash does; max, min and the standard deviation show the balance.`,
    '',
    '| preset | N | mean | max | min | std dev | busiest server | errors |',
    '|---|---:|---:|---:|---:|---:|---:|---:|',
    ...results.flatMap((r) => r.loads.map((l) => `| ${r.preset.name} | ${l.n} | ${int(l.mean)} | ${int(l.max)} | ${int(l.min)} | ${int(l.std)} | ${f1(l.maxSharePct)} % | ${l.errors} |`)),
    '',
    ...results.map((r) => `![A-2 ${r.preset.name}](a2-${r.preset.name}.svg)`),
    '',
  ]
  if (recovery) lines.push(recovery.markdown.trim(), '')
  else lines.push('## A-3: recovery after a replica is killed', '', '_Not measured by this run: bench/recovery.ts (the health checker\'s part, see the hook in bench/analysis-kit.ts) is not there yet._', '')
  lines.push(
    '## A-4: every preset side by side',
    '',
    '![requests per server, every preset](a1-presets.svg)',
    '',
    '![busiest server share](a4-max-share.svg)',
    '',
  )
  const withMoves = results.filter((r) => r.moves)
  if (withMoves.length > 0) {
    lines.push(
      '### Keys that move when membership changes',
      '',
      'Start with N = 3, add `Server 4`, send the same ids again, then remove `Server 2` and send them again.',
      'A consistent ring moves only the keys the new server takes (or the removed server had); the "…" columns check that. ' +
        'The default table may move a few more: keeping every server within 1.05 × its fair share can shift a handful of slots between the others.',
      '',
      '| preset | moved on add | … to the new server | new server\'s share | moved on remove | … from the removed server | removed server\'s share |',
      '|---|---:|---:|---:|---:|---:|---:|',
      ...withMoves.map((r) => {
        const m = r.moves!
        return `| ${r.preset.name} | ${f1(m.addMovedPct)} % | ${f1(m.addToNewPct)} % | ${f1(m.newServerSharePct)} % | ${f1(m.rmMovedPct)} % | ${f1(m.rmFromRemovedPct)} % | ${f1(m.removedServerSharePct)} % |`
      }),
      '',
      '![keys moved](a4-moves.svg)',
      '',
    )
  }
  lines.push(
    '### Why the formula presets skew (N = 3, computed with the balancer\'s HashRing)',
    '',
    '| preset | slots of the virtual servers | slots owned (of 512) | distinct request slots hit |',
    '|---|---|---|---:|',
    ...results.map((r) => {
      const names = Object.keys(r.ring.vnodeSlots)
      const all = names.flatMap((n) => r.ring.vnodeSlots[n]!)
      const span = all.length === 0 ? '— (a table: no virtual servers)' : `${Math.min(...all)}–${Math.max(...all)}`
      return `| ${r.preset.name} | ${span} | ${names.map((n) => `${n.replace('Server ', 'S')}: ${r.ring.slotShare[n]}`).join(', ')} | ${r.ring.requestSlots} |`
    }),
    '',
    'Φ grows slowly in the server id i and the virtual-server index j (both small), so all the virtual servers ' +
      'of the first few servers land in one short stretch of the 512 slots. Every slot clockwise of that stretch, ' +
      'around the ring to its start, belongs to the server sitting at its first slot: one server owns most of the ' +
      'ring, whatever H does. The assignment\'s H makes it worse: i² + 2i + 17 = (i + 1)² + 16, and squares modulo ' +
      '512 take fewer than a fifth of the values, unevenly, so requests land on few slots (last column). A well-mixed ' +
      'hash of the hostname (`ring`) scatters the points, but 9 random points per server still leave arcs of uneven ' +
      'length; the `default` assigns slots to hostnames directly, capped at 1.05 × the fair share.',
    '',
    `Charts (in ${relative(root, o.out) || '.'}/): ${files.map((f) => `\`${f}\``).join(', ')}.`,
    '',
  )
  return lines.join('\n')
}

async function main(): Promise<void> {
  const o = parseOptions(process.argv.slice(2))
  const started = Date.now()
  const rand = seededRandom(o.seed)
  const ids = Array.from({ length: o.requests }, () => 100000 + Math.floor(rand() * 900000))
  mkdirSync(o.out, { recursive: true })
  const write = (file: string, svg: string): string => {
    writeFileSync(join(o.out, file), svg)
    return file
  }
  const log = (line: string): void => console.log(line)
  // Bounded: far more than the ~2-3 minutes a run takes on two cores.
  const watchdog = setTimeout(() => {
    console.error('analysis: still running after 15 min; giving up')
    process.exit(1)
  }, 15 * 60_000)
  watchdog.unref()

  let results: PresetResult[] = []
  let recovery: SectionResult | undefined
  let date = new Date().toISOString()
  let seconds = 0
  if (o.replot) {
    const last = JSON.parse(readFileSync(join(o.out, 'analysis.json'), 'utf8')) as {
      date: string
      seconds: number
      requests: number
      seed: number
      presets: PresetResult[]
      recovery?: SectionResult
    }
    // The ring's shape is recomputed (it is cheap and deterministic); the counts are the run's.
    results = last.presets.map((r) => ({ ...r, ring: ringFacts(r.preset, ids) }))
    recovery = last.recovery
    o.requests = last.requests
    o.seed = last.seed
    date = last.date
    seconds = last.seconds
  } else {
    console.log(`analysis: ${o.presets.length} presets x N = ${N_RANGE.join(',')} x ${o.requests} requests, plus add/remove at N = 3`)
    for (const p of o.presets) {
      console.log(`${p.name}: ${p.formula}`)
      results.push(await runPreset(p, ids, log))
    }
    const recoveryModule = join(root, 'dist', 'bench', 'recovery.js')
    if (existsSync(recoveryModule)) {
      console.log('A-3: recovery (bench/recovery.ts)')
      const mod = (await import(recoveryModule)) as { recovery?: RecoverySection }
      if (typeof mod.recovery !== 'function') throw new Error('bench/recovery.ts must export recovery(ctx)')
      const ctx: AnalysisContext = { startMain, writeChart: write, log, budgetSeconds: 180 }
      recovery = await mod.recovery(ctx)
    } else {
      console.log('A-3: skipped (bench/recovery.ts is not there yet)')
    }
  }

  const files = charts(results, o, write)
  if (!o.replot) seconds = (Date.now() - started) / 1000
  const md = markdown(results, o, files, recovery, seconds, date)
  writeFileSync(join(o.out, 'analysis.md'), md)
  const json = {
    date,
    seconds: Math.round(seconds),
    requests: o.requests,
    seed: o.seed,
    presets: results.map((r) => ({
      ...r,
      loads: r.loads.map((l) => ({ ...l, mean: round(l.mean, 1), std: round(l.std, 1), maxSharePct: round(l.maxSharePct, 2) })),
    })),
    ...(recovery ? { recovery } : {}),
  }
  writeFileSync(join(o.out, 'analysis.json'), JSON.stringify(json, null, 2) + '\n')
  console.log(`\nwrote ${relative(root, join(o.out, 'analysis.md'))}, analysis.json and ${files.length} charts in ${Math.round((Date.now() - started) / 1000)} s`)
  clearTimeout(watchdog)
}

main().catch((err: Error) => {
  console.error(`analysis: ${err.stack ?? err.message}`)
  process.exit(1)
})
