// The fast front's response heads: clientHead's bytes, and errorAnswer checked byte for byte
// against what node:http writes for respond.ts's sendError.
import t from 'tap'
import http from 'node:http'
import net from 'node:net'
import type { AddressInfo } from 'node:net'
import { AS_IS, CHUNKED, clientHead, clientHeadFromText, httpDate } from '../../src/front/fast-response.js'
import { endToEnd } from '../../src/route/forward.js'
import { ResponseParser, responseRawHeaders } from '../../src/upstream/response-parser.js'
import { errorAnswer, sendError } from '../../src/front/respond.js'
import { BalancerError } from '../../src/errors.js'

const DATE = /\r\nDate: ([^\r\n]*)\r\n/

t.test('httpDate: an RFC 7231 date, near now', async (t) => {
  const d = httpDate()
  t.match(d, /^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d\d (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} \d\d:\d\d:\d\d GMT$/)
  t.ok(Math.abs(Date.parse(d) - Date.now()) < 2000)
  t.equal(httpDate(), d, 'cached within the same tick')
})

t.test('clientHead: status line', async (t) => {
  t.match(clientHead(200, 'Fine', [], true, true, 5).head, /^HTTP\/1\.1 200 Fine\r\n/, "the replica's message")
  t.match(clientHead(404, '', [], true, true, 5).head, /^HTTP\/1\.1 404 Not Found\r\n/, "node's default when empty")
  t.match(clientHead(200, '', [], true, true, 5).head, /^HTTP\/1\.1 200 OK\r\n/)
  t.match(clientHead(599, '', [], true, true, 5).head, /^HTTP\/1\.1 599 unknown\r\n/, "node's 'unknown' for a code it has no text for")
})

t.test('clientHead: headers in order and case, Date, Connection, framing', async (t) => {
  const headers = ['X-Zeta', 'z', 'content-type', 'text/plain', 'X-Alpha', 'a, b', 'x-alpha', 'c', 'X-Latin', 'caf\xe9', 'X-Date', 'not a date']
  const keep = clientHead(200, 'OK', headers, false, true, 7)
  t.equal(
    keep.head,
    'HTTP/1.1 200 OK\r\nX-Zeta: z\r\ncontent-type: text/plain\r\nX-Alpha: a, b\r\nx-alpha: c\r\nX-Latin: caf\xe9\r\nX-Date: not a date\r\n' +
      `Date: ${httpDate()}\r\nConnection: keep-alive\r\nKeep-Alive: timeout=7\r\nTransfer-Encoding: chunked\r\n\r\n`,
  )
  t.equal(keep.framing, CHUNKED)

  const close = clientHead(200, 'OK', headers, false, false, 7)
  t.match(close.head, /\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n$/)
  t.notMatch(close.head, /Keep-Alive/)
  t.equal(close.framing, CHUNKED)
})

t.test('clientHead: Date only when the replica sent none', async (t) => {
  for (const name of ['Date', 'date', 'DATE', 'dAtE']) {
    const { head } = clientHead(200, 'OK', [name, 'Tue, 01 Jan 2030 00:00:00 GMT'], true, true, 5)
    t.equal(head, `HTTP/1.1 200 OK\r\n${name}: Tue, 01 Jan 2030 00:00:00 GMT\r\nConnection: keep-alive\r\nKeep-Alive: timeout=5\r\n\r\n`, name)
  }
  const { head } = clientHead(200, 'OK', ['X-A', 'b'], true, true, 5)
  t.equal(head.match(/\r\nDate: /g)?.length, 1, 'added once')
  t.equal(DATE.exec(head)?.[1], httpDate())
})

t.test('clientHead: framing', async (t) => {
  for (const name of ['Content-Length', 'content-length', 'CONTENT-LENGTH']) {
    const r = clientHead(200, 'OK', [name, '5', 'Date', 'x'], false, true, 5)
    t.equal(r.framing, AS_IS, name)
    t.equal(r.head, `HTTP/1.1 200 OK\r\n${name}: 5\r\nDate: x\r\nConnection: keep-alive\r\nKeep-Alive: timeout=5\r\n\r\n`, name)
  }
  const bodyless = clientHead(204, '', ['Date', 'x'], true, false, 5)
  t.equal(bodyless.framing, AS_IS, 'bodyless')
  t.equal(bodyless.head, 'HTTP/1.1 204 No Content\r\nDate: x\r\nConnection: close\r\n\r\n')
  const bodylessWithLength = clientHead(200, 'OK', ['Content-Length', '10', 'Date', 'x'], true, true, 5)
  t.equal(bodylessWithLength.framing, AS_IS, 'bodyless with a length')
  t.notMatch(bodylessWithLength.head, /Transfer-Encoding/)
  const lookalike = clientHead(200, 'OK', ['X-Content-Length', '5', 'Date', 'x'], false, true, 5)
  t.equal(lookalike.framing, CHUNKED, 'X-Content-Length is not a length')
  t.match(lookalike.head, /\r\nKeep-Alive: timeout=5\r\nTransfer-Encoding: chunked\r\n\r\n$/, 'Transfer-Encoding last')
})

