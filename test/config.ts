// Configuration: defaults, flags and their environment twins, validation messages, freezing.
import t from 'tap'
import { availableParallelism } from 'node:os'
import { ConfigError, OPTIONS, helpText, loadConfig, parseArgs } from '../src/config.js'

t.test('defaults match the SPEC', async (t) => {
  const c = loadConfig([])
  t.equal(c.port, 5000)
  t.equal(c.replicas, 3)
  t.same(c.names, ['Server 1', 'Server 2', 'Server 3'])
  t.equal(c.slots, 512)
  t.equal(c.vnodes, 9, 'K = log2(512)')
  t.equal(c.probe, 'linear')
  t.same(c.key, { kind: 'random' })
  t.equal(c.provider, 'process')
  t.equal(c.network, 'net1')
  t.equal(c.maxReplicas, 100)
  t.equal(c.admin.bodyTimeoutMs, 10_000)
  t.ok(Object.isFrozen(c), 'frozen')
  t.ok(Object.isFrozen(c.names))
  t.ok(Object.isFrozen(c.health))
  t.throws(() => {
    ;(c as { port: number }).port = 1
  }, TypeError)
})

t.test('flags, --flag=value, and env twins; flags win', async (t) => {
  const c = loadConfig(
    ['--port', '6000', '--slots=1024', '--hash', 'assignment', '--probe', 'quadratic', '--key', 'header:X-User', '--quiet'],
    { LB_PORT: '7000', LB_REPLICAS: '4', LB_VNODES: '5' },
  )
  t.equal(c.port, 6000, 'flag beats env')
  t.equal(c.replicas, 4, 'env used when no flag')
  t.same(c.names, ['Server 1', 'Server 2', 'Server 3', 'Server 4'])
  t.equal(c.slots, 1024)
  t.equal(c.vnodes, 5)
  t.equal(loadConfig(['--slots', '1024']).vnodes, 10, 'K follows M when not given')
  t.equal(c.probe, 'quadratic')
  t.same(c.key, { kind: 'header', name: 'x-user' })
  t.equal(c.quiet, true)
  t.equal(loadConfig(['--quiet=false']).quiet, false)
  t.same(loadConfig(['--replicas', '2', '--names', 'a, b']).names, ['a', 'b'])
  t.same(loadConfig(['--replicas', '3', '--names', 'a']).names, ['a'], 'the rest are named by the balancer')
  const swarm = loadConfig(['--provider', 'swarm', '--swarm-reach', 'overlay'], { LB_SWARM_FOLLOW: 'true' })
  t.match(swarm, { provider: 'swarm', swarmReach: 'overlay', swarmFollow: true })
  t.match(loadConfig([]), { swarmReach: 'auto', swarmFollow: false })
})

