/**
 * Command-line flags of the bench scripts: those shared by the load benches (http.ts, tcp.ts),
 * so that `npm run bench -- FLAGS` means the same to both, and the walk for the smaller
 * scripts whose every flag takes a value (ab.ts, profile.ts, ring-quality.ts).
 */

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

/**
 * Walk `argv`: --help prints `help` and exits; --duration, --warmup, --repeats,
 * --connections (comma list), --quick and --out set `o`; any other flag goes to `other`,
 * which returns false for a flag it does not know (then this throws).
 */
export function parseRunFlags(argv: readonly string[], o: RunOptions, help: string, other: (flag: string, value: FlagValue) => boolean): void {
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i]!
    const value: FlagValue = {
      text: () => {
        const v = argv[++i]
        if (v === undefined) throw new Error(`${flag} needs a value`)
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
  }
}

/**
 * Walk `argv` where every flag takes a value: `setters` maps each flag to what it sets. A flag
 * without a value throws, and so does one not in `setters` (the message ends in `usage`).
 */
export function parseValueFlags(argv: readonly string[], setters: Readonly<Record<string, (value: string) => void>>, usage: string): void {
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i]!
    const v = argv[++i]
    if (v === undefined) throw new Error(`${flag} needs a value`)
    const set = Object.hasOwn(setters, flag) ? setters[flag] : undefined
    if (set === undefined) throw new Error(`unknown flag ${flag}; use ${usage}`)
    set(v)
  }
}
