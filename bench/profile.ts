/**
 * `npm run profile`: a flame graph of the balancer under load.
 *
 * Runs `clinic flame` on the real CLI (dist/src/main.js, which starts its own replicas) with
 * clinic's built-in autocannon load against /home, then:
 *   - copies the flame graph to .clinic/flame.html (open it in a browser),
 *   - writes docs/profile/flame-summary.md: where the samples fall (self time by function and
 *     by kind: system calls, Node core, the balancer's own code, V8/C++), so the last profile
 *     can be read without a browser and compared across commits.
 *
 *   npm run profile -- [--connections 100] [--duration 15] [--args "--hash linear"]
 * NO_INSIGHT=true keeps clinic from asking its telemetry question (it needs a terminal).
 */
import { spawn } from 'node:child_process'
import { copyFileSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs'
import { cpus } from 'node:os'
import { basename, join } from 'node:path'
import { distMain, root } from './procs.js'
import { parseValueFlags } from './args.js'
import { clinicCommand } from './deps.js'

interface Frame {
  name: string
  type: string
}

interface Options {
  connections: number
  duration: number
  args: string[]
  path: string
}

function parseOptions(argv: string[]): Options {
  const o: Options = { connections: 100, duration: 15, args: [], path: '/home' }
  parseValueFlags(
    argv,
    {
      '--connections': (v) => (o.connections = Number(v)),
      '--duration': (v) => (o.duration = Number(v)),
      '--args': (v) => (o.args = v.split(/\s+/).filter(Boolean)),
      '--path': (v) => (o.path = v),
    },
    '--connections N --duration S --args "balancer flags" --path P',
  )
  if (!(o.connections >= 1 && o.duration >= 1)) throw new Error('--connections and --duration must be >= 1')
  return o
}

const clinicDir = join(root, '.clinic')
const htmlOut = join(clinicDir, 'flame.html')
const summaryOut = join(root, 'docs', 'profile', 'flame-summary.md')

async function main(): Promise<void> {
  const o = parseOptions(process.argv.slice(2))
  const clinic = clinicCommand()
  const args = [
    'flame',
    '--open=false',
    '--dest',
    clinicDir,
    '--autocannon',
    '[',
    '-c',
    String(o.connections),
    '-d',
    String(o.duration),
    o.path,
    ']',
    '--',
    'node',
    distMain,
    '--port',
    '0',
    '--quiet',
    ...o.args,
  ]
  console.log(`profile: NO_INSIGHT=true clinic ${args.join(' ')}`)
  mkdirSync(clinicDir, { recursive: true })
  const before = new Set(readdirSync(clinicDir))
  const output = await new Promise<string>((resolve, reject) => {
    const child = spawn(clinic, args, { cwd: root, env: { ...process.env, NO_INSIGHT: 'true', LB_ADMIN_PORT: 'off' }, stdio: ['ignore', 'pipe', 'pipe'] })
    let text = ''
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      reject(new Error('clinic did not finish in time'))
    }, (o.duration + 120) * 1000)
    for (const stream of [child.stdout!, child.stderr!]) {
      stream.setEncoding('utf8').on('data', (d: string) => {
        text += d
        process.stdout.write(d)
      })
    }
    child.once('exit', (code) => {
      clearTimeout(timer)
      if (code === 0) resolve(text)
      else reject(new Error(`clinic exited with ${code}`))
    })
  })
  const match = /Generated HTML file is file:\/\/(\S+\.html)/.exec(output)
  const html = match?.[1] ?? readdirSync(clinicDir).filter((f) => f.endsWith('.clinic-flame.html') && !before.has(f)).map((f) => join(clinicDir, f))[0]
  if (!html) throw new Error('clinic did not report a flame graph file')
  copyFileSync(html, htmlOut)
  const dataDir = html.replace(/\.html$/, '')
  const samples = JSON.parse(readFileSync(join(dataDir, `${basename(dataDir)}-samples`), 'utf8')) as Frame[][]
  const reqLine = /(\d+k?) requests in ([\d.]+)s/.exec(output)?.[0] ?? ''
  const md = summarise(samples, o, reqLine, html)
  mkdirSync(join(root, 'docs', 'profile'), { recursive: true })
  writeFileSync(summaryOut, md)
  console.log(`\n${md}\nflame graph: ${htmlOut} (also ${html})\nsummary: ${summaryOut}`)
}

