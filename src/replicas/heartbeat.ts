/**
 * The heartbeat probe, `GET /heartbeat` answered 200, used by everyone who asks whether a
 * replica is alive: the providers waiting for a new replica (it joins the ring only once it
 * answers, so the first request routed to it never meets a closed port) and the health
 * checker's worker thread (on a keep-alive agent, every interval).
 */
import { request, type Agent } from 'node:http'
import { setTimeout as sleep } from 'node:timers/promises'

export interface ProbeOptions {
  /** The whole probe (connect, answer, body) must be done within this, or it fails. */
  timeoutMs: number
  /**
   * A keep-alive agent (the health checker keeps one socket per replica). The replica may
   * close an idle socket just as we reuse it: that says nothing about its health, so a reset
   * on a reused socket is tried once more on a fresh connection, within the same deadline.
   * Without one, each probe opens and closes its own connection.
   */
  agent?: Agent
  /** Abandons the probe (the checker stopped); it then resolves as failed with reason 'aborted'. */
  signal?: AbortSignal
}

export interface ProbeResult {
  /** A 200, body read, within the deadline. */
  ok: boolean
  /** `ok`, `status 503`, `timeout after 500 ms`, or the socket error's code (`ECONNREFUSED`). */
  reason: string
}

/** The one heartbeat probe: GET /heartbeat; never rejects. */
export function probeHeartbeat(host: string, port: number, options: ProbeOptions): Promise<ProbeResult> {
  return new Promise((resolve) => send(host, port, options, Date.now() + options.timeoutMs, true, resolve))
}

function send(host: string, port: number, options: ProbeOptions, deadline: number, retry: boolean, done: (r: ProbeResult) => void): void {
  const { agent, signal } = options
  const req = request({ host, port, path: '/heartbeat', method: 'GET', agent: agent ?? false, headers: { 'user-agent': 'ring-balancer-health' } })
  let finished = false
  const finish = (ok: boolean, reason: string): void => {
    if (finished) return
    finished = true
    clearTimeout(timer)
    signal?.removeEventListener('abort', onAbort)
    done({ ok, reason })
  }
  const onAbort = (): void => {
    finish(false, 'aborted')
    req.destroy()
  }
  if (signal?.aborted) return onAbort()
  signal?.addEventListener('abort', onAbort, { once: true })
  const timer = setTimeout(() => {
    finish(false, `timeout after ${options.timeoutMs} ms`)
    req.destroy()
  }, Math.max(0, deadline - Date.now()))
  req.once('response', (res) => {
    res.resume()
    res.once('end', () => finish(res.statusCode === 200, res.statusCode === 200 ? 'ok' : `status ${res.statusCode}`))
    res.once('error', (err: NodeJS.ErrnoException) => finish(false, err.code ?? err.message))
  })
  req.once('error', (err: NodeJS.ErrnoException) => {
    if (finished) return
    if (retry && agent !== undefined && req.reusedSocket && (err.code === 'ECONNRESET' || err.code === 'EPIPE')) {
      finished = true
      clearTimeout(timer)
      signal?.removeEventListener('abort', onAbort)
      send(host, port, options, deadline, false, done)
      return
    }
    finish(false, err.code ?? err.message)
  })
  req.end()
}

/** For the providers' start-up messages: true on a 200 within `timeoutMs`, else why not, with the address. */
export async function heartbeatReason(host: string, port: number, timeoutMs: number): Promise<true | string> {
  const { ok, reason } = await probeHeartbeat(host, port, { timeoutMs })
  return ok ? true : `${reason} (${host}:${port})`
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
    if ((await probeHeartbeat(host, port, { timeoutMs: Math.min(1000, left) })).ok) return
    options.signal?.throwIfAborted()
    await sleep(Math.min(interval, Math.max(0, deadline - Date.now())))
  }
}
