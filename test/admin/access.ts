// Who may change membership (issue 15): allow-list, bearer token, browser forgery, on both
// listeners, with real sockets and replica processes. Every refusal changes nothing and is
// audited; GET /rep stays open.
import t, { type Test } from 'tap'
import { Agent } from 'node:http'
import { startTestApp } from '../fixtures/app.js'
import { call, type Reply } from '../fixtures/http.js'
import { DEFAULT, fail, ok, refused, type Via } from '../fixtures/admin.js'
import type { AuditEntry } from '../../src/admin/audit.js'
import type { App } from '../../src/app.js'

const TOKEN = 'k3y-0f-the-adm1n-plane_ABCDEF0123456789'
const json = { 'content-type': 'application/json' }

/** An agent whose connections come from another loopback address (Linux routes all of 127/8 to lo). */
function from(t: Test, localAddress: string): Agent {
  const agent = new Agent({ localAddress } as ConstructorParameters<typeof Agent>[0])
  t.teardown(() => agent.destroy())
  return agent
}

async function startAudited(t: Test, argv: string[]): Promise<{ app: App; audit: AuditEntry[] }> {
  const audit: AuditEntry[] = []
  const app = await startTestApp(t, argv, { audit: (entry) => audit.push(entry) })
  return { app, audit }
}

const add = (app: App, body: unknown, via: Via = {}): Promise<Reply> =>
  call(`${via.url ?? app.url}/add`, 'POST', JSON.stringify(body), { ...json, ...via.headers }, via.agent)

t.test('allow-list: a peer outside --admin-allow reads /rep but changes nothing, on both listeners', async (t) => {
  const { app, audit } = await startAudited(t, ['--admin-allow', '127.0.0.1/32'])
  const stranger = from(t, '127.0.0.2')
  const forbidden = fail('Membership changes are not allowed from 127.0.0.2 (see --admin-allow)')
  for (const url of [app.url, app.adminUrl!]) {
    const reply = await refused(t, app, 'POST', '/add', '{"n": 1}', 403, forbidden, { url, agent: stranger })
    t.equal(reply.headers.connection, 'close', 'the unread body is not read: the connection closes')
    await refused(t, app, 'DELETE', '/rm', '{"n": 1}', 403, forbidden, { url, agent: stranger })
    // With a right token too: the address is checked first.
    await refused(t, app, 'DELETE', '/rm', '{"n": 3}', 403, forbidden, { url, agent: stranger, headers: { authorization: `Bearer ${TOKEN}` } })
    const rep = await call(`${url}/rep`, 'GET', undefined, {}, stranger)
    t.equal(rep.status, 200, 'GET /rep stays open')
    t.same(rep.json, ok(DEFAULT))
    await refused(t, app, 'GET', '/add', undefined, 405, fail('Method GET not allowed on /add; use POST'), { url, agent: stranger })
  }
  t.same(audit.map((e) => [e.listener, e.peer, e.method, e.path, e.status, e.outcome]), [
    ['main', '127.0.0.2', 'POST', '/add', 403, 'refused ADMIN_FORBIDDEN'],
    ['main', '127.0.0.2', 'DELETE', '/rm', 403, 'refused ADMIN_FORBIDDEN'],
    ['main', '127.0.0.2', 'DELETE', '/rm', 403, 'refused ADMIN_FORBIDDEN'],
    ['main', '127.0.0.2', 'GET', '/add', 405, 'refused METHOD_NOT_ALLOWED'],
    ['admin', '127.0.0.2', 'POST', '/add', 403, 'refused ADMIN_FORBIDDEN'],
    ['admin', '127.0.0.2', 'DELETE', '/rm', 403, 'refused ADMIN_FORBIDDEN'],
    ['admin', '127.0.0.2', 'DELETE', '/rm', 403, 'refused ADMIN_FORBIDDEN'],
    ['admin', '127.0.0.2', 'GET', '/add', 405, 'refused METHOD_NOT_ALLOWED'],
  ])
  t.ok(audit.every((e) => e.membership.N === 3 && !Number.isNaN(Date.parse(e.time))), 'each entry has the time and the membership after')
  // The allowed address can, on either listener.
  t.same((await add(app, { n: 1, hostnames: ['near'] }, { agent: from(t, '127.0.0.1') })).json, ok([...DEFAULT, 'near']))
  t.same((await add(app, { n: 1, hostnames: ['far'] }, { url: app.adminUrl! })).json, ok([...DEFAULT, 'near', 'far']))
  t.same(audit.slice(-2).map((e) => [e.listener, e.peer, e.status, e.outcome, e.membership.N]), [
    ['main', '127.0.0.1', 200, 'accepted', 4],
    ['admin', '127.0.0.1', 200, 'accepted', 5],
  ])
})

