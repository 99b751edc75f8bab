/**
 * The processes the benchmark and the analysis run: replicas, the balancer, nginx and HAProxy,
 * each in its own OS process, so the load generator never shares an event loop (or a CPU
 * account) with what it measures. Every process started here is killed when this process
 * exits, even on Ctrl-C.
 */
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { request } from 'node:http'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { projectRoot } from '../src/paths.js'
import { freeLoopbackPort as freePort } from '../src/replicas/free-port.js'

export const root = projectRoot
export const distMain = join(root, 'dist', 'src', 'main.js')
export const distReplica = join(root, 'dist', 'replica', 'server.js')
export const distServe = join(root, 'dist', 'bench', 'serve.js')
export const distNodeRelay = join(root, 'dist', 'bench', 'node-relay.js')

/** A process we started and will stop. */
export interface Managed {
  readonly label: string
  readonly child: ChildProcess
  /** The pids whose CPU time is this target's cost (nginx: master and workers). */
  cpuPids(): number[]
  /** The same pids by role (primary, worker 1, spare...), for a cost breakdown per process. */
  roles?(): Array<[role: string, pids: number[]]>
  stop(): Promise<void>
}

export interface Replica extends Managed {
  readonly name: string
  readonly host: string
  readonly port: number
}

/** Children still running, with the signal that ends them at once and completely. */
const running = new Map<ChildProcess, NodeJS.Signals>()
let cleanupInstalled = false

/**
 * `exitSignal`: what to send if this process exits first. SIGKILL for our own Node children;
 * SIGTERM for nginx and HAProxy, whose master must live long enough to stop its workers
 * (SIGKILL would orphan them).
 */
export function track(child: ChildProcess, exitSignal: NodeJS.Signals = 'SIGKILL'): void {
  running.set(child, exitSignal)
  child.once('exit', () => running.delete(child))
  if (cleanupInstalled) return
  cleanupInstalled = true
  process.once('exit', () => {
    for (const [c, signal] of running) c.kill(signal)
  })
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      console.error(`\n${signal}: stopping the processes this run started`)
      process.exit(130)
    })
  }
}

export async function stopChild(child: ChildProcess, signal: NodeJS.Signals = 'SIGTERM', graceMs = 5000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return
  const exited = once(child, 'exit')
  child.kill(signal)
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs)
  await exited
  clearTimeout(timer)
}

/** A free TCP port on loopback (the one helper, src/replicas/free-port.ts). */
export { freePort }

/** Resolves once GET url answers 200, or rejects after timeoutMs. */
export async function waitHttp(url: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const req = request(url, { agent: false, timeout: 1000 }, (res) => {
        res.resume()
        res.on('end', () => resolve(res.statusCode === 200))
      })
      req.on('timeout', () => req.destroy())
      req.on('error', () => resolve(false))
      req.end()
    })
    if (ok) return
    if (Date.now() > deadline) throw new Error(`${url} did not answer 200 within ${timeoutMs} ms`)
    await sleep(100)
  }
}

/** The direct children of `pid` (Linux: /proc/PID/task/PID/children; [] elsewhere). */
export function childrenOf(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number)
  } catch {
    return []
  }
}

let clockTicks: number | undefined
/** Kernel clock ticks per second (USER_HZ), the unit of utime/stime in /proc/PID/stat. */
function ticksPerSecond(): number {
  if (clockTicks === undefined) {
    try {
      clockTicks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100
    } catch {
      clockTicks = 100
    }
  }
  return clockTicks
}

/**
 * CPU seconds (user + system, all threads) used so far by these pids, from /proc/PID/stat
 * fields 14 and 15. Resolution is one clock tick (10 ms), plenty for runs of seconds.
 */
export function cpuSeconds(pids: readonly number[]): number {
  let ticks = 0
  for (const pid of pids) {
    let stat: string
    try {
      stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    } catch {
      continue
    }
    // The command name (field 2) may contain spaces; the fields after its ')' are fixed.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    ticks += Number(fields[11]) + Number(fields[12])
  }
  return ticks / ticksPerSecond()
}

function collectStderr(child: ChildProcess): () => string {
  let text = ''
  child.stderr?.setEncoding('utf8').on('data', (d: string) => {
    text = (text + d).slice(-4000)
  })
  return () => text.trim()
}

/** One replica server (dist/replica/server.js) on a free loopback port. */
export async function startReplica(name: string): Promise<Replica> {
  if (!existsSync(distReplica)) throw new Error(`${distReplica} is missing: run npm run build first`)
  const child = spawn(process.execPath, [distReplica], {
    env: { PATH: process.env.PATH ?? '', PORT: '0', HOST: '127.0.0.1', SERVER_ID: name },
    stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
  })
  track(child)
  const stderr = collectStderr(child)
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`replica ${name} did not start in 10 s: ${stderr()}`)), 10_000)
    child.once('exit', (code) => reject(new Error(`replica ${name} exited (${code}): ${stderr()}`)))
    child.on('message', (m: { type?: string; port?: number }) => {
      if (m?.type === 'listening') {
        clearTimeout(timer)
        resolve(Number(m.port))
      }
    })
  })
  return { label: name, name, host: '127.0.0.1', port, child, cpuPids: () => [child.pid!], stop: () => stopChild(child) }
}

