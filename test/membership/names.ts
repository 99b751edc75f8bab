import t from 'tap'
import { isValidHostname, randomHostname, validateHostname } from '../../src/membership/names.js'

t.test('valid hostnames', async (t) => {
  for (const ok of ['Server 1', 'S5', 'a', 'replica-3f9a2c', 'my_host.local', 'x'.repeat(63)]) t.ok(isValidHostname(ok), ok)
  for (const bad of ['', ' lead', 'trail ', '-a', 'a-', 'a/b', 'a  b', 'x'.repeat(64), 'é', 'a\nb']) t.notOk(isValidHostname(bad), JSON.stringify(bad))
  t.throws(() => validateHostname('a/b'), { code: 'INVALID_HOSTNAME', status: 400 })
})

t.test('random hostnames are valid and avoid taken names', async (t) => {
  const taken = new Set<string>()
  for (let i = 0; i < 200; i++) {
    const name = randomHostname(taken)
    t.ok(isValidHostname(name))
    t.notOk(taken.has(name))
    taken.add(name)
  }
})