t.test('bad values get clear messages', async (t) => {
  const bad: Array<[string[], RegExp]> = [
    [['--slots', '0'], /^--slots must be an integer from 1 to 65536, got "0"$/],
    [['--slots', 'many'], /^--slots must be an integer from 1 to 65536, got "many"$/],
    [['--port', '70000'], /^--port must be an integer from 0 to 65535, got "70000"$/],
    [['--replicas', '-1'], /^--replicas must be an integer/],
    [['--vnodes', '600'], /^--vnodes must be an integer from 1 to 512, got "600"$/],
    [['--hash', 'nope'], /^--hash: .*nope/],
    [['--probe', 'cubic'], /^--probe must be one of linear, quadratic, got "cubic"$/],
    [['--key', 'header:'], /^--key: header: needs a name, e.g. header:x-user-id$/],
    [['--key', 'query:'], /^--key: query: needs a name/],
    [['--key', 'cookie:a b'], /^--key: "a b" is not a valid cookie name$/],
    [['--key', 'body'], /^--key: unknown key source "body"; use random, header:NAME, query:NAME, cookie:NAME, ip or path$/],
    [['--provider', 'k8s'], /^--provider must be one of process, docker, swarm, got "k8s"$/],
    [['--quiet=perhaps'], /^--quiet must be true or false, got "perhaps"$/],
    [['--swarm-follow'], /^--swarm-follow needs --provider swarm$/],
    [['--provider', 'swarm', '--swarm-follow', '--hash', 'assignment'], /^--swarm-follow needs --hash default: with assignment the routing table depends on the order replicas joined/],
    [['--provider', 'swarm', '--swarm-follow', '--hash', 'ring'], /^--swarm-follow needs --hash default: with ring /],
    [['--swarm-reach', 'vip'], /^--swarm-reach must be one of auto, overlay, host, got "vip"$/],
    [['--bogus', '1'], /^unknown flag --bogus \(see --help\)$/],
    [['5000'], /^unexpected argument "5000"/],
    [['--port'], /^--port needs a value$/],
    [['--replicas', '2', '--names', 'a,b,c'], /^--names lists 3 names but --replicas is 2$/],
    [['--names', 'a,a'], /^--names has a duplicate name$/],
    [['--names', 'bad/name'], /^--names: Invalid hostname "bad\/name"/],
    [['--slots', '16', '--vnodes', '8'], /^the ring has 16 slots, too few for 3 replicas x 8 virtual servers$/],
    [['--network', 'has space'], /^--network must be a Docker network name or host/],
    [['--replicas', '5', '--max-replicas', '4'], /^--replicas 5 is more than --max-replicas 4$/],
    [['--max-replicas', '0'], /^--max-replicas must be an integer from 1 to 65536, got "0"$/],
    [['--admin-body-timeout', '0'], /^--admin-body-timeout must be an integer from 1 to 3600000, got "0"$/],
  ]
  for (const [argv, message] of bad) {
    t.throws(() => loadConfig(argv), { name: 'ConfigError', message }, argv.join(' '))
  }
  t.throws(() => loadConfig([], { LB_SLOTS: '0' }), ConfigError, 'env values are validated too')
})

t.test('a bad value from the environment names the variable, one from a flag names the flag', async (t) => {
  t.throws(() => loadConfig([], { LB_PORT: 'abc' }), { message: 'LB_PORT must be an integer from 0 to 65535, got "abc"' })
  t.throws(() => loadConfig(['--port', 'abc'], {}), { message: '--port must be an integer from 0 to 65535, got "abc"' })
  // The flag wins over the environment, so the flag is what is wrong.
  t.throws(() => loadConfig(['--port', 'abc'], { LB_PORT: '5000' }), { message: '--port must be an integer from 0 to 65535, got "abc"' })
  t.throws(() => loadConfig([], { LB_HASH: 'nope' }), { message: /^LB_HASH: / })
  t.throws(() => loadConfig([], { LB_QUIET: 'maybe' }), { message: 'LB_QUIET must be true or false, got "maybe"' })
  t.throws(() => loadConfig([], { LB_NAMES: 'a,a' }), { message: 'LB_NAMES has a duplicate name' })
})

t.test('--help lists every flag with its env twin', async (t) => {
  t.equal(parseArgs(['--help']).help, true)
  t.equal(parseArgs(['-h']).help, true)
  const text = helpText()
  for (const o of OPTIONS) {
    t.match(text, `--${o.flag}`)
    t.match(text, `[${o.env}]`)
  }
  for (const flag of ['port', 'replicas', 'slots', 'vnodes', 'hash', 'probe', 'key']) {
    t.ok(OPTIONS.some((o) => o.flag === flag), `--${flag} exists (scripts rely on it)`)
  }
})

t.test('--workers: a count or auto (the available cores); 1 by default', async (t) => {
  t.equal(loadConfig([]).workers, 1)
  t.equal(loadConfig(['--workers', '4']).workers, 4)
  t.equal(loadConfig([], { LB_WORKERS: 'auto' }).workers, Math.min(256, availableParallelism()))
  for (const bad of ['0', '257', 'two', '1.5', '']) {
    t.throws(() => loadConfig(['--workers', bad]), { name: 'ConfigError', message: `--workers must be an integer from 1 to 256 or auto, got ${JSON.stringify(bad)}` }, bad)
  }
  t.throws(() => loadConfig([], { LB_WORKERS: 'x' }), { message: 'LB_WORKERS must be an integer from 1 to 256 or auto, got "x"' })
  // Workers rebuild the config from the values it came from.
  const config = loadConfig(['--port', '0', '--hash', 'assignment'], { LB_WORKERS: '2' })
  t.same(config.source, { port: '0', hash: 'assignment', workers: '2' })
})