t.test('the default allow-list lets loopback peers change membership', async (t) => {
  const { app } = await startAudited(t, [])
  t.equal(app.config.admin.allow.toString(), '127.0.0.0/8,::1/128,10.0.0.0/8,172.16.0.0/12,192.168.0.0/16,fc00::/7')
  t.same((await add(app, { n: 1, hostnames: ['other-loopback'] }, { agent: from(t, '127.0.0.2') })).json, ok([...DEFAULT, 'other-loopback']))
})

t.test('token: missing, wrong, of another length, another scheme -> 401; right -> 200; never logged', async (t) => {
  const { app, audit } = await startAudited(t, ['--admin-token', TOKEN])
  const missing = fail('Membership changes need Authorization: Bearer <token> (see --admin-token)')
  const invalid = fail('Invalid bearer token')
  const sameLength = TOKEN.slice(0, -1) + (TOKEN.endsWith('9') ? '8' : '9')
  for (const url of [app.url, app.adminUrl!]) {
    let reply = await refused(t, app, 'POST', '/add', '{"n": 1}', 401, missing, { url })
    t.equal(reply.headers['www-authenticate'], 'Bearer realm="ring-balancer admin"')
    reply = await refused(t, app, 'POST', '/add', '{"n": 1}', 401, invalid, { url, headers: { authorization: `Bearer ${sameLength}` } })
    t.equal(reply.headers['www-authenticate'], 'Bearer realm="ring-balancer admin", error="invalid_token"')
    await refused(t, app, 'DELETE', '/rm', '{"n": 1}', 401, invalid, { url, headers: { authorization: 'Bearer short' } })
    await refused(t, app, 'DELETE', '/rm', '{"n": 1}', 401, invalid, { url, headers: { authorization: `Bearer ${TOKEN}${TOKEN}` } })
    await refused(t, app, 'DELETE', '/rm', '{"n": 1}', 401, missing, { url, headers: { authorization: `Basic ${Buffer.from(`admin:${TOKEN}`).toString('base64')}` } })
    await refused(t, app, 'DELETE', '/rm', '{"n": 1}', 401, missing, { url, headers: { authorization: `Bearer` } })
    t.equal((await call(`${url}/rep`)).status, 200, 'GET /rep needs no token')
  }
  t.same((await add(app, { n: 1, hostnames: ['with-token'] }, { headers: { authorization: `Bearer ${TOKEN}` } })).json, ok([...DEFAULT, 'with-token']))
  t.same((await add(app, { n: 1, hostnames: ['lower-case'] }, { url: app.adminUrl!, headers: { authorization: `bearer ${TOKEN}` } })).json, ok([...DEFAULT, 'with-token', 'lower-case']), 'the scheme is case-insensitive')
  t.equal(audit.length, 14)
  t.same(audit.filter((e) => e.outcome === 'accepted').length, 2)
  const text = JSON.stringify(audit) + JSON.stringify(app.config)
  t.notOk(text.includes(TOKEN) || text.includes(sameLength), 'the token is in no audit entry and not in the config')
})

t.test('browser forgery: a foreign Origin or Sec-Fetch-Site: cross-site is 403; the listener\'s own origin passes', async (t) => {
  const { app, audit } = await startAudited(t, [])
  for (const url of [app.url, app.adminUrl!]) {
    const own = url
    await refused(t, app, 'POST', '/add', '{"n": 1}', 403, fail(`Cross-site request refused: Origin http://evil.example is not this listener's (${new URL(own).host})`), { url, headers: { origin: 'http://evil.example' } })
    await refused(t, app, 'DELETE', '/rm', '{"n": 1}', 403, fail(`Cross-site request refused: Origin null is not this listener's (${new URL(own).host})`), { url, headers: { origin: 'null' } })
    await refused(t, app, 'DELETE', '/rm', '{"n": 1}', 403, fail(`Cross-site request refused: Origin http://127.0.0.1:1 is not this listener's (${new URL(own).host})`), { url, headers: { origin: 'http://127.0.0.1:1' } })
    await refused(t, app, 'POST', '/add', '{"n": 1}', 403, fail('Cross-site request refused: Sec-Fetch-Site: cross-site'), { url, headers: { 'sec-fetch-site': 'cross-site' } })
    await refused(t, app, 'POST', '/add', '{"n": 1}', 403, fail('Cross-site request refused: Sec-Fetch-Site: cross-site'), { url, headers: { origin: own, 'sec-fetch-site': 'cross-site' } })
    const long = `http://evil.example/${'x'.repeat(500)}`
    await refused(t, app, 'POST', '/add', '{"n": 1}', 403, fail(`Cross-site request refused: Origin ${long.slice(0, 64)}… is not this listener's (${new URL(own).host})`), { url, headers: { origin: long } })
  }
  const sameOrigin = await add(app, { n: 1, hostnames: ['same-origin'] }, { headers: { origin: app.url, 'sec-fetch-site': 'same-origin' } })
  t.same(sameOrigin.json, ok([...DEFAULT, 'same-origin']), 'a page served by the listener itself may')
  t.ok(audit.filter((e) => e.outcome === 'refused CROSS_SITE').length >= 10)
})