t.test('clientHead: throws on what node:http refuses to send', async (t) => {
  t.throws(() => clientHead(200, 'OK', ['bad name', 'v'], false, true, 5), TypeError)
  t.throws(() => clientHead(200, 'OK', ['', 'v'], false, true, 5), TypeError, 'empty name')
  t.throws(() => clientHead(200, 'OK', ['X-A:', 'v'], false, true, 5), TypeError, 'colon in name')
  t.throws(() => clientHead(200, 'OK', ['X-\xe9', 'v'], false, true, 5), TypeError, 'non-ASCII name')
  t.throws(() => clientHead(200, 'OK', ['X-A', 'a\nb'], false, true, 5), TypeError, 'LF in value')
  t.throws(() => clientHead(200, 'OK', ['X-A', 'a\rb'], false, true, 5), TypeError, 'CR in value')
  t.throws(() => clientHead(200, 'OK', ['X-A', 'a\0b'], false, true, 5), TypeError, 'NUL in value')
  t.throws(() => clientHead(200, 'OK', ['X-A', 'a\x7fb'], false, true, 5), TypeError, 'DEL in value')
  t.throws(() => clientHead(200, 'OK', ['X-A', 'caf\u0101'], false, true, 5), TypeError, 'a char above 0xff')
  t.doesNotThrow(() => clientHead(200, 'OK', ['X-A', 'a\tb caf\xe9 \x80\xff'], false, true, 5), 'tab, space, obs-text')
  // node:http agrees on each of these.
  const res = new http.ServerResponse(new http.IncomingMessage(new net.Socket()))
  t.throws(() => res.setHeader('bad name', 'v'), TypeError)
  t.throws(() => res.setHeader('X-A', 'a\nb'), TypeError)
  t.throws(() => res.setHeader('X-A', 'a\0b'), TypeError)
  t.throws(() => res.setHeader('X-A', 'a\x7fb'), TypeError)
  t.doesNotThrow(() => res.setHeader('X-A', 'a\tb caf\xe9 \x80\xff'))
})

// --- Against a real node:http server --------------------------------------------------------

const ERRORS = [
  new BalancerError('NO_REPLICAS'),
  new BalancerError('INTERNAL', 'café — ünïcode ☕ "quoted" \\ back'),
  new BalancerError('METHOD_NOT_ALLOWED'),
  new BalancerError('BODY_TOO_LARGE'),
  new BalancerError('UPSTREAM_TIMEOUT'),
  new BalancerError('INVALID_JSON'),
]

/** What a replica answer looks like when node:http writes it from writeHead's raw header list. */
const HEADS: Array<{ status: number; message: string; headers: string[]; body: string }> = [
  { status: 200, message: '', headers: ['X-Zeta', 'z', 'content-type', 'text/plain', 'x-zeta', 'y'], body: 'hello' },
  { status: 200, message: 'Fine', headers: ['Content-Length', '5', 'X-A', 'b'], body: 'hello' },
  { status: 404, message: '', headers: ['date', 'Tue, 01 Jan 2030 00:00:00 GMT'], body: 'nope' },
  { status: 204, message: '', headers: ['X-A', 'b'], body: '' },
]

/** Reads one response: resolves with every byte received once it is complete. */
function exchange(port: number, request: string, complete: (data: Buffer) => boolean, sockets: Set<net.Socket>): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1')
    sockets.add(socket)
    let data = Buffer.alloc(0)
    const fail = (why: string) => {
      clearTimeout(deadline)
      socket.destroy()
      reject(new Error(`${why}; got ${JSON.stringify(data.toString('latin1'))}`))
    }
    const deadline = setTimeout(() => fail('no complete response within 5 s'), 5000)
    socket.on('data', (chunk: Buffer) => {
      data = Buffer.concat([data, chunk])
      if (complete(data)) {
        clearTimeout(deadline)
        resolve(data)
      }
    })
    socket.on('end', () => {
      if (!complete(data)) fail('connection ended early')
    })
    socket.on('error', (err) => fail(err.message))
    socket.write(request, 'latin1')
  })
}

