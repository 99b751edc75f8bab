/**
 * Runs bench scripts one after another as `npm run bench` does (`http` then `tcp`), each in its
 * own node process with the same arguments, and passes SIGINT/SIGTERM on to the one running:
 * npm signals only its direct child, so a shell `a && b` in between would die and leave the
 * bench (and everything it started) running.
 *
 *   node dist/bench/run.js http,tcp [args for each]
 */
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

const here = fileURLToPath(new URL('.', import.meta.url))

async function main(): Promise<number> {
  const [list, ...args] = process.argv.slice(2)
  if (!list) {
    console.error('usage: node dist/bench/run.js NAME[,NAME...] [args]')
    return 2
  }
  let stopped: NodeJS.Signals | undefined
  for (const name of list.split(',')) {
    const child = spawn(process.execPath, [join(here, `${name}.js`), ...args], { stdio: 'inherit' })
    const forward = (signal: NodeJS.Signals): void => {
      stopped = signal
      child.kill(signal)
    }
    process.on('SIGINT', forward)
    process.on('SIGTERM', forward)
    const [code, signal] = (await once(child, 'exit')) as [number | null, NodeJS.Signals | null]
    process.off('SIGINT', forward)
    process.off('SIGTERM', forward)
    if (stopped) return 130
    if (code !== 0) return code ?? (signal ? 1 : 0)
  }
  return 0
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(err)
    process.exit(1)
  },
)
