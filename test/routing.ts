// Routing options end to end: --weights and --balance-factor from flags and env, the weights
// a replica keeps through suspicion and replacement, and bounded loads wired into the app.
import t from 'tap'
import { Balancer } from '../src/membership/balancer.js'
import { ConfigError, helpText, loadConfig } from '../src/config.js'
import { ProcessProvider } from '../src/replicas/process.js'
import { startTestApp } from './fixtures/app.js'
import { call } from './fixtures/http.js'

t.test('--weights and LB_WEIGHTS weigh the first replicas by position', async (t) => {
  t.same([...loadConfig([]).weights], [], 'default: everyone weighs 1')
  t.same([...loadConfig(['--weights', '3, 1,2']).weights], [['Server 1', 3], ['Server 2', 1], ['Server 3', 2]])
  t.same([...loadConfig(['--replicas', '3', '--names', 'a,b'], { LB_WEIGHTS: '2' }).weights], [['a', 2]])
  const bad: [string[], RegExp][] = [
    [['--weights', '0'], /--weights must be an integer from 1 to 256, got "0"/],
    [['--weights', '1,x'], /--weights must be an integer from 1 to 256, got "x"/],
    [['--weights', '257'], /from 1 to 256/],
    [['--weights', '1,1,1,1'], /--weights lists 4 weights but there are 3 named replicas/],
    // 512 slots, K = 9: room for 56 units of weight.
    [['--replicas', '3', '--weights', '50,6,1'], /too few for 3 replicas of total weight 57/],
  ]
  for (const [argv, message] of bad) {
    t.throws(() => loadConfig(argv), ConfigError)
    t.throws(() => loadConfig(argv), { message }, argv.join(' '))
  }
  t.doesNotThrow(() => loadConfig(['--replicas', '3', '--weights', '50,5,1']), 'exactly 56 units fit')
})

t.test('--balance-factor and LB_BALANCE_FACTOR: off by default, a number >= 1', async (t) => {
  t.equal(loadConfig([]).balanceFactor, undefined)
  t.equal(loadConfig(['--balance-factor', '1.25']).balanceFactor, 1.25)
  t.equal(loadConfig([], { LB_BALANCE_FACTOR: '2' }).balanceFactor, 2)
  t.equal(loadConfig(['--balance-factor', 'off'], { LB_BALANCE_FACTOR: '2' }).balanceFactor, undefined, 'the flag turns the env off')
  t.equal(loadConfig(['--balance-factor=1']).balanceFactor, 1)
  for (const bad of ['0.9', '0', '-1', 'abc', '1e2', '101', '']) {
    t.throws(() => loadConfig(['--balance-factor', bad]), { message: /--balance-factor must be a number from 1 to 100 \(e\.g\. 1\.25\) or off/ }, JSON.stringify(bad))
  }
  const help = helpText()
  for (const word of ['--weights', 'LB_WEIGHTS', '--balance-factor', 'LB_BALANCE_FACTOR', 'default (balanced table), ring']) t.match(help, word)
})

t.test('a weighted replica keeps its weight when suspected and restored, and its replacement inherits it', async (t) => {
  const b = new Balancer(loadConfig(['--weights', '3', '--quiet']), new ProcessProvider({ startTimeoutMs: 10_000 }))
  t.teardown(() => b.close())
  await b.start()
  t.equal(b.weightOf('Server 1'), 3)
  t.equal(b.ring.weightOf('Server 1'), 3)
  const share = () => b.ring.shares().get('Server 1')!
  // Weight 3 of 5 over 512 slots: fair 307.2.
  t.ok(share() >= 295 && share() <= 322, `Server 1 owns ${share()} of 512`)
  const u = b.get('Server 1')!
  t.ok(b.suspect(u))
  t.notOk(b.ring.has('Server 1'))
  t.ok(await b.restore(u))
  t.equal(b.ring.weightOf('Server 1'), 3, 'back in the ring with its weight')
  const fresh = await b.replace('Server 1')
  t.ok(fresh)
  t.equal(b.weightOf('Server 1'), undefined)
  t.equal(b.weightOf(fresh!), 3, `the replacement ${fresh} weighs 3 too`)
  t.equal(b.ring.weightOf(fresh!), 3)
})

t.test('the app routes through bounded loads when --balance-factor is set', async (t) => {
  const app = await startTestApp(t, ['--balance-factor', '1.25', '--key', 'header:x-user'])
  const ring = app.balancer.ring
  const id = 424242
  const order: string[] = []
  ring.next(id, (_u, name) => (order.push(name), false))
  const served = async () => ((await call(`${app.url}/home`, 'GET', undefined, { 'x-user': String(id) })).json as { message: string }).message
  t.equal(await served(), `Hello from Server: ${order[0]}`, 'idle: the key stays on its replica')
  // Make the owner look busy: 4 requests in flight on it, none elsewhere. With this request,
  // 5 in flight over 3 replicas: a bound of ceil(1.25 × 5/3) = 3, so the owner is full.
  const owner = app.balancer.get(order[0]!)!
  for (let k = 0; k < 4; k++) owner.begin()
  t.teardown(() => {
    for (let k = 0; k < 4; k++) owner.end()
  })
  t.equal(await served(), `Hello from Server: ${order[1]}`, 'overloaded: the next replica clockwise')
  const plain = await startTestApp(t, ['--key', 'header:x-user'])
  const busy = plain.balancer.get(order[0]!)!
  for (let k = 0; k < 4; k++) busy.begin()
  t.teardown(() => {
    for (let k = 0; k < 4; k++) busy.end()
  })
  t.equal(
    ((await call(`${plain.url}/home`, 'GET', undefined, { 'x-user': String(id) })).json as { message: string }).message,
    `Hello from Server: ${order[0]}`,
    'without a factor the key stays put however busy its replica is',
  )
})
