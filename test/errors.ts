// The error catalogue: the SPEC's JSON shape, stable statuses, and every code documented.
import t from 'tap'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { BalancerError, ERRORS } from '../src/errors.js'
import { projectRoot } from '../src/paths.js'

t.test('errors carry their catalogued status and the SPEC JSON shape', async (t) => {
  const e = new BalancerError('NO_REPLICAS')
  t.equal(e.status, 503)
  t.equal(e.code, 'NO_REPLICAS')
  t.same(e.toJSON(), { message: '<Error> No server replicas available', status: 'failure' })
  t.same(new BalancerError('HOSTNAME_IN_USE', "Hostname 'a' is already in use").toJSON().message, "<Error> Hostname 'a' is already in use")
  const full = new BalancerError('RING_FULL')
  t.equal(full.status, 400)
  t.equal(full.code, 'RING_FULL')
})

t.test('the SPEC strings are exact', async (t) => {
  t.equal(ERRORS.ADD_TOO_MANY_HOSTNAMES.message, 'Length of hostname list is more than newly added instances')
  t.equal(ERRORS.RM_TOO_MANY_HOSTNAMES.message, 'Length of hostname list is more than removable instances')
  t.equal(ERRORS.NO_REPLICAS.message, 'No server replicas available')
})

t.test('every error code is documented in the README with its status', async (t) => {
  const readme = readFileSync(join(projectRoot, 'README.md'), 'utf8')
  for (const [code, { status }] of Object.entries(ERRORS)) {
    t.match(readme, new RegExp(`\\| \`${code}\` \\| ${status} \\|`), `${code} (${status}) is in the README's catalogue`)
  }
})
