// The admin plane's flags: listener, allow-list, token (from a flag, env or file). The token
// never appears in an error message, --help or the config.
import t from 'tap'
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ConfigError, helpText, loadConfig } from '../../src/config.js'
import { digestToken, bearerToken } from '../../src/admin/access.js'
import { tokenDigest } from '../../src/admin/options.js'

const TOKEN = 'f00dfeed-c0ffee-2024-token'

t.test('defaults: admin listener on 127.0.0.1:5050, mutations on both ports from loopback and private ranges, no token', async (t) => {
  const { admin } = loadConfig([])
  t.equal(admin.port, 5050)
  t.equal(admin.host, '127.0.0.1')
  t.equal(admin.onMain, true)
  t.equal(admin.allow.toString(), '127.0.0.0/8,::1/128,10.0.0.0/8,172.16.0.0/12,192.168.0.0/16,fc00::/7')
  t.equal(admin.tokenDigest, undefined)
  t.ok(Object.isFrozen(admin))
})

t.test('flags and env twins', async (t) => {
  const c = loadConfig(['--admin-port', 'off', '--admin-on-main=false', '--admin-allow', 'any'], { LB_ADMIN_HOST: '::1', LB_ADMIN_TOKEN: TOKEN })
  t.equal(c.admin.port, undefined)
  t.equal(c.admin.host, '::1')
  t.equal(c.admin.onMain, false)
  t.equal(c.admin.allow.toString(), 'any')
  t.same(c.admin.tokenDigest, digestToken(TOKEN).toString('hex'), 'only the digest is kept')
  t.equal(loadConfig(['--admin-port', '0']).admin.port, 0)
  t.equal(loadConfig(['--admin-port', 'OFF']).admin.port, undefined)
})

t.test('the token from a file: one line, trailing newline dropped', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'rb-admin-token-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const file = join(dir, 'token')
  writeFileSync(file, `${TOKEN}\n`)
  t.same(loadConfig(['--admin-token-file', file]).admin.tokenDigest, digestToken(TOKEN).toString('hex'))
  writeFileSync(file, `${TOKEN}\r\n`)
  t.same(tokenDigest(undefined, file), digestToken(TOKEN).toString('hex'))
  t.throws(() => loadConfig(['--admin-token-file', join(dir, 'missing')]), { name: 'ConfigError', message: /^--admin-token-file: cannot read ".*missing": ENOENT$/ })
  t.throws(() => loadConfig(['--admin-token-file', file], { LB_ADMIN_TOKEN: TOKEN }), { message: '--admin-token (or LB_ADMIN_TOKEN) and --admin-token-file are both set: use one' })
  writeFileSync(file, `short\n`)
  const err = t.throws(() => loadConfig(['--admin-token-file', file])) as Error
  t.match(err.message, /^the token in --admin-token-file ".*" must be at least 16 characters/)
  t.notMatch(err.message, /short/, 'the bad value is not shown')
})

t.test('bad values get clear messages that never contain a token', async (t) => {
  const bad: Array<[string[], RegExp]> = [
    [['--admin-port', '5000'], /^--admin-port must differ from --port and --tcp-port \(all use 5000\); use off for no admin listener$/],
    [['--admin-port', '6000', '--tcp-port', '6000'], /^--admin-port must differ/],
    [['--admin-port', 'none'], /^--admin-port must be an integer from 0 to 65535, got "none"$/],
    [['--admin-host', ' '], /^--admin-host must not be empty$/],
    [['--admin-on-main=maybe'], /^--admin-on-main must be true or false, got "maybe"$/],
    [['--admin-allow', '10.0.0.1/8'], /^--admin-allow: "10\.0\.0\.1\/8" has bits set past its \/8 prefix/],
    [['--admin-allow', 'internet'], /^--admin-allow: "internet" is not an IPv4 or IPv6 address range/],
    [['--admin-allow', 'any,loopback'], /^--admin-allow: `any` allows every address: use it alone/],
  ]
  for (const [argv, message] of bad) t.throws(() => loadConfig(argv), { name: 'ConfigError', message }, argv.join(' '))
  for (const secret of ['too-short-15chr', 'has space in the middle', 'quote"d-token-value-here', 'ümlaut-token-1234567']) {
    const err = t.throws(() => loadConfig(['--admin-token', secret]), ConfigError) as Error
    t.match(err.message, /^--admin-token must be at least 16 characters of letters, digits and - \. _ ~ \+ \/ .*; the value given is not shown$/)
    t.notOk(err.message.includes(secret), `${JSON.stringify(secret)} is not in the message`)
  }
  t.doesNotThrow(() => loadConfig(['--admin-token', 'A'.repeat(16)]), '16 characters are enough')
  t.doesNotThrow(() => loadConfig(['--admin-token', 'abc+/def~ghi.jkl_mn-o=='], {}), 'b64token characters and trailing =')
  t.notOk(helpText().includes(TOKEN))
  t.match(helpText(), /--admin-token VALUE/)
})

t.test('bearerToken reads RFC 6750 Authorization headers', async (t) => {
  t.equal(bearerToken(`Bearer ${TOKEN}`), TOKEN)
  t.equal(bearerToken(`bearer ${TOKEN}`), TOKEN)
  t.equal(bearerToken(`BEARER   ${TOKEN} `), TOKEN)
  t.equal(bearerToken(undefined), undefined)
  t.equal(bearerToken(''), undefined)
  t.equal(bearerToken('Bearer'), undefined)
  t.equal(bearerToken('Bearer '), undefined)
  t.equal(bearerToken(`Basic ${TOKEN}`), undefined)
  t.equal(bearerToken(`Bearer a b`), undefined, 'two tokens are none')
  t.equal(bearerToken(`Bearer\t${TOKEN}`), undefined)
})
