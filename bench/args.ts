/**
 * Command-line flags of the bench scripts: those shared by the load benches (http.ts, tcp.ts),
 * so that `npm run bench -- FLAGS` means the same to both, and the walk for the smaller
 * scripts whose every flag takes a value (ab.ts, profile.ts, ring-quality.ts).
 */
import { parseArgs } from 'node:util'

/** What every load bench takes. */
export interface RunOptions {
  /** Seconds per measured run. */
  duration: number
  /** Seconds of warm-up per target. */
  warmup: number
  repeats: number
  connections: number[]
  /** Folder for the JSON and Markdown results. */
  out: string
}

/** Reads the value after a flag: as text, or as a number of at least `min`. */
export interface FlagValue {
  text(): string
  num(min: number): number
}

/** The run flags every load bench knows; a script's own flags go to its `other` callback. */
const RUN_OPTIONS = {
  help: { type: 'boolean', short: 'h' },
  duration: { type: 'string' },
  warmup: { type: 'string' },
  repeats: { type: 'string' },
  connections: { type: 'string' },
  quick: { type: 'boolean' },
  out: { type: 'string' },
} as const

/**
 * Flags by node:util's parseArgs (non-strict: every token comes back, the messages stay ours):
 * --help prints `help` and exits; --duration, --warmup, --repeats, --connections (comma
 * list), --quick and --out set `o`; any other flag goes to `other`, which returns false for a
 * flag it does not know (then this throws). A value is the next argument, whatever it looks
 * like (as before).
 */
export function parseRunFlags(argv: readonly string[], o: RunOptions, help: string, other: (flag: string, value: FlagValue) => boolean): void {
  // A value is taken from the next argument by what a flag's handler asks for, which node:util
  // cannot know of a script's own flags: after each such value, parsing starts again behind it.
  let start = 0
  while (start < argv.length) start = runFlagsFrom(argv, start, o, help, other)
}

/** Handle the flags from `argv[start]` on; returns where to go on (argv.length when done). */
function runFlagsFrom(argv: readonly string[], start: number, o: RunOptions, help: string, other: (flag: string, value: FlagValue) => boolean): number {
  const rest = argv.slice(start)
  const { tokens } = parseArgs({ args: rest, options: RUN_OPTIONS, strict: false, allowPositionals: true, tokens: true })
  for (const token of tokens) {
    // The argument as written: `--flag=value` stays one unknown word, as it always was here.
    const flag = rest[token.index]!
    let took = false
    const value: FlagValue = {
      text: () => {
        const v = rest[token.index + 1]
        if (v === undefined) throw new Error(`${flag} needs a value`)
        took = true
        return v
      },
      num: (min) => {
        const n = Number(value.text())
        if (!Number.isFinite(n) || n < min) throw new Error(`${flag} must be a number >= ${min}`)
        return n
      },
    }
    switch (flag) {
      case '--help':
      case '-h':
        console.log(help)
        process.exit(0)
      case '--duration':
        o.duration = value.num(1)
        break
      case '--warmup':
        o.warmup = value.num(0)
        break
      case '--repeats':
        o.repeats = Math.floor(value.num(1))
        break
      case '--connections':
        o.connections = value.text().split(',').map((s) => Number(s.trim()))
        if (o.connections.some((c) => !Number.isInteger(c) || c < 1)) throw new Error('--connections must be positive integers')
        break
      case '--quick':
        o.duration = 3
        o.warmup = 1
        break
      case '--out':
        o.out = value.text()
        break
      default:
        if (!other(flag, value)) throw new Error(`unknown flag ${flag} (see --help)`)
    }
    if (took) return start + token.index + 2
  }
  return argv.length
}


/**
 * Flags that take no value (`--close`): the ones of `switches` present in `argv`, and `argv`
 * without them, for parseValueFlags (where every flag takes a value).
 */
export function takeSwitches(argv: readonly string[], switches: readonly string[]): { on: ReadonlySet<string>; rest: string[] } {
  return { on: new Set(switches.filter((s) => argv.includes(s))), rest: argv.filter((a) => !switches.includes(a)) }
}

/**
 * Flags where every flag takes a value, by node:util's parseArgs (non-strict, so every token
 * comes back and the messages stay ours): `setters` maps each flag to what it sets. A flag
 * without a value throws, and so does one not in `setters` (the message ends in `usage`).
 * `--flag value` and `--flag=value` both work.
 */
export function parseValueFlags(argv: readonly string[], setters: Readonly<Record<string, (value: string) => void>>, usage: string): void {
  const options = Object.fromEntries(Object.keys(setters).map((flag) => [flag.replace(/^--/, ''), { type: 'string' as const }]))
  const { tokens } = parseArgs({ args: [...argv], options, strict: false, allowPositionals: true, tokens: true })
  for (const token of tokens) {
    const raw = argv[token.index]!
    const flag = token.kind === 'option' && token.rawName.startsWith('--') ? token.rawName : raw
    const set = token.kind === 'option' && Object.hasOwn(setters, flag) ? setters[flag] : undefined
    const value = token.kind === 'option' ? token.value : undefined
    // As the walk this replaced: a flag with nothing after it needs a value, known or not.
    if (value === undefined && (set !== undefined || token.index === argv.length - 1)) throw new Error(`${flag} needs a value`)
    if (set === undefined) throw new Error(`unknown flag ${raw}; use ${usage}`)
    set(value!)
  }
}
