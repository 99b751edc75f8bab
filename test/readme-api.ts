// The README's HTTP API section is real output: every `$ curl ...` line of it runs, in order,
// exactly as written (through sh and curl), against one fresh balancer started as `npm start`
// starts it, and prints what the README shows under it. What varies from run to run is masked
// on both sides: the replica that answers /home, random replica names and Date headers. A `...`
// line in the README stands for any number of lines (e.g. headers left out).
import t from 'tap'
import { execFile, spawnSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { projectRoot } from '../src/paths.js'
import { startTestApp, startTestCluster } from './fixtures/app.js'

interface Step {
  command: string
  expected: string[]
}

/** The `$ curl` lines of the README's HTTP API section with the lines shown under each. */
export function httpApiSteps(readme: string): Step[] {
  const start = readme.indexOf('\n## HTTP API\n')
  const end = readme.indexOf('\n## ', start + 1)
  const section = readme.slice(start, end === -1 ? undefined : end)
  const steps: Step[] = []
  for (const block of section.matchAll(/```console\n([\s\S]*?)```/g)) {
    for (const line of block[1]!.split('\n')) {
      if (line.startsWith('$ ')) steps.push({ command: line.slice(2), expected: [] })
      else if (line !== '' || steps.at(-1)?.expected.length) steps.at(-1)?.expected.push(line)
    }
  }
  for (const s of steps) while (s.expected.at(-1) === '') s.expected.pop()
  return steps
}

/** What may differ between runs, replaced by a fixed word on both sides. */
function mask(line: string): string {
  return line
    .replace(/Hello from Server: [^"]+/g, 'Hello from Server: <replica>')
    .replace(/replica-[0-9a-f]{6}/g, 'replica-<random>')
    .replace(/^date: .*$/i, 'date: <date>')
}

/** Do the lines match, `...` in `expected` standing for any number of lines? */
function matches(expected: readonly string[], actual: readonly string[]): boolean {
  if (expected.length === 0) return actual.length === 0
  const [first, ...rest] = expected
  if (first === '...') {
    for (let skip = 0; skip <= actual.length; skip++) if (matches(rest, actual.slice(skip))) return true
    return false
  }
  return actual.length > 0 && actual[0] === first && matches(rest, actual.slice(1))
}

function sh(command: string): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile('sh', ['-c', command], { timeout: 60_000 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${command}: ${err.message}\n${stderr}`))
      else resolve(stdout)
    })
  })
}

const steps = httpApiSteps(readFileSync(join(projectRoot, 'README.md'), 'utf8'))

t.test('the README HTTP API section has curl examples', async (t) => {
  t.ok(steps.length >= 10, `${steps.length} examples`)
  for (const s of steps) t.match(s.command, /^curl /, s.command)
})

// Once as `npm start` runs, once with --workers 2 (Scaling up): the same answers, byte for byte.
for (const workers of [1, 2]) {
  t.test(`every \`$ curl\` of the README's HTTP API section, in order, prints what the README shows${workers > 1 ? ` (--workers ${workers})` : ''}`, async (t) => {
    if (spawnSync('curl', ['--version']).status !== 0) {
      t.fail('curl is not installed: the README examples are curl commands (apt-get install curl; .ci/run installs it)')
      return
    }
    // What `npm start` runs, on a free loopback port (quiet: the test reads no log).
    const app = workers > 1 ? await startTestCluster(t, ['--workers', String(workers)]) : await startTestApp(t, [])
    const address = app.url.replace(/^http:\/\//, '')
    for (const step of steps) {
      const output = await sh(step.command.replaceAll('localhost:5000', address))
      const actual = output.replace(/\r\n/g, '\n').replace(/\n$/, '').split('\n').map(mask)
      const expected = step.expected.map(mask)
      t.ok(matches(expected, actual), `$ ${step.command}`, { found: actual.join('\n'), wanted: expected.join('\n') })
    }
  })
}
