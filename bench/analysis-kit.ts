/**
 * What the analysis sections share: sending many real requests through a running balancer
 * and counting which replica answered each ("Hello from Server: X"), calling the admin API,
 * and the section interface that A-3 (bench/recovery.ts, recovery after a replica is killed)
 * plugs into.
 */
import { Agent, request } from 'node:http'
import type { BalancerProcess } from './procs.js'

export interface Hits {
  /** Requests answered per replica name, in the order names were first seen. */
  counts: Map<string, number>
  /** The replica that answered request k (ids[k]); '' for a failed request. */
  servers: string[]
  errors: number
  ms: number
}

const HELLO = /Hello from Server: ([^"]*)"/

/**
 * Sends GET /home?id=<id> for every id, `concurrency` at a time over keep-alive connections
 * (all asynchronous), and records which replica answered each. The balancer must run with
 * `--key query:id` so that the id is the request id the ring hashes.
 */
export async function sendRequests(baseUrl: string, ids: readonly number[], concurrency = 64): Promise<Hits> {
  const agent = new Agent({ keepAlive: true, maxSockets: concurrency })
  const servers = new Array<string>(ids.length).fill('')
  let errors = 0
  let next = 0
  const started = performance.now()
  const one = (id: number): Promise<string> =>
    new Promise((resolve) => {
      const req = request(`${baseUrl}/home?id=${id}`, { agent, timeout: 10_000 }, (res) => {
        let body = ''
        res.setEncoding('utf8')
        res.on('data', (d: string) => (body += d))
        res.on('end', () => resolve(res.statusCode === 200 ? (HELLO.exec(body)?.[1] ?? '') : ''))
        res.on('error', () => resolve(''))
      })
      req.on('timeout', () => req.destroy(new Error('timeout')))
      req.on('error', () => resolve(''))
      req.end()
    })
  const worker = async (): Promise<void> => {
    while (next < ids.length) {
      const k = next++
      const server = await one(ids[k]!)
      if (server === '') errors++
      servers[k] = server
    }
  }
  await Promise.all(Array.from({ length: Math.min(concurrency, ids.length) }, worker))
  agent.destroy()
  const counts = new Map<string, number>()
  for (const s of servers) if (s !== '') counts.set(s, (counts.get(s) ?? 0) + 1)
  return { counts, servers, errors, ms: performance.now() - started }
}

/** Calls an admin endpoint; resolves with the parsed JSON answer and status. */
export function admin(baseUrl: string, method: string, path: string, body?: unknown): Promise<{ status: number; json: { message: unknown; status: string } }> {
  return new Promise((resolve, reject) => {
    const data = body === undefined ? undefined : Buffer.from(JSON.stringify(body))
    const req = request(
      `${baseUrl}${path}`,
      { method, agent: false, headers: data ? { 'content-type': 'application/json', 'content-length': String(data.length) } : {} },
      (res) => {
        let text = ''
        res.setEncoding('utf8')
        res.on('data', (d: string) => (text += d))
        res.on('end', () => {
          try {
            resolve({ status: res.statusCode ?? 0, json: JSON.parse(text) })
          } catch {
            reject(new Error(`${method} ${path}: not JSON: ${text.slice(0, 200)}`))
          }
        })
      },
    )
    req.on('error', reject)
    req.end(data)
  })
}

/** What a section of the analysis hands back to bench/analysis.ts for docs/analysis/. */
export interface SectionResult {
  /** Markdown for docs/analysis/analysis.md (starting with a `## ` heading). */
  markdown: string
  /** Raw numbers for docs/analysis/analysis.json. */
  json: unknown
}

export interface AnalysisContext {
  /** Start the real CLI (dist/src/main.js --port 0 --host 127.0.0.1 --quiet ...args). */
  startMain(args: readonly string[]): Promise<BalancerProcess>
  /**
   * Write docs/analysis/<file> (an SVG chart); returns the path to use in the section's
   * markdown, which goes into docs/analysis/analysis.md (so: relative to docs/analysis/).
   */
  writeChart(file: string, svg: string): string
  log(line: string): void
  /** Seconds the section may take at most; stay well inside it. */
  budgetSeconds: number
}

/**
 * The A-3 hook: bench/recovery.ts (the health checker's side) exports
 *   export async function recovery(ctx: AnalysisContext): Promise<SectionResult>
 * measuring how fast a killed replica is replaced (e.g. SIGKILL a replica's pid, poll /rep
 * and a stream of requests until N is back and no request fails; repeat; chart the times).
 * bench/analysis.ts runs it when dist/bench/recovery.js exists and skips A-3 otherwise.
 */
export type RecoverySection = (ctx: AnalysisContext) => Promise<SectionResult>
