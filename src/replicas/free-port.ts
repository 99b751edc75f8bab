/** A free loopback port for a process we start (a Docker port mapping, a benchmark's server). */
import { createServer } from 'node:net'

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
