/**
 * Opening a listener with an error that says which setting to change, and the address it got.
 * Shared by the single process (app.ts) and the cluster's workers and primary (src/cluster/).
 */
import type { AddressInfo, Server as TcpServer } from 'node:net'
import { OPTIONS } from './config.js'

/**
 * Listen, or fail with a message that says which setting to change: the `flag` of the
 * option and its environment twin (`--port` or `LB_PORT`).
 */
export function listen(server: TcpServer, port: number, host: string, what: string, flag: string): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException): void => {
      const where = `${host.includes(':') ? `[${host}]` : host}:${port}`
      const option = OPTIONS.find((o) => o.flag === flag)
      const change = option ? `; choose another port with --${option.flag} or ${option.env}` : ''
      // The same code as the system error, a message that says what to change.
      const explained = (message: string): Error => Object.assign(new Error(message, { cause: err }), { code: err.code })
      if (err.code === 'EADDRINUSE') reject(explained(`the ${what} port is in use: ${where} (EADDRINUSE)${change}`))
      else if (err.code === 'EACCES') reject(explained(`no permission to listen on ${where} for ${what} (EACCES)${change}`))
      else if (err.code === 'EADDRNOTAVAIL') reject(explained(`cannot listen on ${where} for ${what}: no such local address (EADDRNOTAVAIL); check --host or LB_HOST`))
      else reject(err)
    }
    server.once('error', onError)
    server.listen(port, host, () => {
      server.off('error', onError)
      resolve()
    })
  })
}

/** `host:port` as bound (`[::1]:5000` for IPv6). */
export function boundAddress(server: TcpServer): string {
  const a = server.address() as AddressInfo
  return a.family === 'IPv6' ? `[${a.address}]:${a.port}` : `${a.address}:${a.port}`
}

/** `http://host:port` for a listener bound to `host`, with a loopback host when it listens on all interfaces. */
export function urlOf(host: string, port: number): string {
  const shown = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host
  return `http://${shown.includes(':') ? `[${shown}]` : shown}:${port}`
}
