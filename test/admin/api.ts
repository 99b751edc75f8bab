// The admin API end to end (SPEC 4.1-4.5): a real balancer with real replica processes.
// Every error case checks the status, the exact JSON, and that nothing changed.
import t from 'tap'
import { fileURLToPath } from 'node:url'
import { startTestApp } from '../fixtures/app.js'
import { alive, call, waitFor } from '../fixtures/http.js'
import { ProcessProvider } from '../../src/replicas/process.js'
import { DEFAULT, fail, ok, pids, refused } from '../fixtures/admin.js'

t.test('GET /rep lists the three default replicas in join order', async (t) => {
  const app = await startTestApp(t)
  const reply = await call(`${app.url}/rep`)
  t.equal(reply.status, 200)
  t.equal(reply.headers['content-type'], 'application/json')
  t.same(reply.json, ok(DEFAULT))
  t.equal(reply.body, '{"message":{"N":3,"replicas":["Server 1","Server 2","Server 3"]},"status":"successful"}')
})

t.test('POST /add starts named and random replicas that answer before the reply', async (t) => {
  const app = await startTestApp(t)
  const reply = await call(`${app.url}/add`, 'POST', JSON.stringify({ n: 4, hostnames: ['S5', 'S4', 'S10', 'S11'] }))
  t.same(reply.json, ok([...DEFAULT, 'S5', 'S4', 'S10', 'S11']))
  const more = await call(`${app.url}/add`, 'POST', JSON.stringify({ n: 3, hostnames: ['S12'] }))
  t.equal(more.status, 200)
  const names = (more.json as { message: { replicas: string[] } }).message.replicas
  t.equal(names.length, 10)
  t.same(names.slice(0, 8), [...DEFAULT, 'S5', 'S4', 'S10', 'S11', 'S12'])
  for (const name of names.slice(8)) t.match(name, /^replica-[0-9a-f]{6}$/, 'random names are valid hostnames')
  t.not(names[8], names[9])
  // Each new replica answered its heartbeat before /add returned: ask each one directly now.
  for (const name of names.slice(3)) {
    const u = app.balancer.get(name)!
    const home = await call(`http://${u.host}:${u.port}/home`)
    t.same(home.json, { message: `Hello from Server: ${name}`, status: 'successful' })
  }
  t.same((await call(`${app.url}/rep`)).json, more.json)
})

t.test('DELETE /rm drains and stops the named replicas plus random others', async (t) => {
  const app = await startTestApp(t, ['--replicas', '5', '--names', 'S1,S2,S3,S4,S5'])
  const provider = app.balancer.provider as ProcessProvider
  const pidOf = Object.fromEntries(app.balancer.membership().replicas.map((n) => [n, provider.pidOf(n)!]))
  const reply = await call(`${app.url}/rm`, 'DELETE', JSON.stringify({ n: 3, hostnames: ['S5', 'S4'] }))
  t.equal(reply.status, 200)
  const left = (reply.json as { message: { N: number; replicas: string[] } }).message
  t.equal(left.N, 2)
  t.notOk(left.replicas.includes('S5') || left.replicas.includes('S4'))
  t.same(left.replicas, ['S1', 'S2', 'S3'].filter((n) => left.replicas.includes(n)), 'the rest keep their join order')
  const removed = Object.keys(pidOf).filter((n) => !left.replicas.includes(n))
  t.equal(removed.length, 3)
  for (const name of removed) t.notOk(alive(pidOf[name]!), `${name}'s process is stopped when /rm returns`)
  for (const name of left.replicas) t.ok(alive(pidOf[name]!), `${name} still runs`)
  t.equal(app.balancer.provider.list().length, 2)
})

t.test('removing every replica leaves 503 for requests', async (t) => {
  const app = await startTestApp(t)
  t.same((await call(`${app.url}/rm`, 'DELETE', JSON.stringify({ n: 3 }))).json, ok([]))
  const reply = await call(`${app.url}/home`)
  t.equal(reply.status, 503)
  t.same(reply.json, fail('No server replicas available'))
  t.same((await call(`${app.url}/add`, 'POST', JSON.stringify({ n: 1, hostnames: ['back'] }))).json, ok(['back']))
  t.same((await call(`${app.url}/home`)).json, { message: 'Hello from Server: back', status: 'successful' })
})

