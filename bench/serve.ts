/**
 * The balancer as the benchmark runs it: the real app (`startApp`, the same flags as
 * `dist/src/main.js`) in its own process, over replicas the benchmark started itself, so
 * that the balancer, nginx and HAProxy all proxy to the very same replica processes.
 *
 * The replicas are handed over in BENCH_UPSTREAMS (JSON [{name, host, port}]) and adopted
 * the way the Docker provider adopts the containers of an earlier run. The bench owns them:
 * stopping one here only forgets it. A replica the balancer starts later (a replacement)
 * is an ordinary child process. Reports {type: 'ready', url, pids} over IPC once listening
 * (pids: with --workers N > 1, the serving worker processes, whose CPU time is the balancer's too),
 * and answers {type: 'memory', gc?, snapshot?: path} (a heap snapshot written to path) with {type: 'memory', usage, delay} (process.memoryUsage(),
 * the event loop's delay since the last question).
 */
import { writeHeapSnapshot } from 'node:v8'
import { monitorEventLoopDelay } from 'node:perf_hooks'
import { startApp } from '../src/app.js'
import { startCluster } from '../src/cluster/primary.js'
import { loadConfig } from '../src/config.js'
import { ProcessProvider } from '../src/replicas/process.js'
import type { ReplicaHandle, ReplicaProvider } from '../src/replicas/provider.js'

class AdoptingProvider implements ReplicaProvider {
  readonly kind = 'process'
  private readonly inner: ProcessProvider
  private adopted: ReplicaHandle[]

  constructor(adopted: ReplicaHandle[], startTimeoutMs: number) {
    this.adopted = adopted
    this.inner = new ProcessProvider({ startTimeoutMs })
  }

  async init(): Promise<ReplicaHandle[]> {
    await this.inner.init()
    return [...this.adopted]
  }

  start(name: string): Promise<ReplicaHandle> {
    return this.inner.start(name)
  }

  async stop(name: string): Promise<void> {
    if (this.adopted.some((h) => h.name === name)) this.adopted = this.adopted.filter((h) => h.name !== name)
    else await this.inner.stop(name)
  }

  list(): ReplicaHandle[] {
    return [...this.adopted, ...this.inner.list()]
  }

  onExit(listener: (name: string) => void): void {
    this.inner.onExit(listener)
  }

  close(): Promise<void> {
    this.adopted = []
    return this.inner.close()
  }
}

const upstreams = JSON.parse(process.env.BENCH_UPSTREAMS ?? '[]') as Array<{ name: string; host: string; port: number }>
const config = loadConfig(process.argv.slice(2), process.env)
const provider = new AdoptingProvider(
  upstreams.map((u) => ({ name: u.name, host: u.host, port: u.port, id: `bench:${u.port}` })),
  config.startTimeoutMs,
)
// --workers N > 1: this process is the primary; its workers' CPU counts too (pids).
const app = config.workers > 1 ? await startCluster(config, { provider }) : await startApp(config, { provider })
// The serving workers only: the bench finds the warm spare among this process's children.
const pids = 'coordinator' in app ? app.coordinator.pids() : []
process.send?.({ type: 'ready', url: app.url, pids })

// Memory questions from bench/edge-memory.ts: process.memoryUsage(), after a full GC when asked
// (and when the process runs with --expose-gc).
// and the event loop's delay since the last question (p50 / p99 / max, ms).
// Switched on by the first question only: the monitor is a 10 ms timer (100 wake-ups a second
// of the balancer's, or primary's, event loop) that would otherwise be counted in every
// benchmark's CPU per request.
const loopDelay = monitorEventLoopDelay({ resolution: 10 })
process.on('message', (m: { type?: string; gc?: boolean; snapshot?: string }) => {
  if (m?.type !== 'memory') return
  loopDelay.enable()
  const delay = { p50: loopDelay.percentile(50) / 1e6, p99: loopDelay.percentile(99) / 1e6, max: loopDelay.max / 1e6 }
  loopDelay.reset()
  const gc = (globalThis as { gc?: () => void }).gc
  if (m.gc === true && gc !== undefined) gc()
  if (typeof m.snapshot === 'string') writeHeapSnapshot(m.snapshot)
  process.send?.({ type: 'memory', usage: process.memoryUsage(), delay })
})

const stop = (): void => {
  app.close().then(
    () => process.exit(0),
    () => process.exit(1),
  )
  setTimeout(() => process.exit(1), 5000).unref()
}
process.on('SIGTERM', stop)
process.on('SIGINT', stop)
// Never outlive the benchmark that started us.
process.on('disconnect', stop)
