// `npm test`'s reporter (scripts/tap-reporter.mjs), run by a real nested tap over two sample
// files: one line per file, the failure's detail (and nothing of what passed), tap's totals
// line that .ci/run reads, and a non-zero exit status.
import t from 'tap'
import { execFile } from 'node:child_process'
import { cpSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { projectRoot } from '../src/paths.js'

t.test('one line per test file, detail only for failures, then the totals', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'rb-reporter-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  cpSync(join(projectRoot, 'test', 'fixtures', 'tap-sample'), dir, { recursive: true })
  symlinkSync(join(projectRoot, 'node_modules'), join(dir, 'node_modules'))
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ type: 'module', tap: { reporter: join(projectRoot, 'scripts', 'tap-reporter.mjs'), 'disable-coverage': true } }))
  // The nested run must not believe it is a child of this tap run (TAP=1 forces raw TAP).
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^(TAP|_TAPJS)/.test(k)))
  const tap = join(projectRoot, 'node_modules', '.bin', 'tap')
  const { code, stdout } = await new Promise<{ code: number; stdout: string }>((resolve) => {
    execFile(tap, ['fails.test.mjs', 'passes.test.mjs'], { cwd: dir, env, timeout: 120_000 }, (err, stdout) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout })
    })
  })
  t.not(code, 0, 'a failing file fails the run')
  const lines = stdout.trimEnd().split('\n')
  t.match(lines[0], /^NOT OK {2}fails\.test\.mjs \(\d+\.\d s\)$/, 'the failed file, one line')
  t.ok(lines.some((l) => /^ok {6}passes\.test\.mjs \(\d+\.\d s\)$/.test(l)), 'the passing file, one line')
  t.match(stdout, /# Subtest: outer\n\s+# Subtest: inner\n\s+not ok 2 - the failing assertion\n/, 'where the failure is')
  t.match(stdout, /-5\n\s+\+4\n/, 'its diagnostics')
  t.notMatch(stdout, /^\s*ok \d+ - /m, 'no passing assertion or subtest')
  t.notMatch(stdout, /left out too|a passing sibling/, 'nothing of the passing sibling')
  t.match(stdout, /\n1 of 2 test files failed: fails\.test\.mjs\n/)
  t.equal(lines.at(-1), '# { total: 4, pass: 3, fail: 1 }', "tap's totals line last, as .ci/run reads it")
})
