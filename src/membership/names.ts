/**
 * Replica hostnames: what a valid one is, and fresh random ones.
 * The SPEC's default names (`Server 1`) contain a space, so a "hostname" here is a label a
 * user can read and a provider can map to a valid container name: 1 to 63 characters of
 * letters, digits, spaces, '.', '_' and '-', starting and ending with a letter or digit.
 */
import { randomBytes } from 'node:crypto'
import { BalancerError } from '../errors.js'
import { quote } from '../preview.js'

const VALID = /^[A-Za-z0-9](?:[A-Za-z0-9 ._-]{0,61}[A-Za-z0-9])?$/

export function isValidHostname(name: string): boolean {
  return VALID.test(name) && !name.includes('  ')
}

/** Throws INVALID_HOSTNAME naming the bad value. */
export function validateHostname(name: string): void {
  if (!isValidHostname(name)) {
    throw new BalancerError(
      'INVALID_HOSTNAME',
      `Invalid hostname ${quote(name)}: use 1-63 letters, digits, single spaces, '.', '_' or '-', starting and ending with a letter or digit`,
    )
  }
}

/** A random name (`replica-3f9a2c`) not in `taken`. */
export function randomHostname(taken: { has(name: string): boolean }): string {
  for (;;) {
    const name = `replica-${randomBytes(3).toString('hex')}`
    if (!taken.has(name)) return name
  }
}
