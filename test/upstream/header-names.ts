// Header names matched in place, as the request reader, forwarding and the response parser use them.
import t from 'tap'
import { NameSet, nameIs } from '../../src/upstream/header-names.js'

t.test('nameIs and NameSet match names in place, in any case', async (t) => {
  t.equal(nameIs('a HoSt b', 2, 6, 'host'), true)
  t.equal(nameIs('a Hosts b', 2, 7, 'host'), false)
  t.equal(nameIs('a Hast b', 2, 6, 'host'), false)
  t.equal(nameIs('[@', 0, 2, '{`'), false, 'only A-Z fold')
  const set = new NameSet(['te', 'upgrade'])
  t.equal(set.has('xTEx', 1, 3), true)
  t.equal(set.has('UPGRADE', 0, 7), true)
  t.equal(set.has('upgradex', 0, 8), false)
  t.equal(set.has('tf', 0, 2), false)
})
