/**
 * The admin plane's configuration, validated once at start-up (config.ts calls this with the
 * raw flag values). The token is turned into its digest here and not kept: no config dump,
 * log line, --help text or error message can show it, because nothing holds it.
 */
import { readFileSync } from 'node:fs'
import { AllowList } from './cidr.js'
import { digestToken, type AccessPolicy } from './access.js'

export const ADMIN_PORT_DEFAULT = 5050
export const ADMIN_HOST_DEFAULT = '127.0.0.1'
export const ADMIN_ALLOW_DEFAULT = 'loopback,private'
/** A shorter token is too easy to guess for something that controls everyone's traffic. */
export const MIN_TOKEN_LENGTH = 16
/** RFC 6750's b64token: what may follow `Bearer ` in an Authorization header. */
const B64TOKEN = /^[A-Za-z0-9\-._~+/]+=*$/

export interface AdminConfig extends AccessPolicy {
  /** Port of the admin listener; undefined: `off`. */
  readonly port: number | undefined
  readonly host: string
  /** /add and /rm are also served on the main port (false: they are proxied there like any path). */
  readonly onMain: boolean
  /** ms an admin request body may take to arrive (then 408). */
  readonly bodyTimeoutMs: number
}

/**
 * The digest of the admin token from `--admin-token` / LB_ADMIN_TOKEN or the file named by
 * `--admin-token-file`, or undefined when neither is set. Throws Error with a message that
 * never contains the token.
 */
export function tokenDigest(token: string | undefined, file: string | undefined): string | undefined {
  if (token !== undefined && file !== undefined) {
    throw new Error('--admin-token (or LB_ADMIN_TOKEN) and --admin-token-file are both set: use one')
  }
  let value = token
  let source = '--admin-token'
  if (file !== undefined) {
    source = `the token in --admin-token-file ${JSON.stringify(file)}`
    try {
      // A trailing newline (echo "$TOKEN" > file) is not part of the token.
      value = readFileSync(file, 'utf8').replace(/\r?\n$/, '')
    } catch (err) {
      throw new Error(`--admin-token-file: cannot read ${JSON.stringify(file)}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`)
    }
  }
  if (value === undefined) return undefined
  if (value.length < MIN_TOKEN_LENGTH || !B64TOKEN.test(value)) {
    // The value itself is not shown: a near-miss token is still a secret.
    throw new Error(
      `${source} must be at least ${MIN_TOKEN_LENGTH} characters of letters, digits and - . _ ~ + / (e.g. from: openssl rand -hex 32); the value given is not shown`,
    )
  }
  return digestToken(value).toString('hex')
}

/** `--admin-allow`: see AllowList.parse. */
export function allowList(text: string): AllowList {
  return AllowList.parse(text)
}
