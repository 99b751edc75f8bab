// The README's configuration table and `--help` say the same thing for every flag: the same
// env twin, the same default and the same text (the README adds only Markdown code marks).
import t from 'tap'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { OPTIONS, helpText, plain } from '../src/config.js'
import { projectRoot } from '../src/paths.js'

const readme = readFileSync(join(projectRoot, 'README.md'), 'utf8')

/** The README table row of a flag, as cells: flag, env, default, meaning. */
function rowOf(flag: string): string[] | undefined {
  const line = readme.split('\n').find((l) => l.startsWith(`| \`--${flag}\` |`))
  return line?.split('|').slice(1, -1).map((c) => c.trim())
}

t.test('every option is in the README configuration table', async (t) => {
  for (const o of OPTIONS) {
    t.match(readme, `| \`--${o.flag}\` | \`${o.env}\` |`, `--${o.flag} documented`)
  }
})

t.test('--help and the README table give the same default and text for every flag', async (t) => {
  const help = helpText().split('\n')
  for (const o of OPTIONS) {
    const row = rowOf(o.flag)
    if (!row) {
      t.fail(`--${o.flag} has no README row`)
      continue
    }
    const [, env, def, meaning] = row
    const line = help.find((l) => l.startsWith(`  --${o.flag} `))
    t.ok(line, `--${o.flag} is in --help`)
    t.equal(plain(env ?? ''), o.env, `--${o.flag}: env twin`)
    const expected = `${plain(meaning ?? '')}${def ? ` (default ${plain(def)})` : ''}  [${o.env}]`
    t.ok(line?.endsWith(expected), `--${o.flag}: --help says what the README says`, { found: line, wanted: expected })
  }
})
