/**
 * Routing quality of every hash preset, computed from the owner table the balancer itself
 * builds (HashRing.ownerTable()), over many random hostname sets:
 *
 *   balance   the busiest server's slots / its fair share M/N (1.00 is perfect);
 *   add       slots whose owner changed when one server joins N, / the ideal M/(N+1);
 *   remove    slots whose owner changed when one of N+1 servers leaves, / the slots it owned.
 *
 * Every hostname set mixes the three shapes of names a balancer sees (`Server 12`,
 * `replica-3f9a2c` as /add picks them, and free-form DNS-like labels), from a seeded
 * generator, so runs are reproducible. No network, no replicas: this is the ring alone.
 *
 *   npx tsc -p . && node dist/bench/ring-quality.js [--sets 200] [--slots 512] [--max-n 20]
 *     [--presets default,ring,assignment] [--seed 1] [--out DIR]   (--out: JSON, Markdown and SVG charts there)
 */
import { mkdirSync, writeFileSync } from 'node:fs'
import { relative, resolve } from 'node:path'
import { HashRing } from '../src/ring/ring.js'
import { seededRandom } from './stats.js'
import { parseValueFlags } from './args.js'
import { lineChart, PALETTE } from './svg.js'

interface Options {
  sets: number
  slots: number
  maxN: number
  presets: string[]
  seed: number
  out: string | undefined
}

export interface Row {
  n: number
  /** Busiest server's share / fair share: mean over sets and the worst set. */
  balanceMean: number
  balanceMax: number
  addMean: number
  addMax: number
  removeMean: number
  removeMax: number
}

function parseOptions(argv: string[]): Options {
  const o: Options = { sets: 200, slots: 512, maxN: 20, presets: ['default', 'ring', 'assignment', 'quadratic', 'linear'], seed: 1, out: undefined }
  parseValueFlags(
    argv,
    {
      '--sets': (v) => (o.sets = Number(v)),
      '--slots': (v) => (o.slots = Number(v)),
      '--max-n': (v) => (o.maxN = Number(v)),
      '--seed': (v) => (o.seed = Number(v)),
      '--presets': (v) => (o.presets = v.split(',').map((s) => s.trim())),
      '--out': (v) => (o.out = v),
    },
    '--sets --slots --max-n --presets --seed --out',
  )
  return o
}

/** A hostname in one of three shapes, from `rand`. */
export function randomName(rand: () => number): string {
  const shape = rand()
  if (shape < 0.3) return `Server ${1 + Math.floor(rand() * 100_000)}`
  if (shape < 0.6) return `replica-${Math.floor(rand() * 0x1000000).toString(16).padStart(6, '0')}`
  const letters = 'abcdefghijklmnopqrstuvwxyz'
  const chars = 'abcdefghijklmnopqrstuvwxyz0123456789-'
  let name = letters[Math.floor(rand() * 26)]!
  const length = 2 + Math.floor(rand() * 14)
  for (let i = 0; i < length; i++) name += chars[Math.floor(rand() * chars.length)]!
  return name + letters[Math.floor(rand() * 26)]!
}

function ownersOf(hash: string, slots: number, names: readonly string[]): string[] {
  const ring = new HashRing<null>({ hash, slots })
  for (const name of names) ring.add(name, null)
  const list = ring.names()
  return Array.from(ring.ownerTable(), (i) => list[i]!)
}

function changed(a: readonly string[], b: readonly string[]): number {
  let n = 0
  for (let s = 0; s < a.length; s++) if (a[s] !== b[s]) n++
  return n
}

/** One preset over N = 2..maxN. */
export function measure(hash: string, o: Pick<Options, 'sets' | 'slots' | 'maxN' | 'seed'>): Row[] {
  const rows: Row[] = []
  const m = o.slots
  for (let n = 2; n <= o.maxN; n++) {
    const rand = seededRandom(o.seed * 1000 + n)
    let balanceSum = 0
    let balanceMax = 0
    let addSum = 0
    let addMax = 0
    let removeSum = 0
    let removeMax = 0
    for (let k = 0; k < o.sets; k++) {
      const set = new Set<string>()
      while (set.size < n + 1) set.add(randomName(rand))
      const all = [...set]
      const base = all.slice(0, n)
      const before = ownersOf(hash, m, base)
      const counts = new Map<string, number>()
      for (const owner of before) counts.set(owner, (counts.get(owner) ?? 0) + 1)
      const balance = Math.max(...counts.values()) / (m / n)
      balanceSum += balance
      balanceMax = Math.max(balanceMax, balance)
      // Add one, in a random join position: the table must not care.
      const joined = [...base]
      joined.splice(Math.floor(rand() * (n + 1)), 0, all[n]!)
      const after = ownersOf(hash, m, joined)
      const add = changed(before, after) / (m / (n + 1))
      addSum += add
      addMax = Math.max(addMax, add)
      // Remove a random one of the N + 1.
      const victim = joined[Math.floor(rand() * joined.length)]!
      const own = after.filter((x) => x === victim).length
      const left = ownersOf(hash, m, joined.filter((x) => x !== victim))
      const remove = own === 0 ? 1 : changed(after, left) / own
      removeSum += remove
      removeMax = Math.max(removeMax, remove)
    }
    const sets = o.sets
    rows.push({ n, balanceMean: balanceSum / sets, balanceMax, addMean: addSum / sets, addMax, removeMean: removeSum / sets, removeMax })
  }
  return rows
}

