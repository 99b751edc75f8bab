/** Reaching a replica from the balancer: one heartbeat probe that says why it failed, and free loopback ports. */
import { request } from 'node:http'
import { createServer } from 'node:net'

/** One probe: true on a 200, else the reason (never rejects). */
export function probeHeartbeat(host: string, port: number, timeoutMs: number): Promise<true | string> {
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

/** A loopback port free right now (a race with its next user is handled by retrying). */
export function freeLoopbackPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.unref()
    server.on('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const address = server.address()
      const port = typeof address === 'object' && address ? address.port : 0
      server.close(() => resolve(port))
    })
  })
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms))
}
