// The root install carries what running and testing need; the benchmarking tools (autocannon,
// clinic and their ~750 packages) are bench/'s own package, loaded from bench/node_modules.
import t from 'tap'
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { projectRoot } from '../src/paths.js'

const json = (path: string): Record<string, Record<string, unknown>> => JSON.parse(readFileSync(join(projectRoot, path), 'utf8'))
const BENCH_TOOLS = ['autocannon', 'clinic']

t.test('the root package and its lock have no benchmarking tools', async (t) => {
  const pkg = json('package.json')
  const lock = json('package-lock.json')
  for (const name of BENCH_TOOLS) {
    t.notOk(pkg.dependencies?.[name] ?? pkg.devDependencies?.[name], `${name} is not a root dependency`)
    t.notOk(lock.packages?.[`node_modules/${name}`], `${name} is not in package-lock.json`)
  }
})

t.test('bench/ is a package of its own with the tools, locked', async (t) => {
  const pkg = json('bench/package.json')
  const lock = json('bench/package-lock.json')
  t.equal(pkg.type as unknown, 'module', 'ES modules, like the root (tsc compiles bench/*.ts by this file)')
  for (const name of BENCH_TOOLS) {
    t.ok(pkg.dependencies?.[name], `bench depends on ${name}`)
    t.ok(lock.packages?.[`node_modules/${name}`], `bench/package-lock.json locks ${name}`)
  }
  t.same((lock.packages?.[''] as { dependencies?: unknown } | undefined)?.dependencies, pkg.dependencies, 'the lock matches bench/package.json')
})

t.test('bench scripts load the tools through bench/deps.ts, never by a plain import', async (t) => {
  for (const file of readdirSync(join(projectRoot, 'bench')).filter((f) => f.endsWith('.ts'))) {
    const text = readFileSync(join(projectRoot, 'bench', file), 'utf8')
    t.notMatch(text, /^import (?!type )[^\n]*from '(autocannon|clinic)'/m, `${file}: no value import of a bench tool`)
  }
})
