/**
 * The benchmarking tools (autocannon, clinic) are a package of their own, bench/package.json
 * with its own lock, so `npm ci` at the root installs only what running and testing the
 * balancer need (about 1,100 packages fewer, most of them clinic's). They are installed into
 * bench/node_modules on first use (`npm run bench`, `npm run profile`, `node dist/bench/ab.js`)
 * or by `npm run bench:install`. Modules built into dist/bench cannot find bench/node_modules
 * by Node's lookup (it walks up from dist/bench), so they load the tools from there explicitly.
 * The types (@types/autocannon) stay in the root devDependencies for tsc.
 */
import { spawnSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { createRequire } from 'node:module'
import { join } from 'node:path'
import type Autocannon from 'autocannon'
import { projectRoot } from '../src/paths.js'

export const benchDir = join(projectRoot, 'bench')

/** Install bench/package.json's tools (`npm ci --prefix bench`) unless they are there. */
export function ensureBenchTools(): void {
  const installed =
    existsSync(join(benchDir, 'node_modules', 'autocannon', 'package.json')) &&
    existsSync(join(benchDir, 'node_modules', '.bin', 'clinic')) &&
    existsSync(join(benchDir, 'node_modules', 'prom-client', 'package.json'))
  if (installed) return
  console.error('bench: installing the benchmarking tools (autocannon, clinic) into bench/node_modules, once: npm ci --prefix bench')
  // npm's own output goes to stderr: stdout stays the bench's.
  const r = spawnSync('npm', ['ci', '--prefix', benchDir, '--no-audit', '--no-fund'], { stdio: ['ignore', 2, 2] })
  if (r.status !== 0) {
    throw new Error(`could not install the benchmarking tools (npm ci --prefix bench: ${r.error?.message ?? `exit ${r.status ?? r.signal}`})`)
  }
}

/** autocannon, from bench/node_modules (installed first if need be). */
export function loadAutocannon(): typeof Autocannon {
  ensureBenchTools()
  return createRequire(join(benchDir, 'package.json'))('autocannon') as typeof Autocannon
}

/** prom-client, from bench/node_modules (installed first if need be); only bench/metrics-cost.ts uses it. */
export function loadPromClient(): unknown {
  ensureBenchTools()
  return createRequire(join(benchDir, 'package.json'))('prom-client')
}

/** The clinic command, from bench/node_modules (installed first if need be). */
export function clinicCommand(): string {
  ensureBenchTools()
  return join(benchDir, 'node_modules', '.bin', 'clinic')
}
