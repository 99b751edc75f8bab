// An upgrade request on a connection of its own: 101 hands the socket over with the bytes that
// came with it; any other answer is relayed and the connection closed; a broken, silent or
// refused replica is a typed failure that says whether an answer had begun.
import t, { type Test } from 'tap'
import { createServer, type AddressInfo, type Socket } from 'node:net'
import { once } from 'node:events'
import { UpgradeRequest, type UpgradeUser } from '../../src/upstream/upgrade-request.js'
import { waitFor } from '../fixtures/sockets.js'
import { freeLoopbackPort as freePort } from '../../src/replicas/free-port.js'

const HEAD = 'GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n'

/** A replica that answers `answer(socket)` once the request head is in. */
async function replica(t: Test, answer: (socket: Socket) => void): Promise<number> {
  const sockets = new Set<Socket>()
  const server = createServer((socket) => {
    sockets.add(socket)
    socket.on('error', () => {})
    let got = ''
    socket.on('data', (d: Buffer) => {
      const before = got.includes('\r\n\r\n')
      got += d.toString('latin1')
      if (!before && got.includes('\r\n\r\n')) answer(socket)
    })
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.teardown(() => {
    for (const s of sockets) s.destroy()
    server.close()
  })
  return (server.address() as AddressInfo).port
}

interface Seen {
  switched?: { message: string; raw: string[]; rest: string; socket: Socket }
  head?: [number, string, string[]]
  body: string
  last: boolean
  failure?: { code: string; answered: boolean }
}

function user(seen: Seen): UpgradeUser {
  return {
    onSwitched: (message, raw, socket, rest) => void (seen.switched = { message, raw, rest: rest.toString('latin1'), socket }),
    onHead: (status, message, raw) => void (seen.head = [status, message, raw]),
    onData: (chunk, last) => {
      seen.body += chunk.toString('latin1')
      seen.last ||= last
    },
    onFailure: (err, answered) => void (seen.failure = { code: err.code, answered }),
  }
}

function send(t: Test, port: number, timeoutMs = 5000): { seen: Seen; req: UpgradeRequest } {
  const seen: Seen = { body: '', last: false }
  const req = new UpgradeRequest('127.0.0.1', port, HEAD, timeoutMs, user(seen))
  t.teardown(() => req.socket.destroy())
  return { seen, req }
}

t.test('101: the socket and the bytes after the head are handed over, nothing read from it after', async (t) => {
  const port = await replica(t, (s) => {
    s.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\nEARLY')
    setTimeout(() => s.write('LATER'), 50)
  })
  const { seen } = send(t, port)
  await waitFor('the switch', () => seen.switched !== undefined)
  const sw = seen.switched!
  t.equal(sw.message, 'Switching Protocols')
  t.same(sw.raw, ['Upgrade', 'websocket', 'Connection', 'Upgrade'])
  t.equal(sw.rest, 'EARLY')
  t.equal(sw.socket.isPaused(), true, 'paused until the tunnel takes it')
  const later: Buffer[] = []
  sw.socket.on('data', (d: Buffer) => later.push(d))
  sw.socket.resume()
  await waitFor('the next bytes, for the new owner', () => Buffer.concat(later).toString() === 'LATER')
  t.equal(seen.head, undefined)
  t.equal(seen.failure, undefined)
})

t.test('another answer: head and de-chunked body, then the connection closes', async (t) => {
  const port = await replica(t, (s) => s.write('HTTP/1.1 403 Forbidden\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nno\r\n0\r\n\r\n'))
  const { seen, req } = send(t, port)
  await waitFor('the whole answer', () => seen.last)
  t.same(seen.head, [403, 'Forbidden', ['Transfer-Encoding', 'chunked']])
  t.equal(seen.body, 'no')
  await waitFor('the connection to close', () => req.socket.destroyed)
  t.equal(seen.failure, undefined)
})

t.test('hostile or absent replicas: typed failures, answered or not', async (t) => {
  const cases: Array<[string, (s: Socket) => void, string, boolean]> = [
    ['a malformed status line', (s) => s.write('HTTP/1.1 abc nope\r\n\r\n'), 'HPE_UPSTREAM', false],
    ['both framings at once', (s) => s.write('HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n'), 'HPE_UPSTREAM', false],
    ['an oversized head', (s) => s.write('HTTP/1.1 200 OK\r\nX: ' + 'a'.repeat(70 * 1024)), 'HPE_UPSTREAM', false],
    ['a close before any answer', (s) => s.end(), 'ECONNRESET', false],
    ['a body cut short', (s) => s.end('HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc'), 'ECONNRESET', true],
  ]
  for (const [what, answer, code, answered] of cases) {
    const port = await replica(t, answer)
    const { seen } = send(t, port)
    await waitFor(`${what}: a failure`, () => seen.failure !== undefined)
    t.same(seen.failure, { code, answered }, what)
    t.equal(seen.switched, undefined, `${what}: nothing handed over`)
  }
})

t.test('a silent replica times out; a closed port is refused', async (t) => {
  const silent = await replica(t, () => {})
  const { seen } = send(t, silent, 100)
  await waitFor('the timeout', () => seen.failure !== undefined)
  t.same(seen.failure, { code: 'ETIMEDOUT_UPSTREAM', answered: false })
  const closed = send(t, await freePort())
  await waitFor('the refusal', () => closed.seen.failure !== undefined)
  t.same(closed.seen.failure, { code: 'ECONNREFUSED', answered: false })
})

t.test('abort: the connection closes and nothing more is reported', async (t) => {
  const port = await replica(t, () => {})
  const { seen, req } = send(t, port)
  await once(req.socket, 'connect')
  req.abort()
  await waitFor('the socket to close', () => req.socket.destroyed)
  t.equal(seen.failure, undefined)
})
