/**
 * The edge's table: each row is the bytes a client sends, the status of the first answer, whether
 * the connection stays open after it, and what the recording replica received (complete requests,
 * `METHOD target`; nothing for every smuggling row). Each row cites its rule. ../shared/HARDENING.md
 * numbers the cases (#n below).
 */
export interface Row {
  name: string
  /** The rule (RFC section, or the anchor behaviour of HAProxy / nginx / llhttp). */
  rule: string
  send: string
  status: number
  /** Answers expected before the connection's fate is checked (default 1). */
  answers?: number
  /** The second answer's status, when there are two (default: `status`). */
  then?: number
  /** The connection stays open (a follow-up request is answered) rather than closed. */
  open: boolean
  seen: string[]
  /** The Host the replica saw for the first request, when the row is about it. */
  host?: string
  /** The client half-closes right after sending. */
  fin?: boolean
}

const H = 'Host: t\r\n'
const GET = (path: string, extra = ''): string => `GET ${path} HTTP/1.1\r\n${H}${extra}\r\n`
const POST = (extra: string, body: string): string => `POST /p HTTP/1.1\r\n${H}${extra}\r\n${body}`
const SMUGGLED = 'GET /smuggled HTTP/1.1\r\nHost: t\r\n\r\n'

export const ROWS: readonly Row[] = [
  // Requests that must go through.
  { name: 'plain GET', rule: 'RFC 9112 3', send: GET('/a'), status: 200, open: true, seen: ['GET /a'] },
  { name: 'HEAD', rule: 'RFC 9110 9.3.2', send: `HEAD /a HTTP/1.1\r\n${H}\r\n`, status: 200, open: true, seen: ['HEAD /a'] },
  { name: 'HTTP/1.2 is served as 1.1', rule: 'RFC 9110 6.2', send: `GET /v HTTP/1.2\r\n${H}\r\n`, status: 200, open: true, seen: ['GET /v'] },
  { name: 'absolute-form: origin-form and Host from the target (#23)', rule: 'RFC 9112 3.2.2', send: `GET http://real.example:8080/abs?q=1 HTTP/1.1\r\nHost: other\r\n\r\n`, status: 200, open: true, seen: ['GET /abs?q=1'], host: 'real.example:8080' },
  { name: 'absolute-form without a path', rule: 'RFC 9112 3.2.2', send: `GET http://real.example HTTP/1.1\r\n\r\n`, status: 200, open: true, seen: ['GET /'], host: 'real.example' },
  { name: 'OPTIONS *', rule: 'RFC 9112 3.2.4', send: `OPTIONS * HTTP/1.1\r\n${H}\r\n`, status: 200, open: true, seen: ['OPTIONS *'] },
  { name: 'obs-text in a value is forwarded (#20)', rule: 'RFC 9110 5.5', send: GET('/o', 'X-A: caf\xe9\xff\r\n'), status: 200, open: true, seen: ['GET /o'] },
  { name: 'empty lines before the request line', rule: 'RFC 9112 2.2', send: `\r\n${GET('/e')}`, status: 200, open: true, seen: ['GET /e'] },
  { name: 'HTTP/1.0 without Host, then close', rule: 'RFC 9112 3.2, 9.3', send: 'GET /old HTTP/1.0\r\n\r\n', status: 200, open: false, seen: ['GET /old'] },
  { name: 'POST with Content-Length', rule: 'RFC 9112 6.2', send: POST('Content-Length: 5\r\n', 'hello'), status: 200, open: true, seen: ['POST /p'] },
  { name: 'POST chunked, with an extension and a trailer', rule: 'RFC 9112 7.1', send: POST('Transfer-Encoding: chunked\r\n', '5;x=1\r\nhello\r\n0\r\nX-T: 1\r\n\r\n'), status: 200, open: true, seen: ['POST /p'] },
  { name: 'Expect: 100-continue passes', rule: 'RFC 9110 10.1.1', send: POST('Content-Length: 2\r\nExpect: 100-continue\r\n', 'ok'), status: 200, open: true, seen: ['POST /p'] },
  { name: 'a request followed by FIN is answered', rule: 'RFC 9112 9.6', send: GET('/fin'), status: 200, open: false, seen: ['GET /fin'], fin: true },
  { name: 'HTTP/1.0 followed by FIN is answered', rule: 'RFC 9112 9.6', send: 'GET /fin10 HTTP/1.0\r\n\r\n', status: 200, open: false, seen: ['GET /fin10'], fin: true },
  { name: 'Connection: close, then a pipelined request (#30)', rule: 'RFC 9112 9.6', send: GET('/first', 'Connection: close\r\n') + 'GET /admin HTTP/1.1\r\nHost: t\r\n\r\n', status: 200, open: false, seen: ['GET /first'] },
  { name: 'two pipelined requests', rule: 'RFC 9112 9.3.2', send: GET('/one') + GET('/two'), status: 200, answers: 2, open: true, seen: ['GET /one', 'GET /two'] },

  // Framing: never forwarded (smuggling rows).
  { name: 'CL + TE (#1)', rule: 'RFC 9112 6.1', send: POST('Content-Length: 6\r\nTransfer-Encoding: chunked\r\n', `0\r\n\r\n${SMUGGLED}`), status: 400, open: false, seen: [] },
  { name: 'TE chunked, identity (#2)', rule: 'RFC 9112 6.3 item 4', send: POST('Transfer-Encoding: chunked, identity\r\n', `0\r\n\r\n${SMUGGLED}`), status: 400, open: false, seen: [] },
  { name: 'TE chunkedchunked (#3)', rule: 'llhttp transfer-encoding.md', send: POST('Transfer-Encoding: chunkedchunked\r\n', `0\r\n\r\n${SMUGGLED}`), status: 400, open: false, seen: [] },
  { name: 'TE gzip only (#4)', rule: 'RFC 9112 6.3 item 4', send: POST('Transfer-Encoding: gzip\r\n', `0\r\n\r\n${SMUGGLED}`), status: 400, open: false, seen: [] },
  { name: 'two TE lines chunked / identity (#5)', rule: 'HAProxy http_transfer_encoding.vtc', send: POST('Transfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n', `0\r\n\r\n${SMUGGLED}`), status: 400, open: false, seen: [] },
  { name: 'TE chunked twice', rule: 'HAProxy http_transfer_encoding.vtc', send: POST('Transfer-Encoding: chunked, chunked\r\n', `0\r\n\r\n${SMUGGLED}`), status: 400, open: false, seen: [] },
  { name: 'whitespace-preceded TE line (#6)', rule: 'RFC 9112 2.2', send: `POST /p HTTP/1.1\r\n Transfer-Encoding: chunked\r\n${H}Content-Length: 5\r\n\r\n0\r\n\r\n${SMUGGLED}`, status: 400, open: false, seen: [] },
  { name: 'space before the colon (#7)', rule: 'RFC 9112 5.1', send: `GET /s HTTP/1.1\r\nHost : t\r\n\r\n`, status: 400, open: false, seen: [] },
  { name: 'duplicate equal Content-Length (#8)', rule: 'RFC 9110 8.6', send: POST('Content-Length: 3\r\nContent-Length: 3\r\n', 'abc'), status: 400, open: false, seen: [] },
  { name: 'two different Content-Lengths (#9)', rule: 'RFC 9112 6.3 item 5', send: POST('Content-Length: 3\r\nContent-Length: 4\r\n', 'abcd'), status: 400, open: false, seen: [] },
  { name: 'Content-Length list (#10)', rule: 'RFC 9110 8.6', send: POST('Content-Length: 3, 3\r\n', 'abc'), status: 400, open: false, seen: [] },
  { name: 'Content-Length +3 (#11)', rule: 'RFC 9112 6.3 item 5', send: POST('Content-Length: +3\r\n', 'abc'), status: 400, open: false, seen: [] },
  { name: 'Content-Length -1 (#11)', rule: 'RFC 9112 6.3 item 5', send: POST('Content-Length: -1\r\n', 'abc'), status: 400, open: false, seen: [] },
  { name: 'Content-Length 0x3 (#11)', rule: 'RFC 9112 6.3 item 5', send: POST('Content-Length: 0x3\r\n', 'abc'), status: 400, open: false, seen: [] },
  { name: 'Content-Length overflow (#12)', rule: 'RFC 9112 6.3', send: POST('Content-Length: 99999999999999999999999\r\n', 'abc'), status: 400, open: false, seen: [] },
  { name: 'chunk size zz (#13)', rule: 'RFC 9112 7.1', send: POST('Transfer-Encoding: chunked\r\n', `zz\r\nabc\r\n0\r\n\r\n${SMUGGLED}`), status: 400, open: false, seen: [] },
  { name: 'chunk size 0x3 (#13)', rule: 'RFC 9112 7.1', send: POST('Transfer-Encoding: chunked\r\n', `0x3\r\nabc\r\n0\r\n\r\n${SMUGGLED}`), status: 400, open: false, seen: [] },
  { name: 'chunk size overflow (#13)', rule: 'RFC 9112 7.1', send: POST('Transfer-Encoding: chunked\r\n', `ffffffffffffffffff\r\nabc\r\n0\r\n\r\n${SMUGGLED}`), status: 400, open: false, seen: [] },
  { name: 'chunk extension ended by bare LF (#14)', rule: 'node test-http-chunked-smuggling.js', send: POST('Transfer-Encoding: chunked\r\n', `3;x\nabc\r\n0\r\n\r\n${SMUGGLED}`), status: 400, open: false, seen: [] },
  { name: 'chunk data longer than its size (#15)', rule: 'RFC 9112 7.1', send: POST('Transfer-Encoding: chunked\r\n', `3\r\nabcdef\r\n0\r\n\r\n${SMUGGLED}`), status: 400, open: false, seen: [] },
  { name: 'HTTP/1.0 with Transfer-Encoding (#26)', rule: 'RFC 9112 6.1', send: `POST /p HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n${SMUGGLED}`, status: 400, open: false, seen: [] },

  // Head rules.
  { name: 'obs-fold (#16)', rule: 'RFC 9112 5.2', send: `GET /f HTTP/1.1\r\n${H}X-A: b\r\n c\r\n\r\n`, status: 400, open: false, seen: [] },
  { name: 'bare LF line endings (#17)', rule: 'RFC 9112 2.2', send: 'GET /lf HTTP/1.1\nHost: t\n\n', status: 400, open: false, seen: [] },
  { name: 'bare LF after a CRLF line (#17)', rule: 'RFC 9112 2.2', send: `GET /lf HTTP/1.1\r\nHost: t\nX-A: b\r\n\r\n`, status: 400, open: false, seen: [] },
  { name: 'bare CR in a value (#18)', rule: 'RFC 9112 2.2', send: GET('/cr', 'X-A: a\rb\r\n'), status: 400, open: false, seen: [] },
  { name: 'NUL in a value (#19)', rule: 'RFC 9110 5.5', send: GET('/nul', 'X-A: a\x00b\r\n'), status: 400, open: false, seen: [] },
  { name: 'no Host in HTTP/1.1 (#21)', rule: 'RFC 9112 3.2', send: 'GET /nohost HTTP/1.1\r\n\r\n', status: 400, open: false, seen: [] },
  { name: 'two Host lines (#22)', rule: 'RFC 9112 3.2', send: `GET /hh HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n`, status: 400, open: false, seen: [] },
  { name: 'an invalid Host', rule: 'RFC 9112 3.2, RFC 3986 3.2.2', send: `GET /bad HTTP/1.1\r\nHost: a b/c\r\n\r\n`, status: 400, open: false, seen: [] },
  { name: 'GET * (#24)', rule: 'RFC 9112 3.2.4; HAProxy h1_request_target_validation c5', send: `GET * HTTP/1.1\r\n${H}\r\n`, status: 400, open: false, seen: [] },
  { name: 'GET admin (#25)', rule: 'HAProxy h1_request_target_validation c12', send: `GET admin HTTP/1.1\r\n${H}\r\n`, status: 400, open: false, seen: [] },
  { name: 'GET authority-form (#25)', rule: 'RFC 9112 3.2.3', send: `GET a.example:80 HTTP/1.1\r\n${H}\r\n`, status: 400, open: false, seen: [] },
  { name: 'HTTP/2.0 request line (#27)', rule: 'RFC 9110 15.6.6', send: `GET /h2 HTTP/2.0\r\n${H}\r\n`, status: 505, open: false, seen: [] },
  { name: 'HTTP/0.9 (#28)', rule: 'RFC 9112 2.3', send: 'GET /\r\n\r\n', status: 400, open: false, seen: [] },
  { name: 'method not a token (#29)', rule: 'RFC 9112 3', send: `G(T /m HTTP/1.1\r\n${H}\r\n`, status: 400, open: false, seen: [] },
  { name: 'space inside the target (#29)', rule: 'RFC 9112 3', send: `GET /a b HTTP/1.1\r\n${H}\r\n`, status: 400, open: false, seen: [] },
  { name: 'valid but unknown method BREW (#29)', rule: 'RFC 9110 9.1: 501 (llhttp knows a fixed list; see README)', send: `BREW /pot HTTP/1.1\r\n${H}\r\n`, status: 501, open: false, seen: [] },
  { name: 'CONNECT', rule: 'RFC 9110 9.3.6: no tunnels (405)', send: `CONNECT t:443 HTTP/1.1\r\n${H}\r\n`, status: 405, open: false, seen: [] },
  { name: 'a 20 KiB header (#31)', rule: 'RFC 6585 5 (431)', send: GET('/big', `X-Big: ${'a'.repeat(20 * 1024)}\r\n`), status: 431, open: false, seen: [] },
  { name: 'a 20 KiB request line (#31)', rule: 'RFC 9112 3 (414)', send: GET(`/${'u'.repeat(20 * 1024)}`), status: 414, open: false, seen: [] },
  { name: '150 header lines (#32)', rule: 'Envoy max_headers_count 100; HAProxy tune.http.maxhdr 101', send: GET('/many', 'X-H: 1\r\n'.repeat(150)), status: 431, open: false, seen: [] },
  { name: 'Expect: foo (#33)', rule: 'RFC 9110 10.1.1 (417)', send: POST('Content-Length: 2\r\nExpect: foo\r\n', 'ok'), status: 417, open: false, seen: [] },
  { name: 'a refusal after a good request: the good one is answered first', rule: 'RFC 9112 9.3.2', send: GET('/good') + `GET /bad HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n`, status: 200, answers: 2, then: 400, open: false, seen: ['GET /good'] },
]
