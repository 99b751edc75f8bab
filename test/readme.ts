// The README's configuration table lists every flag with its env twin, so docs and code agree.
import t from 'tap'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { OPTIONS } from '../src/config.js'
import { projectRoot } from '../src/paths.js'

t.test('every option is in the README configuration table', async (t) => {
  const readme = readFileSync(join(projectRoot, 'README.md'), 'utf8')
  for (const o of OPTIONS) {
    t.match(readme, `| \`--${o.flag}\` | \`${o.env}\` |`, `--${o.flag} documented`)
  }
})