t.test('every refused admin request changes nothing (SPEC 4.2, 4.3, 4.5)', async (t) => {
  const app = await startTestApp(t, ['--slots', '30', '--vnodes', '8'])
  const add = (body: string | undefined, status: number, message: string): Promise<unknown> =>
    refused(t, app, 'POST', '/add', body, status, fail(message))
  const rm = (body: string | undefined, status: number, message: string): Promise<unknown> =>
    refused(t, app, 'DELETE', '/rm', body, status, fail(message))

  await add(JSON.stringify({ n: 1, hostnames: ['S5', 'S4'] }), 400, 'Length of hostname list is more than newly added instances')
  await rm(JSON.stringify({ n: 1, hostnames: ['Server 1', 'Server 2'] }), 400, 'Length of hostname list is more than removable instances')

  await add(undefined, 400, 'Invalid JSON payload: the body is empty')
  await rm(undefined, 400, 'Invalid JSON payload: the body is empty')
  await add('{"n": 1,', 400, `Invalid JSON payload: ${jsonError('{"n": 1,')}`)
  await rm('not json', 400, `Invalid JSON payload: ${jsonError('not json')}`)
  const shape = 'Invalid JSON payload: expected an object like {"n": 1, "hostnames": ["S1"]}'
  await add('[1, 2]', 400, shape)
  await add('5', 400, shape)
  await rm('null', 400, shape)

  await add('{}', 400, 'n must be a positive integer, got nothing')
  await add('{"n": 0}', 400, 'n must be a positive integer, got 0')
  await add('{"n": -2}', 400, 'n must be a positive integer, got -2')
  await add('{"n": 1.5}', 400, 'n must be a positive integer, got 1.5')
  await add('{"n": "2"}', 400, 'n must be a positive integer, got "2"')
  await rm('{"n": null}', 400, 'n must be a positive integer, got null')

  await add('{"n": 1, "hostnames": "S5"}', 400, 'hostnames must be a list of strings')
  await rm('{"n": 1, "hostnames": [1]}', 400, 'hostnames must be a list of strings')

  await add('{"n": 2, "hostnames": ["S5", "S5"]}', 400, "Hostname 'S5' appears more than once")
  await rm('{"n": 2, "hostnames": ["Server 1", "Server 1"]}', 400, "Hostname 'Server 1' appears more than once")

  await add('{"n": 2, "hostnames": ["S9", "Server 2"]}', 400, "Hostname 'Server 2' is already in use")
  await rm('{"n": 2, "hostnames": ["Server 1", "S9"]}', 400, "Hostname 'S9' does not exist")
  await rm('{"n": 4}', 400, 'Cannot remove 4 replica(s): only 3 exist')

  const rule = "use 1-63 letters, digits, single spaces, '.', '_' or '-', starting and ending with a letter or digit"
  for (const bad of ['', 'bad/name', '-lead', 'trail-', 'two  spaces', 'x'.repeat(64), 'ümlaut']) {
    await add(JSON.stringify({ n: 1, hostnames: [bad] }), 400, `Invalid hostname ${JSON.stringify(bad)}: ${rule}`)
  }

  // 30 slots, 8 virtual servers each: the three replicas hold 24, a fourth does not fit.
  await add('{"n": 1}', 400, 'The ring has no room for 1 more server(s): 30 slots, 8 virtual servers each, 3 present')

  await refused(t, app, 'GET', '/add', undefined, 405, fail('Method GET not allowed on /add; use POST'))
  await refused(t, app, 'POST', '/rm', '{"n": 1}', 405, fail('Method POST not allowed on /rm; use DELETE'))
  await refused(t, app, 'DELETE', '/rep', undefined, 405, fail('Method DELETE not allowed on /rep; use GET or HEAD'))
})

t.test('an oversized body is refused with 413 and changes nothing', async (t) => {
  const app = await startTestApp(t, ['--max-body', '100'])
  const big = JSON.stringify({ n: 1, hostnames: ['x'], pad: 'y'.repeat(200) })
  await refused(t, app, 'POST', '/add', big, 413, fail('Request body too large: more than 100 bytes'))
})

t.test('a replica that fails to start fails the whole /add and leaves nothing behind', async (t) => {
  const entry = fileURLToPath(new URL('../fixtures/flaky-replica.mjs', import.meta.url))
  const provider = new ProcessProvider({ entry, startTimeoutMs: 10_000 })
  const app = await startTestApp(t, [], { provider })
  const before = pids(app)
  const reply = await call(`${app.url}/add`, 'POST', JSON.stringify({ n: 3, hostnames: ['ok1', 'fail-x', 'ok2'] }))
  t.equal(reply.status, 500)
  t.match((reply.json as { message: string }).message, /^<Error> Replica 'fail-x' failed to start: replica "fail-x" exited during start \(code 3\): refusing to start fail-x$/)
  t.same(app.balancer.membership(), { N: 3, replicas: DEFAULT })
  t.same(pids(app), before)
  t.same(provider.list().map((h) => h.name).sort(), DEFAULT, 'the replicas that did start were stopped')
})

