/**
 * The checks /add and /rm make on their input before anything starts or stops (SPEC 4.2,
 * 4.3): every one throws the BalancerError the admin API answers with.
 */
import { BalancerError } from '../errors.js'
import { MAX_WEIGHT } from '../ring/ring.js'
import { clip, preview } from '../preview.js'
import { validateHostname } from './names.js'

/** /add's input: at most n hostnames, valid weights, each name valid, none repeated, none a present member. */
export function assertAddable(n: number, hostnames: readonly string[], weights: readonly number[], isMember: (name: string) => boolean): void {
  if (hostnames.length > n) throw new BalancerError('ADD_TOO_MANY_HOSTNAMES')
  assertWeights(n, weights)
  assertUnique(hostnames)
  for (const name of hostnames) {
    validateHostname(name)
    if (isMember(name)) throw new BalancerError('HOSTNAME_IN_USE', `Hostname '${name}' is already in use`)
  }
}

/** /rm's hostnames: at most n, none repeated, each a member; and n no more than there are. */
export function assertRemovable(n: number, hostnames: readonly string[], isMember: (name: string) => boolean, present: number): void {
  if (hostnames.length > n) throw new BalancerError('RM_TOO_MANY_HOSTNAMES')
  assertUnique(hostnames)
  for (const name of hostnames) {
    if (!isMember(name)) throw new BalancerError('HOSTNAME_NOT_FOUND', `Hostname '${clip(name)}' does not exist`)
  }
  if (n > present) throw new BalancerError('RM_MORE_THAN_EXIST', `Cannot remove ${n} replica(s): only ${present} exist`)
}

function assertUnique(names: readonly string[]): void {
  const seen = new Set<string>()
  for (const name of names) {
    if (seen.has(name)) throw new BalancerError('DUPLICATE_HOSTNAME', `Hostname '${clip(name)}' appears more than once`)
    seen.add(name)
  }
}

/**
 * /add's optional weights: a list of integers 1..MAX_WEIGHT, at most one per new replica.
 * The one check for both the admin payload (any JSON value) and direct callers.
 */
export function assertWeights(n: number, weights: unknown): asserts weights is number[] {
  if (!Array.isArray(weights) || !weights.every((w) => Number.isSafeInteger(w) && w >= 1 && w <= MAX_WEIGHT)) {
    throw new BalancerError('INVALID_WEIGHT', `weights must be a list of integers from 1 to ${MAX_WEIGHT}, one per new replica, got ${preview(weights)}`)
  }
  if (weights.length > n) {
    throw new BalancerError('INVALID_WEIGHT', `weights lists ${weights.length} weights for ${n} new replica(s): at most one per replica`)
  }
}