const SYSCALL = /^(__)?(write|writev|read|readv|epoll_pwait|epoll_wait|sendmsg|recvmsg|send|recv|close|accept4?|connect)(@|$)/

function kindOf(frame: Frame): string {
  const n = frame.name
  if (frame.type === 'CPP' && SYSCALL.test(n.replace(/^_+/, '__'))) return 'system calls (socket read/write, epoll)'
  if (frame.type === 'JS' && n.includes('/dist/src/')) return 'the balancer (dist/src)'
  if (frame.type === 'JS' && /node:_http|node:http/.test(n)) return 'Node core: http'
  if (frame.type === 'JS' && /node:(net|internal\/stream|internal\/streams|stream)/.test(n)) return 'Node core: net + streams'
  if (frame.type === 'JS' && /node:(events|internal\/process|internal\/async_hooks|internal\/timers|timers)/.test(n)) return 'Node core: events, ticks, timers'
  if (frame.type === 'JS' && n.includes('node:')) return 'Node core: other'
  if (frame.type === 'JS') return 'other JS'
  return 'V8, libuv, libc (other C/C++)'
}

function pct(n: number, total: number): string {
  return `${((100 * n) / total).toFixed(1)} %`
}

function summarise(samples: Frame[][], o: Options, reqLine: string, html: string): string {
  const stacks = samples.filter((s) => s.length > 0)
  const total = stacks.length
  const self = new Map<string, number>()
  const kinds = new Map<string, number>()
  const inclusive = new Map<string, number>()
  for (const stack of stacks) {
    const leaf = stack[stack.length - 1]!
    self.set(leaf.name, (self.get(leaf.name) ?? 0) + 1)
    const kind = kindOf(leaf)
    kinds.set(kind, (kinds.get(kind) ?? 0) + 1)
    // Inclusive time of the balancer's own functions (each once per stack).
    const seen = new Set<string>()
    for (const f of stack) if (f.type === 'JS' && f.name.includes('/dist/src/') && !seen.has(f.name)) seen.add(f.name)
    for (const name of seen) inclusive.set(name, (inclusive.get(name) ?? 0) + 1)
  }
  const short = (name: string): string => name.replace(/file:\/\/\S*\/dist\//, 'dist/').replace(/@@GLIBC\S*/, ' (libc)')
  const sorted = (m: Map<string, number>, n: number): Array<[string, number]> => [...m].sort((a, b) => b[1] - a[1]).slice(0, n)
  const lines = [
    `# Last flame profile`,
    '',
    `${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC, ${cpus().length} x ${cpus()[0]?.model ?? 'CPU'}, Node ${process.version}. ` +
      `Command: \`npm run profile${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(' ')}` : ''}\` ` +
      `(clinic flame, autocannon -c ${o.connections} -d ${o.duration} ${o.path} against dist/src/main.js with 3 replicas). ${reqLine ? `Load: ${reqLine} (slowed by the profiler).` : ''}`,
    '',
    `Flame graph: \`.clinic/flame.html\` (this run: \`${html.replace(root + '/', '')}\`). ${total} samples of the balancer's main thread.`,
    '',
    'How to read it: the samples are wall-clock ticks of the main thread, so a socket write also carries the ' +
      'kernel delivering the bytes over loopback and the moments the balancer is preempted by the process the ' +
      'write woke (a replica, autocannon) on a busy machine. The system-call share is therefore larger than the ' +
      'system CPU time (`/proc/PID/stat` puts it near half of the CPU); compare the JS rows with each other.',
    '',
    '## Self time by kind',
    '',
    '| kind | share of samples |',
    '|---|---:|',
    ...sorted(kinds, 20).map(([k, v]) => `| ${k} | ${pct(v, total)} |`),
    '',
    '## Top 25 functions by self time',
    '',
    '| function | self |',
    '|---|---:|',
    ...sorted(self, 25).map(([k, v]) => `| \`${short(k).replace(/\|/g, '\\|').trim() || '(anonymous)'}\` | ${pct(v, total)} |`),
    '',
    '## The balancer\'s own functions, inclusive time',
    '',
    '| function | inclusive |',
    '|---|---:|',
    ...sorted(inclusive, 15).map(([k, v]) => `| \`${short(k)}\` | ${pct(v, total)} |`),
    '',
  ]
  return lines.join('\n')
}

main().catch((err: Error) => {
  console.error(`profile: ${err.message}`)
  process.exit(1)
})
