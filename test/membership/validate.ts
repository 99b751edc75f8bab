// The checks /add and /rm make before anything starts or stops, in the order a client sees them.
import t from 'tap'
import { assertAddable, assertRemovable, assertWeights } from '../../src/membership/validate.js'
import { BalancerError } from '../../src/errors.js'

const code = (fn: () => void): string | undefined => {
  try {
    fn()
    return undefined
  } catch (err) {
    return err instanceof BalancerError ? err.code : `not a BalancerError: ${String(err)}`
  }
}
const members = new Set(['a', 'b'])
const isMember = (name: string): boolean => members.has(name)

t.test('/add', async (t) => {
  t.equal(code(() => assertAddable(2, ['x', 'y'], [1, 2], isMember)), undefined)
  t.equal(code(() => assertAddable(1, ['x', 'y'], [], isMember)), 'ADD_TOO_MANY_HOSTNAMES')
  t.equal(code(() => assertAddable(2, ['x', 'x'], [0], isMember)), 'INVALID_WEIGHT', 'weights are checked before names')
  t.equal(code(() => assertAddable(2, ['x', 'x'], [], isMember)), 'DUPLICATE_HOSTNAME')
  t.equal(code(() => assertAddable(1, ['bad name!'], [], isMember)), 'INVALID_HOSTNAME')
  t.equal(code(() => assertAddable(1, ['a'], [], isMember)), 'HOSTNAME_IN_USE')
})

t.test('/rm', async (t) => {
  t.equal(code(() => assertRemovable(2, ['a'], isMember, 2)), undefined)
  t.equal(code(() => assertRemovable(1, ['a', 'b'], isMember, 2)), 'RM_TOO_MANY_HOSTNAMES')
  t.equal(code(() => assertRemovable(2, ['a', 'a'], isMember, 2)), 'DUPLICATE_HOSTNAME')
  t.equal(code(() => assertRemovable(1, ['zz'], isMember, 2)), 'HOSTNAME_NOT_FOUND')
  t.equal(code(() => assertRemovable(3, [], isMember, 2)), 'RM_MORE_THAN_EXIST')
})

t.test('weights: integers 1..MAX_WEIGHT, at most one per replica, any JSON value refused cleanly', async (t) => {
  t.equal(code(() => assertWeights(2, [1, 256])), undefined)
  for (const bad of [[0], [257], [1.5], ['1'], null, {}, 'x', [Number.NaN]]) t.equal(code(() => assertWeights(3, bad)), 'INVALID_WEIGHT', JSON.stringify(bad))
  t.equal(code(() => assertWeights(1, [1, 1])), 'INVALID_WEIGHT')
})
