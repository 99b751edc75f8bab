// --workers 2 end to end: real worker processes (node:cluster) in front of real replica
// processes. Every worker routes every key as the primary's table does (digests and owners
// of many keys, for the balanced table and a formula preset after joins and leaves); /rep,
// /add and /rm reach the primary from whichever worker accepted them and answer per SPEC;
// /add answers once every worker routes to the new replicas; close leaves nothing running.
import t, { type Test } from 'tap'
import { startTestCluster } from '../fixtures/app.js'
import { alive, call, waitFor } from '../fixtures/http.js'
import { requestIdOf } from '../../src/route/keys.js'
import type { ClusterApp } from '../../src/cluster/primary.js'
import type { ProcessProvider } from '../../src/replicas/process.js'

const HELLO = /Hello from Server: ([^"]*)"/

/** Every worker applied the primary's latest table: same digest as the primary's balancer. */
function workersAgree(t: Test, app: ClusterApp): void {
  const primary = app.balancer.tableDigest()
  const applied = app.coordinator.applied()
  t.equal(applied.length, 2, 'two workers report')
  for (const w of applied) t.equal(w.digest, primary, `worker ${w.pid} has the primary's table ${primary}`)
}

/** `keys` requests on new connections (round-robin over the workers): each answered by the primary's owner of its key. */
async function ownersAgree(t: Test, app: ClusterApp, keys: readonly string[]): Promise<void> {
  const ring = app.balancer.ring
  let wrong = 0
  for (const key of keys) {
    const r = await call(`${app.url}/home`, 'GET', undefined, { 'x-k': key })
    const owner = ring.pick(requestIdOf(key, ring.slots))!.name
    if (r.status !== 200 || HELLO.exec(r.body)?.[1] !== owner) wrong++
  }
  t.equal(wrong, 0, `${keys.length} keys answered by the primary's owner`)
}

for (const hash of ['default', 'assignment']) {
  t.test(`every worker routes every key as the primary (--hash ${hash})`, async (t) => {
    const app = await startTestCluster(t, ['--key', 'header:x-k', '--hash', hash, '--replicas', '3'])
    const keys = Array.from({ length: 120 }, (_, i) => `k${i * 7919}`)
    workersAgree(t, app)
    await ownersAgree(t, app, keys)
    // A history of joins and leaves: server ids and probing now depend on it (formula presets).
    let r = await call(`${app.url}/add`, 'POST', JSON.stringify({ n: 2, hostnames: ['S5', 'S4'] }))
    t.equal(r.status, 200, '/add through a worker')
    t.same(r.json, { message: { N: 5, replicas: ['Server 1', 'Server 2', 'Server 3', 'S5', 'S4'] }, status: 'successful' })
    // /add answered: every worker routes to the new replicas already.
    workersAgree(t, app)
    await ownersAgree(t, app, keys)
    r = await call(`${app.url}/rm`, 'DELETE', JSON.stringify({ n: 1, hostnames: ['Server 2'] }))
    t.equal(r.status, 200, '/rm through a worker')
    r = await call(`${app.url}/add`, 'POST', JSON.stringify({ n: 1, hostnames: ['S6'] }))
    t.same(r.json, { message: { N: 5, replicas: ['Server 1', 'Server 3', 'S5', 'S4', 'S6'] }, status: 'successful' })
    workersAgree(t, app)
    await ownersAgree(t, app, keys)
  })
}

t.test('/rep, /add and /rm answer per SPEC from the workers; errors change nothing', async (t) => {
  const app = await startTestCluster(t, ['--replicas', '2'])
  const before = { message: { N: 2, replicas: ['Server 1', 'Server 2'] }, status: 'successful' }
  // Several connections: the workers take turns.
  for (let i = 0; i < 4; i++) t.same((await call(`${app.url}/rep`)).json, before, '/rep')
  const errors: Array<[string, string, unknown, string]> = [
    ['POST', '/add', { n: 1, hostnames: ['a', 'b'] }, '<Error> Length of hostname list is more than newly added instances'],
    ['DELETE', '/rm', { n: 1, hostnames: ['a', 'b'] }, '<Error> Length of hostname list is more than removable instances'],
    ['DELETE', '/rm', { n: 1, hostnames: ['nope'] }, "<Error> Hostname 'nope' does not exist"],
    ['POST', '/add', { n: 1, hostnames: ['Server 1'] }, "<Error> Hostname 'Server 1' is already in use"],
    ['DELETE', '/rm', { n: 3 }, '<Error> Cannot remove 3 replica(s): only 2 exist'],
  ]
  for (const [method, path, body, message] of errors) {
    const r = await call(`${app.url}${path}`, method, JSON.stringify(body))
    t.equal(r.status, 400, `${method} ${path} ${JSON.stringify(body)}`)
    t.same(r.json, { message, status: 'failure' })
  }
  const bad = await call(`${app.url}/add`, 'POST', '{"n": ')
  t.equal(bad.status, 400)
  t.match((bad.json as { message: string }).message, /^<Error> Invalid JSON payload/)
  t.equal((await call(`${app.url}/add`, 'POST', 'x'.repeat(70_000))).status, 413, 'oversized body: 413 from the worker')
  t.equal((await call(`${app.url}/add`, 'GET')).status, 405)
  for (let i = 0; i < 2; i++) t.same((await call(`${app.url}/rep`)).json, before, 'nothing changed')
  t.same(app.balancer.membership(), before.message)

  const added = await call(`${app.url}/add`, 'POST', JSON.stringify({ n: 1, hostnames: ['S9'] }))
  t.same(added.json, { message: { N: 3, replicas: ['Server 1', 'Server 2', 'S9'] }, status: 'successful' })
  // Every worker's /rep says so at once.
  for (let i = 0; i < 4; i++) t.same((await call(`${app.url}/rep`)).json, added.json)
  const removed = await call(`${app.url}/rm`, 'DELETE', JSON.stringify({ n: 1, hostnames: ['Server 1'] }))
  t.same(removed.json, { message: { N: 2, replicas: ['Server 2', 'S9'] }, status: 'successful' })
  for (let i = 0; i < 4; i++) t.same((await call(`${app.url}/rep`)).json, removed.json)
  // The admin listener is the primary's: the same membership.
  t.same((await call(`${app.adminUrl}/rep`)).json, removed.json)
})

t.test('close drains, stops every worker and every replica', async (t) => {
  const app = await startTestCluster(t, ['--replicas', '2'])
  t.equal((await call(`${app.url}/home`)).status, 200)
  const workers = app.coordinator.pids()
  const provider = app.balancer.provider as ProcessProvider
  const replicas = ['Server 1', 'Server 2'].map((name) => provider.pidOf(name)!)
  t.equal(workers.length, 2)
  await app.close()
  await waitFor('workers and replicas to exit', () => [...workers, ...replicas].every((pid) => !alive(pid)), 10_000)
  t.pass('nothing left running')
})
