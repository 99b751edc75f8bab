/**
 * Waiting for a new replica's `GET /heartbeat` to answer 200: a replica joins the ring only
 * once it answers, so the first request routed to it never meets a closed port.
 */
import { request } from 'node:http'
import { setTimeout as sleep } from 'node:timers/promises'

/**
 * The one heartbeat probe of the replica providers (the health checker's worker keeps its own,
 * on a keep-alive agent): true on a 200 within `timeoutMs`, else why not (never rejects).
 */
export function heartbeatReason(host: string, port: number, timeoutMs: number): Promise<true | string> {
  return new Promise((resolve) => {
    const req = request({ host, port, path: '/heartbeat', method: 'GET', agent: false, timeout: timeoutMs }, (res) => {
      res.resume()
      res.on('end', () => resolve(res.statusCode === 200 ? true : `HTTP ${res.statusCode}`))
      res.on('error', (err) => resolve(err.message))
    })
    req.on('timeout', () => req.destroy(new Error(`timed out after ${timeoutMs} ms`)))
    req.on('error', (err: NodeJS.ErrnoException) => resolve(err.code ? `${err.code} ${host}:${port}` : err.message))
    req.end()
  })
}

/** One probe: true on a 200 within `timeoutMs`, false otherwise; never rejects. */
export async function probeHeartbeat(host: string, port: number, timeoutMs: number): Promise<boolean> {
  return (await heartbeatReason(host, port, timeoutMs)) === true
}

export interface WaitOptions {
  timeoutMs: number
  /** Pause between failed probes. */
  intervalMs?: number
  /** Stops waiting early (e.g. the process exited); the promise rejects with its reason. */
  signal?: AbortSignal
}

/** Probe until the heartbeat answers or the deadline passes (then reject with a clear reason). */
export async function waitForHeartbeat(host: string, port: number, options: WaitOptions): Promise<void> {
  const deadline = Date.now() + options.timeoutMs
  const interval = options.intervalMs ?? 50
  for (;;) {
    options.signal?.throwIfAborted()
    const left = deadline - Date.now()
    if (left <= 0) throw new Error(`no heartbeat from ${host}:${port} within ${options.timeoutMs} ms`)
    if (await probeHeartbeat(host, port, Math.min(1000, left))) return
    options.signal?.throwIfAborted()
    await sleep(Math.min(interval, Math.max(0, deadline - Date.now())))
  }
}
