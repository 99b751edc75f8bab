/**
 * What a load bench records about the run it made: the machine, Node, the commit measured, and
 * the load average before, so a table can say where its numbers came from.
 */
import { execFileSync } from 'node:child_process'
import { cpus, release, totalmem } from 'node:os'
import { root } from './procs.js'
import { round } from './stats.js'

export interface MachineInfo {
  date: string
  cpu: string
  cores: number
  memoryGiB: number
  kernel: string
  node: string
  commit: string
  loadavgBefore: number[]
}

/** The short commit, marked when src/ or replica/ have uncommitted changes; 'unknown' outside git. */
export function commitOf(): string {
  try {
    let commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: root, encoding: 'utf8' }).trim()
    const dirty = execFileSync('git', ['status', '--porcelain', '--', 'src', 'replica'], { cwd: root, encoding: 'utf8' }).trim()
    if (dirty) commit += ' (src/ with uncommitted changes)'
    return commit
  } catch {
    return 'unknown'
  }
}

export function machineInfo(loadBefore: readonly number[]): MachineInfo {
  return {
    date: new Date().toISOString(),
    cpu: cpus()[0]?.model ?? 'unknown',
    cores: cpus().length,
    memoryGiB: round(totalmem() / 2 ** 30, 1),
    kernel: release(),
    node: process.version,
    commit: commitOf(),
    loadavgBefore: loadBefore.map((l) => round(l, 2)),
  }
}
