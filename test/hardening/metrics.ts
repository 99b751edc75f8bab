// The edge's own answers are counted: ring_balancer_local_responses_total{code} has exactly
// one sample per 4xx the edge wrote (and per 503 over --max-connections), through both fronts;
// a chunked body refused after its head went to node:http counts as the edge's 413, not as a
// replica's 499. A whole app (startTestApp), raw client bytes, /metrics from the admin listener.
import t from 'tap'
import { startTestApp } from '../fixtures/app.js'
import { call, waitFor } from '../fixtures/http.js'
import { observeUrl, parseMetrics, valueOf, type Sample } from '../fixtures/observe.js'
import { Client } from './fixtures/harness.js'

const H = 'Host: t\r\n'

for (const fastFront of [true, false]) {
  t.test(`edge answers in local_responses_total (fast front ${fastFront})`, async (t) => {
    const app = await startTestApp(t, ['--replicas', '1', `--fast-front=${fastFront}`, '--max-request-body', '10', '--header-timeout', '300', '--max-connections', '2'])
    const base = await observeUrl(t, app)
    const port = Number(new URL(app.url).port)
    const metrics = async (): Promise<Sample[]> => parseMetrics((await call(`${base}/metrics`)).body)

    /** Send `bytes` on a connection of its own; the status of the first answer, once the connection has ended. */
    const send = async (bytes: string): Promise<number> => {
      const c = new Client(t, port)
      c.send(bytes)
      const [answer] = await c.waitAnswers(1, 5000)
      c.socket.destroy()
      return answer?.status ?? 0
    }

    t.equal(await send(`GET /home HTTP/1.1\r\n${H}\r\n`), 200, 'a good request (not counted as the balancer\'s own)')
    t.equal(await send(`GET /home HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n`), 400, 'two Host lines')
    t.equal(await send(`GET /home HTTP/1.1\r\nHost: a b/c\r\n\r\n`), 400, 'an invalid Host')
    t.equal(await send(`GET /home HTTP/2.0\r\n${H}\r\n`), 505, 'HTTP/2.0')
    t.equal(await send(`CONNECT a.example:443 HTTP/1.1\r\nHost: a.example:443\r\n\r\n`), 405, 'CONNECT')
    t.equal(await send(`GET /${'a'.repeat(20_000)} HTTP/1.1\r\n${H}\r\n`), 414, 'a request line over the head limit')
    t.equal(await send(`POST /home HTTP/1.1\r\n${H}Content-Length: 11\r\n\r\nhello world`), 413, 'Content-Length over --max-request-body')
    // The head goes to node:http (and a replica attempt starts) before the body passes the limit.
    t.equal(await send(`POST /home HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n14\r\n${'x'.repeat(20)}\r\n0\r\n\r\n`), 413, 'a chunked body over --max-request-body')
    t.equal(await send(`GET /home HTTP/1.1\r\n${H}`), 408, 'a head not complete within --header-timeout')

    // Over --max-connections (2): once the connections above have closed, two held open, a third refused.
    await waitFor('the connections above to close', async () => valueOf(await metrics(), 'ring_balancer_open_connections', { listener: 'http' }) === 0)
    const held = [new Client(t, port), new Client(t, port)]
    await waitFor('two connections open', async () => valueOf(await metrics(), 'ring_balancer_open_connections', { listener: 'http' }) === 2)
    t.equal(await send(`GET /home HTTP/1.1\r\n${H}\r\n`), 503, 'a connection over --max-connections')
    for (const c of held) c.socket.destroy()

    const samples = await metrics()
    const local = samples.filter((s) => s.name === 'ring_balancer_local_responses_total')
    t.same(
      Object.fromEntries(local.map((s) => [s.labels.code, s.value])),
      { '400': 2, '405': 1, '408': 1, '413': 2, '414': 1, '503': 1, '505': 1 },
      'every edge answer counted once, by status, and nothing else',
    )
    const replica = app.balancer.upstreams()[0]!.name
    t.equal(valueOf(samples, 'ring_balancer_requests_total', { replica, code: '2xx' }), 1, 'the good request is the replica\'s')
    t.equal(valueOf(samples, 'ring_balancer_requests_total', { replica, code: '4xx' }), 0, 'the refused chunked body is not a replica\'s 499')
  })
}