export interface BalancerProcess extends Managed {
  readonly url: string
}

/**
 * The balancer (the real app, see bench/serve.ts) in its own process, adopting `replicas`.
 * `args` are ordinary balancer flags (e.g. --hash linear); `nodeArgs` go to node itself
 * (e.g. --expose-gc).
 */
export async function startBalancer(replicas: readonly Replica[], args: readonly string[] = [], nodeArgs: readonly string[] = []): Promise<BalancerProcess> {
  const port = await freePort()
  const upstreams = replicas.map((r) => ({ name: r.name, host: r.host, port: r.port }))
  const child = spawn(process.execPath, [...nodeArgs, distServe, '--port', String(port), '--host', '127.0.0.1', '--replicas', String(replicas.length), '--quiet', ...args], {
    // No admin listener: several benchmark balancers run at once (env: an older dist ignores it).
    env: { ...process.env, LB_ADMIN_PORT: 'off', BENCH_UPSTREAMS: JSON.stringify(upstreams) },
    stdio: ['ignore', 'inherit', 'pipe', 'ipc'],
  })
  track(child)
  const stderr = collectStderr(child)
  let workers: number[] = []
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`balancer did not start in 20 s: ${stderr()}`)), 20_000)
    child.once('exit', (code) => reject(new Error(`balancer exited (${code}): ${stderr()}`)))
    child.on('message', (m: { type?: string; url?: string; pids?: number[] }) => {
      if (m?.type === 'ready') {
        clearTimeout(timer)
        // --workers N > 1: the primary and its worker processes (an older dist sends none).
        workers = m.pids ?? []
        resolve(String(m.url))
      }
    })
  })
  // Its children too, read when asked: the warm spare (still starting when 'ready' came, so not
  // in `pids`) and a worker forked to replace one are the balancer's CPU as much as the others.
  const cpuPids = (): number[] => [...new Set([child.pid!, ...workers, ...childrenOf(child.pid!)])]
  const roles = (): Array<[string, number[]]> => {
    if (workers.length === 0) return [['process', [child.pid!]]]
    const spare = childrenOf(child.pid!).filter((pid) => !workers.includes(pid))
    return [['primary', [child.pid!]], ...workers.map((pid, i): [string, number[]] => [`worker ${i + 1}`, [pid]]), ['spare', spare]]
  }
  return { label: 'balancer', url, child, cpuPids, roles, stop: () => stopChild(child) }
}

/** The Node floor (bench/node-relay.ts): a plain byte relay to `replica`, one connection per client connection. */
export async function startNodeRelay(replica: Replica): Promise<BalancerProcess> {
  const child = spawn(process.execPath, [distNodeRelay, replica.host, String(replica.port)], { stdio: ['ignore', 'inherit', 'pipe', 'ipc'] })
  track(child)
  const stderr = collectStderr(child)
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`node relay did not start in 10 s: ${stderr()}`)), 10_000)
    child.once('exit', (code) => reject(new Error(`node relay exited (${code}): ${stderr()}`)))
    child.on('message', (m: { type?: string; port?: number }) => {
      if (m?.type === 'ready') {
        clearTimeout(timer)
        resolve(Number(m.port))
      }
    })
  })
  return { label: 'node-relay', url: `http://127.0.0.1:${port}`, child, cpuPids: () => [child.pid!], stop: () => stopChild(child) }
}

/**
 * The real CLI (`node dist/src/main.js --port 0 ...`), managing its own replicas, as users
 * run it. Resolves with the URL it prints once listening.
 */
export async function startMain(args: readonly string[]): Promise<BalancerProcess> {
  if (!existsSync(distMain)) throw new Error(`${distMain} is missing: run npm run build first`)
  const child = spawn(process.execPath, [distMain, '--port', '0', '--host', '127.0.0.1', '--quiet', ...args], {
    env: { ...process.env, LB_ADMIN_PORT: 'off' },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  track(child)
  const stderr = collectStderr(child)
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`balancer did not start in 30 s: ${stderr()}`)), 30_000)
    child.once('exit', (code) => reject(new Error(`balancer exited (${code}): ${stderr()}`)))
    let out = ''
    child.stdout!.setEncoding('utf8').on('data', (d: string) => {
      out += d
      const m = /listening on (http:\/\/\S+)/.exec(out)
      if (m) {
        clearTimeout(timer)
        resolve(m[1]!)
      }
    })
  })
  child.stdout!.resume()
  return { label: 'balancer', url, child, cpuPids: () => [child.pid!], stop: () => stopChild(child, 'SIGTERM', 15_000) }
}