/** Complete once the head is in and, unless bodyless, content-length bytes after it. */
function lengthComplete(isHead: boolean) {
  return (data: Buffer): boolean => {
    const headEnd = data.indexOf('\r\n\r\n')
    if (headEnd === -1) return false
    const length = /\r\ncontent-length: *(\d+)\r\n/i.exec(data.toString('latin1', 0, headEnd + 2))
    if (!length) throw new Error('no content-length in the error answer')
    return data.length >= headEnd + 4 + (isHead ? 0 : Number(length[1]))
  }
}

function headComplete(data: Buffer): boolean {
  return data.indexOf('\r\n\r\n') !== -1
}

function withoutDate(head: string): string {
  return head.replace(DATE, '\r\nDate: <date>\r\n')
}

t.test('errorAnswer is what node:http writes for sendError', async (t) => {
  const server = http.createServer((req, res) => {
    const m = /^\/(error|head)\/(\d+)$/.exec(req.url ?? '')
    if (m?.[1] === 'error') return sendError(res, ERRORS[Number(m[2])]!)
    if (m?.[1] === 'head') {
      const h = HEADS[Number(m[2])]!
      if (h.message) res.writeHead(h.status, h.message, h.headers)
      else res.writeHead(h.status, h.headers)
      res.end(h.body)
      return
    }
    res.writeHead(500).end()
  })
  const sockets = new Set<net.Socket>()
  t.teardown(() => {
    for (const s of sockets) s.destroy()
    server.closeAllConnections()
    return new Promise<void>((resolve) => server.close(() => resolve()))
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  t.equal(server.keepAliveTimeout, 5000, "node's default keep-alive timeout is 5 s")

  for (const [i, err] of ERRORS.entries()) {
    for (const method of ['GET', 'HEAD'] as const) {
      for (const close of [false, true]) {
        const name = `${err.code} (${err.status}) ${method}${close ? ', Connection: close' : ''}`
        const isHead = method === 'HEAD'
        const request = `${method} /error/${i} HTTP/1.1\r\nHost: 127.0.0.1\r\n${close ? 'Connection: close\r\n' : ''}\r\n`
        const got = (await exchange(port, request, lengthComplete(isHead), sockets)).toString('latin1')
        const dates = got.match(/\r\nDate: /g)
        t.equal(dates?.length, 1, `${name}: node sent one Date`)
        t.ok(Math.abs(Date.parse(DATE.exec(got)?.[1] ?? '') - Date.now()) < 5000, `${name}: node's Date is now`)
        const want = errorAnswer(err, isHead, !close, 5)
        t.equal(withoutDate(want), withoutDate(got), name)
      }
    }
  }

  // The body's UTF-8 bytes, spelled out.
  const cafe = ERRORS[1]!
  const body = Buffer.from(errorAnswer(cafe, false, true, 5), 'latin1')
  const json = body.subarray(body.indexOf('\r\n\r\n') + 4)
  t.same(JSON.parse(json.toString('utf8')), cafe.toJSON())
  t.ok(json.includes(Buffer.from([0x63, 0x61, 0x66, 0xc3, 0xa9])), 'café as UTF-8 bytes')
  t.match(body.toString('latin1'), new RegExp(`\\r\\ncontent-length: ${json.length}\\r\\n`), 'content-length counts bytes')

  // clientHead against node:http writing the same replica answer from a raw header list.
  for (const [i, h] of HEADS.entries()) {
    for (const method of ['GET', 'HEAD'] as const) {
      for (const close of [false, true]) {
        const name = `${h.status} [${h.headers.join(', ')}] ${method}${close ? ', Connection: close' : ''}`
        const request = `${method} /head/${i} HTTP/1.1\r\nHost: 127.0.0.1\r\n${close ? 'Connection: close\r\n' : ''}\r\n`
        const got = (await exchange(port, request, headComplete, sockets)).toString('latin1')
        const nodeHead = got.slice(0, got.indexOf('\r\n\r\n') + 4)
        const bodyless = method === 'HEAD' || h.status === 204 || h.status === 304
        const { head } = clientHead(h.status, h.message, h.headers, bodyless, !close, 5)
        t.equal(withoutDate(head), withoutDate(nodeHead), name)
      }
    }
  }
})

t.test('clientHeadFromText: what clientHead writes from rawHeaders, or undefined when the lines are not as it writes them', async (t) => {
  /** The replica's head through the upstream parser: what FastAnswer.answerHead gets. */
  const read = (head: string) => {
    let got: { status: number; message: string; raw: string[]; text: string } | undefined
    const p = new ResponseParser({ onHead: (status, message, text) => (got = { status, message, raw: responseRawHeaders(text), text }), onData: () => {} })
    p.expect(true)
    p.execute(Buffer.from(`${head}\r\n\r\n`, 'latin1'))
    return got!
  }
  const same = [
    'HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 56\r\nDate: Wed, 02 Dec 2026 19:12:13 GMT\r\nConnection: keep-alive\r\nKeep-Alive: timeout=65',
    'HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nX-A: 1\r\nTransfer-Encoding: chunked\r\nX-B: 2\r\nUpgrade: h2c\r\nX-C: 3',
    'HTTP/1.1 204 No Content',
    'HTTP/1.1 200 OK\r\nConnection: keep-alive',
    'HTTP/1.1 201 \r\nSet-Cookie: a=1\r\nset-cookie: b=2\r\nX-Latin: caf\xe9\r\nX-Empty: \r\nX-Tab: a\tb\r\nDATE: x\r\nCONTENT-LENGTH: 0',
    'HTTP/1.0 200 Fine\r\nConnection: Keep-Alive\r\nX-A: 1',
    'HTTP/1.1 200 OK\r\nConnection:keep-alive\r\nConnection:  KEEP-ALIVE \r\nX-A: 1',
  ]
  const different = [
    'HTTP/1.1 200 OK\r\nX-A:1',
    'HTTP/1.1 200 OK\r\nX-A:  1',
    'HTTP/1.1 200 OK\r\nX-A: 1 ',
    'HTTP/1.1 200 OK\r\nX-A: 1\t',
    'HTTP/1.1 200 OK\r\nX-A: \xa01',
    'HTTP/1.1 200 OK\r\nX-A: 1\x0b',
    'HTTP/1.1 200 OK\r\nX-A:',
    'HTTP/1.1 200 OK\r\nX-A: a\r\n b',
    'HTTP/1.1 200 OK\r\nConnection: close\r\nClose: x\r\nX-A: 1',
    'HTTP/1.1 200 OK\r\nX-A: 1\r\nConnection: keep-alive, X-A',
    'HTTP/1.1 200 OK\r\nConnection:xkeep-alive\r\nXKeep-Alive: 1',
    'HTTP/1.1 200 OK\r\nConnection: keep-alivex\r\nKeep-Alivex: 1',
    'HTTP/1.1 200 OK\r\nX A: 1',
    'HTTP/1.1 200 OK\r\nX-A: a\x7fb',
    'HTTP/1.1 200 OK\r\nX-A: a\x01b',
  ]
  const noDate = (h: { head: string; framing: number } | undefined) => h && { head: withoutDate(h.head), framing: h.framing }
  for (const head of [...same, ...different]) {
    const r = read(head)
    for (const bodyless of [false, true]) {
      for (const keepAlive of [false, true]) {
        const name = `${JSON.stringify(head)} bodyless=${bodyless} keepAlive=${keepAlive}`
        const fromText = clientHeadFromText(r.status, r.message, r.text, bodyless, keepAlive, 5)
        if (different.includes(head)) {
          t.equal(fromText, undefined, name)
          continue
        }
        t.same(noDate(fromText), noDate(clientHead(r.status, r.message, endToEnd(r.raw), bodyless, keepAlive, 5)), name)
      }
    }
  }
  // The Date the replica sent is kept (and not added again), and the text's lines are copied.
  t.equal(clientHeadFromText(200, 'OK', 'HTTP/1.1 200 OK\r\nDate: x\r\nConnection: keep-alive\r\nContent-Length: 1', false, true, 5)?.head, 'HTTP/1.1 200 OK\r\nDate: x\r\nContent-Length: 1\r\nConnection: keep-alive\r\nKeep-Alive: timeout=5\r\n\r\n')
})
