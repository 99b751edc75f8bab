/**
 * Where the project's files are, whether this module runs from `src/` (tests, through the
 * TypeScript loader) or from `dist/src/` (built). The process provider needs the built
 * replica; both layouts keep `package.json` at the root.
 */
import { existsSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

function findRoot(from: string): string {
  let dir = from
  for (;;) {
    if (existsSync(join(dir, 'package.json'))) return dir
    const up = dirname(dir)
    if (up === dir) throw new Error(`cannot find the project root above ${from}`)
    dir = up
  }
}

export const projectRoot = findRoot(dirname(fileURLToPath(import.meta.url)))

/** The built replica server (`npm run build` makes it). */
export const replicaEntry = join(projectRoot, 'dist', 'replica', 'server.js')
