// The --admin-allow matcher: IPv4, IPv6 and IPv4-mapped addresses in one space; strict parsing.
import t from 'tap'
import { AllowList, contains, parseAddress, parseCidr } from '../../src/admin/cidr.js'

t.test('addresses: IPv4 is its IPv4-mapped IPv6 form; zones are ignored', async (t) => {
  t.equal(parseAddress('127.0.0.1'), parseAddress('::ffff:127.0.0.1'))
  t.equal(parseAddress('::ffff:127.0.0.1'), parseAddress('::ffff:7f00:1'), 'dotted and hex tails agree')
  t.equal(parseAddress('::1'), 1n)
  t.equal(parseAddress('::'), 0n)
  t.equal(parseAddress('1:2:3:4:5:6:7:8'), 0x0001_0002_0003_0004_0005_0006_0007_0008n)
  t.equal(parseAddress('1::8'), 0x0001_0000_0000_0000_0000_0000_0000_0008n)
  t.equal(parseAddress('fe80::1%eth0'), parseAddress('fe80::1'))
  t.equal(parseAddress('64:ff9b::192.0.2.33'), 0x0064_ff9b_0000_0000_0000_0000_c000_0221n, 'an embedded IPv4 tail after ::')
  for (const bad of ['', 'localhost', '1.2.3', '1.2.3.4.5', '256.1.1.1', '01.2.3.4', '1.2.3.4 ', ':::', '1::2::3', 'g::1', '::1/128', '12345::']) {
    t.equal(parseAddress(bad), undefined, `malformed: ${JSON.stringify(bad)}`)
  }
})

t.test('ranges: IPv4, IPv6, single addresses, and what a peer matches', async (t) => {
  const in8 = parseCidr('127.0.0.0/8')
  t.equal(in8.bits, 104)
  t.ok(contains(in8, parseAddress('127.0.0.1')!))
  t.ok(contains(in8, parseAddress('127.255.255.255')!))
  t.ok(contains(in8, parseAddress('::ffff:127.0.0.2')!), 'a dual-stack socket reports IPv4 clients mapped')
  t.notOk(contains(in8, parseAddress('128.0.0.1')!))
  t.notOk(contains(in8, parseAddress('::1')!))
  const p12 = parseCidr('172.16.0.0/12')
  t.ok(contains(p12, parseAddress('172.31.255.1')!))
  t.notOk(contains(p12, parseAddress('172.32.0.1')!))
  const ula = parseCidr('fc00::/7')
  t.ok(contains(ula, parseAddress('fd12:3456::1')!))
  t.notOk(contains(ula, parseAddress('fe80::1')!))
  const host = parseCidr('192.0.2.7')
  t.equal(host.bits, 128, 'a single IPv4 address is a /32')
  t.ok(contains(host, parseAddress('192.0.2.7')!))
  t.notOk(contains(host, parseAddress('192.0.2.8')!))
  t.ok(contains(parseCidr('0.0.0.0/0'), parseAddress('203.0.113.9')!), '/0 of IPv4: every IPv4 address')
  t.notOk(contains(parseCidr('0.0.0.0/0'), parseAddress('2001:db8::1')!), '... and no IPv6 one')
  t.ok(contains(parseCidr('::/0'), parseAddress('2001:db8::1')!))
  t.ok(contains(parseCidr('::ffff:10.0.0.0/104'), parseAddress('10.1.2.3')!), 'an IPv4-mapped range written in IPv6')
})

t.test('malformed ranges are refused with a message', async (t) => {
  const bad: Array<[string, RegExp]> = [
    ['', /is not an IPv4 or IPv6 address range/],
    ['10.0.0.0/', /prefix length must be a number from 0 to 32/],
    ['10.0.0.0/33', /prefix length must be a number from 0 to 32/],
    ['10.0.0.0/-1', /prefix length must be a number from 0 to 32/],
    ['10.0.0.0/8/8', /prefix length/],
    ['10.0.0.0/0x8', /prefix length/],
    ['::/129', /prefix length must be a number from 0 to 128/],
    ['10.0.0/8', /is not an IPv4 or IPv6 address range/],
    ['300.0.0.0/8', /is not an IPv4 or IPv6 address range/],
    ['fe80::1%eth0/64', /is not an IPv4 or IPv6 address range/],
    ['example.com/8', /is not an IPv4 or IPv6 address range/],
    ['192.168.1.10/24', /has bits set past its \/24 prefix; write the range's first address \(e\.g\. 192\.168\.1\.0\/24\)/],
    ['fd00::1/8', /has bits set past its \/8 prefix; write the range's first address \(e\.g\. fd00::\/8\)/],
  ]
  for (const [text, message] of bad) t.throws(() => parseCidr(text), { message }, JSON.stringify(text))
})

t.test('allow lists: named ranges, any, and malformed lists', async (t) => {
  const defaults = AllowList.parse('loopback,private')
  for (const peer of ['127.0.0.1', '::ffff:127.0.0.1', '::1', '10.1.2.3', '172.17.0.1', '::ffff:172.17.0.1', '192.168.0.5', 'fd00::5']) {
    t.ok(defaults.allows(peer), `default allows ${peer}`)
  }
  for (const peer of ['203.0.113.5', '::ffff:203.0.113.5', '2001:db8::1', '8.8.8.8', '172.32.0.1', 'not an address', '', undefined]) {
    t.notOk(defaults.allows(peer), `default refuses ${String(peer)}`)
  }
  t.equal(defaults.toString(), '127.0.0.0/8,::1/128,10.0.0.0/8,172.16.0.0/12,192.168.0.0/16,fc00::/7')
  const only = AllowList.parse('127.0.0.1/32')
  t.ok(only.allows('127.0.0.1'))
  t.notOk(only.allows('127.0.0.2'), 'another loopback address is another peer')
  t.ok(AllowList.parse(' Any ').allows('203.0.113.5'))
  t.ok(AllowList.parse('any').allows(undefined), 'any is any')
  t.ok(AllowList.parse('LOOPBACK, 203.0.113.0/24').allows('203.0.113.200'))
  t.throws(() => AllowList.parse('any,10.0.0.0/8'), { message: /use it alone/ })
  t.throws(() => AllowList.parse('10.0.0.0/8,,'), { message: /empty entry/ })
  t.throws(() => AllowList.parse(''), { message: /empty entry/ })
  t.throws(() => AllowList.parse('loopback,publc'), { message: /"publc" is not an IPv4 or IPv6 address range/ })
})

t.test('an allow list serialises as its text', async (t) => {
  t.equal(JSON.stringify({ allow: AllowList.parse('loopback') }), '{"allow":"127.0.0.0/8,::1/128"}')
  t.equal(JSON.stringify(AllowList.ANY), '"any"')
})