t.test('concurrent /add requests are serialised, never interleaved', async (t) => {
  const app = await startTestApp(t)
  const [a, b] = await Promise.all([
    call(`${app.url}/add`, 'POST', JSON.stringify({ n: 3, hostnames: ['A1', 'A2', 'A3'] })),
    call(`${app.url}/add`, 'POST', JSON.stringify({ n: 3, hostnames: ['B1', 'B2', 'B3'] })),
  ])
  const first = (a.json as { message: { N: number } }).message.N < (b.json as { message: { N: number } }).message.N ? a : b
  const second = first === a ? b : a
  const firstGroup = first === a ? ['A1', 'A2', 'A3'] : ['B1', 'B2', 'B3']
  const secondGroup = first === a ? ['B1', 'B2', 'B3'] : ['A1', 'A2', 'A3']
  t.same(first.json, ok([...DEFAULT, ...firstGroup]))
  t.same(second.json, ok([...DEFAULT, ...firstGroup, ...secondGroup]))
  // And a /rm racing an /add on the same name sees the /add's result, one after the other.
  const [added, removed] = await Promise.all([
    call(`${app.url}/add`, 'POST', JSON.stringify({ n: 1, hostnames: ['C1'] })),
    call(`${app.url}/rm`, 'DELETE', JSON.stringify({ n: 1, hostnames: ['C1'] })),
  ])
  t.equal(added.status, 200)
  t.same(removed.json, ok([...DEFAULT, ...firstGroup, ...secondGroup]))
  await waitFor('C1 stopped', () => app.balancer.provider.list().length === 9)
})

function jsonError(text: string): string {
  try {
    JSON.parse(text)
    return ''
  } catch (err) {
    return (err as Error).message
  }
}

t.test('POST /add takes optional weights: a replica of weight 2 owns about twice the slots', async (t) => {
  const app = await startTestApp(t)
  const reply = await call(`${app.url}/add`, 'POST', JSON.stringify({ n: 2, hostnames: ['a', 'b'], weights: [2, 1] }))
  t.same(reply.json, ok([...DEFAULT, 'a', 'b']), 'the answer keeps the SPEC shape')
  t.equal(app.balancer.weightOf('a'), 2)
  t.equal(app.balancer.weightOf('b'), 1)
  t.equal(app.balancer.weightOf('Server 1'), 1)
  // Total weight 6 over 512 slots: a's fair share is 170.7, the others' 85.3.
  const shares = app.balancer.ring.shares()
  t.ok(shares.get('a')! >= 160 && shares.get('a')! <= 179, `a owns ${shares.get('a')} slots`)
  for (const name of [...DEFAULT, 'b']) t.ok(shares.get(name)! >= 80 && shares.get(name)! <= 89, `${name} owns ${shares.get(name)}`)
  // Fewer weights than replicas: named ones first, the rest weigh 1.
  const more = await call(`${app.url}/add`, 'POST', JSON.stringify({ n: 2, hostnames: ['c'], weights: [3] }))
  t.equal(more.status, 200)
  const fresh = (more.json as { message: { replicas: string[] } }).message.replicas.at(-1)!
  t.equal(app.balancer.weightOf('c'), 3)
  t.equal(app.balancer.weightOf(fresh), 1)
  t.equal((await call(`${app.url}/home`)).status, 200, 'requests still flow')
  // null weights are "no weights", as null hostnames are.
  t.equal((await call(`${app.url}/add`, 'POST', JSON.stringify({ n: 1, hostnames: ['d'], weights: null }))).status, 200)
  t.equal(app.balancer.weightOf('d'), 1)
})

t.test('bad weights are refused with INVALID_WEIGHT and change nothing', async (t) => {
  const app = await startTestApp(t, ['--slots', '64', '--vnodes', '8'])
  const add = (body: unknown, message: string): Promise<unknown> => refused(t, app, 'POST', '/add', JSON.stringify(body), 400, fail(message))
  const rule = (got: string) => `weights must be a list of integers from 1 to 256, one per new replica, got ${got}`
  await add({ n: 1, weights: [0] }, rule('[0]'))
  await add({ n: 1, weights: [-1] }, rule('[-1]'))
  await add({ n: 1, weights: [1.5] }, rule('[1.5]'))
  await add({ n: 1, weights: [257] }, rule('[257]'))
  await add({ n: 1, weights: ['2'] }, rule('["2"]'))
  await add({ n: 1, weights: 2 }, rule('2'))
  await add({ n: 1, hostnames: ['S5'], weights: [1, 1] }, 'weights lists 2 weights for 1 new replica(s): at most one per replica')
  await refused(t, app, 'DELETE', '/rm', JSON.stringify({ n: 1, weights: [1] }), 400, fail('weights only apply to /add'))
  // 64 slots, 8 per unit of weight: the three replicas hold 24, so weight 5 fits and 6 does not.
  await add({ n: 1, hostnames: ['big'], weights: [6] }, 'The ring has no room for 1 more server(s) of total weight 6: 64 slots, 8 virtual servers each, 3 present')
  t.equal((await call(`${app.url}/add`, 'POST', JSON.stringify({ n: 1, hostnames: ['big'], weights: [5] }))).status, 200)
  t.equal(app.balancer.weightOf('big'), 5)
})