function f2(v: number): string {
  return v.toFixed(2)
}

function main(): void {
  const o = parseOptions(process.argv.slice(2))
  const started = Date.now()
  const results: { preset: string; rows: Row[] }[] = []
  for (const preset of o.presets) {
    const rows = measure(preset, o)
    results.push({ preset, rows })
    const worst = (key: keyof Row) => Math.max(...rows.map((r) => r[key]))
    console.log(
      `${preset.padEnd(10)} busiest/fair: worst mean ${f2(worst('balanceMean'))}, worst ${f2(worst('balanceMax'))} | ` +
        `add: worst mean ${f2(worst('addMean'))}, worst ${f2(worst('addMax'))} | remove: worst mean ${f2(worst('removeMean'))}, worst ${f2(worst('removeMax'))}`,
    )
  }
  const lines = [
    `# Ring quality: balance and slots moved (M = ${o.slots}, ${o.sets} random hostname sets per N, seed ${o.seed})`,
    '',
    'Computed from HashRing.ownerTable() by `node dist/bench/ring-quality.js`. balance = busiest server\'s slots / (M/N);',
    'add = slots that changed owner when one server joined N servers / (M/(N+1)); remove = slots that changed owner when',
    'one of N+1 servers left / the slots it owned. 1.00 is ideal for all three. "mean" is over the hostname sets, "max" the worst set.',
    '',
    '| preset | N | balance mean | balance max | add mean | add max | remove mean | remove max |',
    '|---|---:|---:|---:|---:|---:|---:|---:|',
    ...results.flatMap(({ preset, rows }) =>
      rows.map((r) => `| ${preset} | ${r.n} | ${f2(r.balanceMean)} | ${f2(r.balanceMax)} | ${f2(r.addMean)} | ${f2(r.addMax)} | ${f2(r.removeMean)} | ${f2(r.removeMax)} |`),
    ),
    '',
  ]
  if (o.out) {
    const dir = resolve(o.out)
    mkdirSync(dir, { recursive: true })
    writeFileSync(resolve(dir, 'ring-quality.json'), JSON.stringify({ slots: o.slots, sets: o.sets, seed: o.seed, results }, null, 2) + '\n')
    writeFileSync(resolve(dir, 'ring-quality.md'), lines.join('\n'))
    const categories = results[0]!.rows.map((r) => String(r.n))
    // The formula presets are off any useful scale (busiest 7-13x fair): they stay in the table.
    const drawn = results.filter(({ rows }) => Math.max(...rows.map((r) => r.balanceMean)) < 3)
    const left = results.filter((r) => !drawn.includes(r)).map((r) => r.preset)
    const note = left.length > 0 ? ` (${left.join(', ')}: off the scale)` : ''
    const chart = (file: string, title: string, subtitle: string, key: keyof Row, yLabel: string, ref: string, xLabel: string, target: number): void => {
      writeFileSync(
        resolve(dir, file),
        lineChart({
          title,
          subtitle,
          categories,
          xLabel,
          series: [
            ...drawn.map(({ preset, rows }, i) => ({ name: preset, values: rows.map((r) => r[key]), color: PALETTE[i] })),
            { name: ref, values: categories.map(() => 1), color: '#777', dashed: true },
          ],
          yLabel,
          refLines: [{ value: target, label: `target ${target}x`, color: '#e15759' }],
          format: (v) => `${v.toFixed(2)}x`,
        }),
      )
    }
    chart('ring-balance.svg', `Busiest server's slots / fair share (M = ${o.slots})`, `mean of ${o.sets} hostname sets per N; 1.0 = M/N${note}`, 'balanceMean', 'busiest / fair share', 'perfect', 'N servers', 1.05)
    chart('ring-moves-add.svg', 'Slots that change owner when one server joins', `mean of ${o.sets} hostname sets per N; ideal = M/(N+1)${note}`, 'addMean', 'moved / ideal', 'ideal', 'N servers before the join', 1.5)
    chart('ring-moves-remove.svg', 'Slots that change owner when one server leaves', `mean of ${o.sets} hostname sets per N; ideal = the leaver's slots${note}`, 'removeMean', 'moved / ideal', 'ideal', 'N servers after the leave', 1.5)
    console.log(`wrote ${relative(process.cwd(), dir) || '.'}/ring-quality.{md,json}, ring-balance.svg, ring-moves-add.svg, ring-moves-remove.svg`)
  } else {
    console.log(lines.slice(6).join('\n'))
  }
  console.log(`(${((Date.now() - started) / 1000).toFixed(1)} s)`)
}

main()
