import t from 'tap'
import { inSubnet, resolveReach } from '../../../src/replicas/swarm/reach.js'

t.test('inSubnet', async (t) => {
  t.ok(inSubnet('10.0.1.7', '10.0.1.0/24'))
  t.notOk(inSubnet('10.0.2.7', '10.0.1.0/24'))
  t.ok(inSubnet('10.0.2.7', '10.0.0.0/16'))
  t.ok(inSubnet('192.168.1.1', '0.0.0.0/0'))
  t.ok(inSubnet('10.0.1.0', '10.0.1.0/32'))
  t.notOk(inSubnet('10.0.1.1', '10.0.1.0/32'))
  for (const bad of ['10.0.1', '10.0.1.256', 'fe80::1', '', '10.0.1.x']) t.notOk(inSubnet(bad, '10.0.1.0/24'), `address ${JSON.stringify(bad)}`)
  for (const bad of ['10.0.1.0', '10.0.1.0/33', '10.0.1.0/-1', 'x/24']) t.notOk(inSubnet('10.0.1.1', bad), `subnet ${JSON.stringify(bad)}`)
})

t.test('auto: overlay only when one of our addresses is on the overlay', async (t) => {
  t.equal(resolveReach('auto', ['10.0.1.0/24'], ['127.0.0.1', '172.18.0.3', '10.0.1.9']), 'overlay')
  t.equal(resolveReach('auto', ['10.0.1.0/24'], ['127.0.0.1', '172.18.0.3']), 'host')
  t.equal(resolveReach('auto', [], ['10.0.1.9']), 'host', 'a network without a subnet is never ours')
  t.equal(resolveReach('host', ['10.0.1.0/24'], ['10.0.1.9']), 'host', 'an explicit choice wins')
  t.equal(resolveReach('overlay', ['10.0.1.0/24'], []), 'overlay')
  t.equal(resolveReach('auto', ['10.0.9.0/24']), 'host', "this test process's own interfaces are on no overlay")
})
