/**
 * Who may change membership. A load balancer's admin API is a remote control for everyone's
 * traffic: HAProxy keeps its runtime API on a local socket, Envoy says to bind admin to
 * localhost, Traefik's API is insecure until auth is added. Here a mutation (/add, /rm) must
 * pass three checks, in this order, on every listener:
 *   1. the peer address is in --admin-allow (403 ADMIN_FORBIDDEN);
 *   2. it is not a browser request forged by another site: an `Origin` that is not the
 *      listener's own, or `Sec-Fetch-Site: cross-site` (403 CROSS_SITE). curl sends neither;
 *      a page in a browser always sends Origin on a POST or DELETE;
 *   3. when a token is set (--admin-token, LB_ADMIN_TOKEN, --admin-token-file), the request
 *      carries `Authorization: Bearer <token>` (401 UNAUTHORIZED with WWW-Authenticate).
 * The token is kept only as its SHA-256 digest; a presented token is hashed too and the two
 * digests compared with crypto.timingSafeEqual, so neither the comparison's time nor a length
 * difference tells a guesser anything.
 */
import { createHash, timingSafeEqual } from 'node:crypto'
import type { IncomingMessage } from 'node:http'
import { BalancerError } from '../errors.js'
import { clip } from '../preview.js'
import type { AllowList } from './cidr.js'

export interface AccessPolicy {
  readonly allow: AllowList
  /** SHA-256 of the admin token, hex; undefined: no token needed. */
  readonly tokenDigest: string | undefined
}

/** The realm named in WWW-Authenticate. */
export const REALM = 'ring-balancer admin'

export function digestToken(token: string): Buffer {
  return createHash('sha256').update(token, 'utf8').digest()
}

/** A refusal: the error to answer with, plus headers (WWW-Authenticate for 401). */
export interface Refusal {
  readonly error: BalancerError
  readonly headers?: Record<string, string>
}

/** undefined if `req` may change membership, else why not. Reads headers only. */
export function checkMutation(req: IncomingMessage, policy: AccessPolicy): Refusal | undefined {
  const peer = req.socket.remoteAddress
  if (!policy.allow.allows(peer)) {
    return { error: new BalancerError('ADMIN_FORBIDDEN', `Membership changes are not allowed from ${peer ?? 'an unknown address'} (see --admin-allow)`) }
  }
  const crossSite = crossSiteReason(req)
  if (crossSite !== undefined) return { error: new BalancerError('CROSS_SITE', `Cross-site request refused: ${crossSite}`) }
  if (policy.tokenDigest !== undefined) {
    const presented = bearerToken(req.headers.authorization)
    if (presented === undefined) {
      return {
        error: new BalancerError('UNAUTHORIZED', 'Membership changes need Authorization: Bearer <token> (see --admin-token)'),
        headers: { 'www-authenticate': `Bearer realm="${REALM}"` },
      }
    }
    if (!timingSafeEqual(digestToken(presented), Buffer.from(policy.tokenDigest, 'hex'))) {
      return {
        error: new BalancerError('UNAUTHORIZED', 'Invalid bearer token'),
        headers: { 'www-authenticate': `Bearer realm="${REALM}", error="invalid_token"` },
      }
    }
  }
  return undefined
}

/** The token of `Authorization: Bearer <token>` (scheme case-insensitive, RFC 6750 2.1); undefined if absent or another scheme. */
export function bearerToken(header: string | undefined): string | undefined {
  if (header === undefined) return undefined
  const match = /^bearer +(\S+) *$/i.exec(header)
  return match?.[1]
}

/** Why a request looks forged by another site, or undefined if it does not. */
function crossSiteReason(req: IncomingMessage): string | undefined {
  const fetchSite = req.headers['sec-fetch-site']
  if (typeof fetchSite === 'string' && fetchSite.trim().toLowerCase() === 'cross-site') return 'Sec-Fetch-Site: cross-site'
  const origin = req.headers.origin
  if (origin === undefined) return undefined
  // The same host and port as the request's Host, by http or https (a TLS proxy in front).
  const own = req.headers.host === undefined || req.headers.host === '' ? undefined : hostOf(`http://${req.headers.host}`)
  if (own === undefined || hostOf(origin) !== own) {
    return `Origin ${clip(origin)} is not this listener's${own === undefined ? '' : ` (${own})`}`
  }
  return undefined
}

/** The host (and port, unless the scheme's default) of an http(s) origin; undefined if not one. */
function hostOf(text: string): string | undefined {
  try {
    const url = new URL(text)
    if (url.protocol !== 'http:' && url.protocol !== 'https:') return undefined
    if (url.username !== '' || url.password !== '' || (url.pathname !== '/' && url.pathname !== '') || url.search !== '' || url.hash !== '') return undefined
    return url.host
  } catch {
    return undefined
  }
}