export function which(command: string): string | undefined {
  for (const dir of ['/usr/sbin', '/usr/local/sbin', ...(process.env.PATH ?? '').split(':')]) {
    const p = join(dir, command)
    if (dir && existsSync(p)) return p
  }
  return undefined
}

export function versionOf(command: string, args: string[]): string {
  // nginx -v prints to stderr, haproxy -v to stdout.
  const r = spawnSync(command, args, { encoding: 'utf8' })
  return `${r.stdout ?? ''}${r.stderr ?? ''}`.split('\n')[0]!.trim()
}

export interface ProxyOptions {
  /** Worker processes (nginx) or threads (HAProxy). 1 by default, like the one-thread balancer. */
  workers: number
}

/**
 * A proxy configured by a file: `conf(dir, port)` is written to `dir/file` in a fresh temp dir,
 * `bin args(confPath)` runs in the foreground, and the promise resolves once GET /home answers
 * through it on 127.0.0.1:port. If it fails to start it is stopped and its dir removed.
 */
export async function startConfiguredProxy(
  label: string,
  bin: string,
  file: string,
  conf: (dir: string, port: number) => string,
  args: (confPath: string) => string[],
): Promise<BalancerProcess> {
  const dir = mkdtempSync(join(tmpdir(), `bench-${label}-`))
  const port = await freePort()
  const confPath = join(dir, file)
  writeFileSync(confPath, conf(dir, port))
  const child = spawn(bin, args(confPath), { stdio: ['ignore', 'ignore', 'pipe'] })
  track(child, 'SIGTERM')
  const stderr = collectStderr(child)
  const url = `http://127.0.0.1:${port}`
  const stop = async (): Promise<void> => {
    await stopChild(child, 'SIGTERM')
    rmSync(dir, { recursive: true, force: true })
  }
  const failed = once(child, 'exit').then(([code]) => {
    throw new Error(`${label} exited (${code}): ${stderr()}`)
  })
  failed.catch(() => {})
  try {
    await Promise.race([waitHttp(`${url}/home`), failed])
  } catch (err) {
    await stop()
    throw err
  }
  const roles = (): Array<[string, number[]]> => [['master', [child.pid!]], ...childrenOf(child.pid!).map((pid, i): [string, number[]] => [`worker ${i + 1}`, [pid]])]
  return { label, url, child, cpuPids: () => [child.pid!, ...childrenOf(child.pid!)], roles, stop }
}

/**
 * nginx as a consistent-hash proxy over the replicas: `hash $request_id consistent` (ketama,
 * a random key per request like the balancer's default `--key random`), keep-alive upstreams.
 */
export async function startNginx(replicas: readonly Replica[], options: ProxyOptions): Promise<BalancerProcess> {
  const bin = which('nginx')
  if (!bin) throw new Error('nginx is not installed')
  return startConfiguredProxy('nginx', bin, 'nginx.conf', (dir, port) => `
worker_processes ${options.workers};
daemon off;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 8192; }
http {
  access_log off;
  client_body_temp_path ${dir}/body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  keepalive_requests 1000000;
  keepalive_timeout 65s;
  upstream replicas {
    hash $request_id consistent;
${replicas.map((r) => `    server ${r.host}:${r.port};`).join('\n')}
    keepalive 512;
    keepalive_requests 1000000;
  }
  server {
    listen 127.0.0.1:${port};
    location / {
      proxy_pass http://replicas;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $http_host;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Proto $scheme;
    }
  }
}
`, (confPath) => ['-p', dirname(confPath), '-c', confPath])
}

/**
 * HAProxy as a consistent-hash proxy: `balance hash rand(...)` with `hash-type consistent`
 * (a random key per request), keep-alive on both sides, server connections reused.
 */
export async function startHaproxy(replicas: readonly Replica[], options: ProxyOptions): Promise<BalancerProcess> {
  const bin = which('haproxy')
  if (!bin) throw new Error('haproxy is not installed')
  return startConfiguredProxy('haproxy', bin, 'haproxy.cfg', (_dir, port) => `
global
  nbthread ${options.workers}
  maxconn 4096

defaults
  mode http
  timeout connect 5s
  timeout client 65s
  timeout server 30s
  timeout http-keep-alive 65s
  option http-keep-alive
  option forwardfor

frontend fe
  bind 127.0.0.1:${port}
  default_backend replicas

backend replicas
  balance hash rand(1000000)
  hash-type consistent
  http-reuse safe
${replicas.map((r, i) => `  server s${i + 1} ${r.host}:${r.port} maxconn 1000`).join('\n')}
`, (confPath) => ['-db', '-f', confPath])
}
