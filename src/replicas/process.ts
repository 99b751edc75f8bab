/**
 * The `process` replica provider: each replica is a child process of the balancer running the
 * built replica server on a free loopback port (the embedded default; no Docker needed).
 * The child binds port 0 and reports the port over IPC, so there is no free-port race; it
 * also exits when the IPC channel closes, so replicas never outlive a killed balancer.
 * Each child runs in a process group (session) of its own: Ctrl-C in a terminal signals the
 * terminal's whole foreground group, and a replica that took that SIGINT would die before the
 * balancer could drain it (and look like a crash to be replaced). Only the balancer stops its
 * replicas; on every other way the balancer can end (crash, SIGKILL, a second Ctrl-C) the
 * kernel closes the IPC channel and the replica exits on 'disconnect' (replica/server.ts).
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync } from 'node:fs'
import { once } from 'node:events'
import type { ReplicaHandle, ReplicaProvider } from './provider.js'
import { waitForHeartbeat } from './heartbeat.js'
import { replicaEntry } from '../paths.js'

export interface ProcessProviderOptions {
  /** Path of the built replica server; defaults to dist/replica/server.js. */
  entry?: string
  /** Loopback address the replicas bind. */
  host?: string
  startTimeoutMs: number
  /** How long a replica may take to exit after SIGTERM before it gets SIGKILL. */
  stopTimeoutMs?: number
}

interface Child {
  handle: ReplicaHandle
  child: ChildProcess
  stopping: boolean
}

export class ProcessProvider implements ReplicaProvider {
  readonly kind = 'process'
  private readonly children = new Map<string, Child>()
  private readonly exitListeners: Array<(name: string) => void> = []
  private readonly entry: string
  private readonly host: string

  constructor(private readonly options: ProcessProviderOptions) {
    this.entry = options.entry ?? replicaEntry
    this.host = options.host ?? '127.0.0.1'
  }

  async init(): Promise<ReplicaHandle[]> {
    if (!existsSync(this.entry)) throw new Error(`replica server not built: ${this.entry} is missing (run npm run build)`)
    return []
  }

  async start(name: string): Promise<ReplicaHandle> {
    if (this.children.has(name)) throw new Error(`replica ${JSON.stringify(name)} is already running`)
    const child = spawn(process.execPath, [this.entry], {
      env: { PATH: process.env.PATH ?? '', PORT: '0', HOST: this.host, SERVER_ID: name },
      stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
      // Its own process group: terminal signals (Ctrl-C) reach the balancer only.
      detached: true,
    })
    let stderr = ''
    child.stderr!.setEncoding('utf8').on('data', (d: string) => {
      stderr = (stderr + d).slice(-2000)
    })
    const exited = new AbortController()
    const onEarlyExit = (code: number | null, signal: string | null): void =>
      exited.abort(new Error(`replica ${JSON.stringify(name)} exited during start (${signal ?? `code ${code}`})${stderr ? `: ${stderr.trim()}` : ''}`))
    child.once('exit', onEarlyExit)
    child.once('error', (err) => exited.abort(err))
    try {
      const port = await this.listeningPort(child, exited.signal)
      await waitForHeartbeat(this.host, port, { timeoutMs: this.options.startTimeoutMs, signal: exited.signal })
      child.off('exit', onEarlyExit)
      const handle: ReplicaHandle = { name, host: this.host, port, id: String(child.pid) }
      const entry: Child = { handle, child, stopping: false }
      this.children.set(name, entry)
      child.once('exit', () => {
        if (this.children.get(name) !== entry) return
        this.children.delete(name)
        if (!entry.stopping) for (const l of this.exitListeners) l(name)
      })
      return handle
    } catch (err) {
      child.kill('SIGKILL')
      throw err
    }
  }

  /** The port the child reports over IPC once bound, within the start deadline. */
  private listeningPort(child: ChildProcess, signal: AbortSignal): Promise<number> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => done(new Error(`replica did not start listening within ${this.options.startTimeoutMs} ms`)), this.options.startTimeoutMs)
      const onMessage = (m: unknown): void => {
        if (m && typeof m === 'object' && (m as { type?: unknown }).type === 'listening') done(undefined, Number((m as { port: unknown }).port))
      }
      const onAbort = (): void => done(signal.reason as Error)
      const done = (err?: Error, port?: number): void => {
        clearTimeout(timer)
        child.off('message', onMessage)
        signal.removeEventListener('abort', onAbort)
        if (err) reject(err)
        else resolve(port!)
      }
      if (signal.aborted) return onAbort()
      child.on('message', onMessage)
      signal.addEventListener('abort', onAbort)
    })
  }

  async stop(name: string): Promise<void> {
    const entry = this.children.get(name)
    if (!entry) return
    entry.stopping = true
    const { child } = entry
    if (child.exitCode !== null || child.signalCode !== null) {
      this.children.delete(name)
      return
    }
    const exit = once(child, 'exit')
    child.kill('SIGTERM')
    // A frozen (SIGSTOPped) replica holds SIGTERM until it runs again: wake it so it can exit.
    child.kill('SIGCONT')
    const timer = setTimeout(() => child.kill('SIGKILL'), this.options.stopTimeoutMs ?? 3000)
    await exit
    clearTimeout(timer)
    this.children.delete(name)
  }

  list(): ReplicaHandle[] {
    return [...this.children.values()].map((c) => c.handle)
  }

  /** The child's pid, for tests and chaos runs that kill a replica from outside. */
  pidOf(name: string): number | undefined {
    return this.children.get(name)?.child.pid
  }

  onExit(listener: (name: string) => void): void {
    this.exitListeners.push(listener)
  }

  async close(): Promise<void> {
    await Promise.all([...this.children.keys()].map((name) => this.stop(name)))
  }
}
