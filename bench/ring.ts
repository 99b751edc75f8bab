/**
 * Micro-benchmark of the hash ring (not a test): lookups per second through pick(), and the
 * cost of a membership change (add / remove one member, each an O(M) table rebuild), for
 * M = 512 and M = 65,536 with 10 members.
 *
 *   npx tsc -p . && node dist/bench/ring.js
 *
 * Each case runs in its own child process, so one case's JIT feedback (say, a polymorphic
 * hash call site) cannot slow down the next; a balancer only ever has one ring.
 */
import { execFileSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { HashRing } from '../src/ring/ring.js'

interface Pool {
  readonly n: number
}

const MEMBERS = 10
const LOOKUPS = 20_000_000
const IDS = 1 << 16 // a power of two, so the id index is a mask, not a modulo

function now(): number {
  return Number(process.hrtime.bigint()) / 1e6 // ms
}

// Deterministic 6-digit ids, like the assignment's random request ids.
const ids = new Float64Array(IDS)
let seed = 12345
for (let i = 0; i < IDS; i++) {
  seed = (Math.imul(seed, 1103515245) + 12345) >>> 0
  ids[i] = 100000 + (seed % 900000)
}

function lookups(ring: HashRing<Pool>, count: number): { perSecond: number; checksum: number } {
  let checksum = 0
  const start = now()
  for (let i = 0; i < count; i++) checksum += ring.pick(ids[i & (IDS - 1)]!)!.n
  const ms = now() - start
  return { perSecond: (count / ms) * 1000, checksum }
}

function rebuilds(ring: HashRing<Pool>, rounds: number): { addUs: number; removeUs: number } {
  let add = 0
  let remove = 0
  for (let r = 0; r < rounds; r++) {
    // The table is rebuilt lazily, at the first lookup after a change: pick() once inside
    // each timed section so the rebuild is what gets measured, not just the bookkeeping.
    const t0 = now()
    ring.add('bench-extra', { n: -1 })
    ring.pick(r)
    const t1 = now()
    ring.remove('bench-extra')
    ring.pick(r)
    add += t1 - t0
    remove += now() - t1
  }
  return { addUs: (add / rounds) * 1000, removeUs: (remove / rounds) * 1000 }
}

function failovers(ring: HashRing<Pool>, count: number): number {
  // The first choice is rejected, so each call walks on to the next distinct member.
  let found = 0
  const start = now()
  for (let i = 0; i < count; i++) {
    const first = ring.pick(ids[i & (IDS - 1)]!)
    if (ring.next(ids[i & (IDS - 1)]!, (v) => v !== first) !== undefined) found++
  }
  const ms = now() - start
  return found === count ? (count / ms) * 1000 : NaN
}

const fmt = (n: number, digits = 0) => n.toLocaleString('en-US', { maximumFractionDigits: digits })

function runCase(slots: number, hash: string): string {
  const ring = new HashRing<Pool>({ slots, hash })
  for (let n = 0; n < MEMBERS; n++) ring.add(`Server ${n + 1}`, { n })
  lookups(ring, LOOKUPS / 10) // warm up the JIT
  const { perSecond, checksum } = lookups(ring, LOOKUPS)
  const rounds = slots > 4096 ? 200 : 2000
  rebuilds(ring, rounds / 10)
  const { addUs, removeUs } = rebuilds(ring, rounds)
  const fo = failovers(ring, 200_000)
  return [
    hash.padEnd(11),
    String(slots).padEnd(6),
    String(ring.vnodes).padEnd(3),
    fmt(perSecond).padStart(12),
    fmt(addUs, 1).padStart(13),
    fmt(removeUs, 1).padStart(12),
    fmt(fo).padStart(18),
    ` (checksum ${checksum})`,
  ].join(' ')
}

if (process.argv[2] === 'case') {
  console.log(runCase(Number(process.argv[3]), process.argv[4]!))
} else {
  console.log(`node ${process.version}, ${MEMBERS} members, ${fmt(LOOKUPS)} lookups per case`)
  console.log('hash        M      K   pick()/s       add (µs)  remove (µs)  next() failover/s')
  const self = fileURLToPath(import.meta.url)
  for (const slots of [512, 65536]) {
    for (const hash of ['default', 'assignment']) {
      const out = execFileSync(process.execPath, [self, 'case', String(slots), hash], { encoding: 'utf8' })
      process.stdout.write(out)
    }
  }
}
