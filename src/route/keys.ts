/**
 * Request keys: what part of a request decides its place on the ring (`--key`).
 * A key becomes a request id, a non-negative safe integer the ring maps to a slot:
 * a decimal integer key is used as is (SPEC 3), any other string goes through FNV-1a.
 */
import type { IncomingHttpHeaders } from 'node:http'
import { fnv1a32 } from '../ring/mix.js'

export type KeySource =
  | { readonly kind: 'random' }
  | { readonly kind: 'ip' }
  | { readonly kind: 'path' }
  | { readonly kind: 'header' | 'query' | 'cookie'; readonly name: string }

const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/

export function parseKeySource(text: string): KeySource {
  const t = text.trim()
  if (t === 'random' || t === 'ip' || t === 'path') return { kind: t }
  const colon = t.indexOf(':')
  const kind = colon === -1 ? t : t.slice(0, colon)
  if (kind === 'header' || kind === 'query' || kind === 'cookie') {
    const name = colon === -1 ? '' : t.slice(colon + 1)
    if (name === '') throw new Error(`${kind}: needs a name, e.g. ${kind}:${kind === 'header' ? 'x-user-id' : 'user'}`)
    if (kind !== 'query' && !TOKEN.test(name)) throw new Error(`${JSON.stringify(name)} is not a valid ${kind} name`)
    return { kind, name: kind === 'header' ? name.toLowerCase() : name }
  }
  throw new Error(`unknown key source ${JSON.stringify(text)}; use random, header:NAME, query:NAME, cookie:NAME, ip or path`)
}

/**
 * The request id for a key string: a decimal integer is used as is; one too large to be
 * exact as a double is reduced modulo `slots` digit by digit (the ring reduces every id
 * modulo M first, so this changes no placement); anything else is FNV-1a hashed.
 */
export function requestIdOf(key: string, slots: number): number {
  const n = key.length
  if (n > 0 && n <= 15 && isDigits(key)) return Number(key)
  if (n > 15 && isDigits(key)) {
    let r = 0
    for (let i = 0; i < n; i++) r = (r * 10 + (key.charCodeAt(i) - 48)) % slots
    return r
  }
  return fnv1a32(key)
}

function isDigits(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i)
    if (c < 48 || c > 57) return false
  }
  return true
}

/** A random 6-digit id, as in the assignment. */
export function randomRequestId(): number {
  return 100000 + Math.floor(Math.random() * 900000)
}

/** What a key is read from: node:http's IncomingMessage, or the fast front's request. */
export interface KeyedRequest {
  readonly url?: string | undefined
  readonly headers: IncomingHttpHeaders
  readonly socket: { readonly remoteAddress?: string | undefined }
}

/** Builds the per-request key function once, so the hot path does no branching on config. */
export function keyExtractor(source: KeySource, slots: number): (req: KeyedRequest) => number {
  switch (source.kind) {
    case 'random':
      return randomRequestId
    case 'ip':
      return (req) => requestIdOf(req.socket.remoteAddress ?? '', slots)
    case 'path':
      return (req) => requestIdOf(pathOf(req.url ?? '/'), slots)
    case 'header': {
      const name = source.name
      return (req) => {
        const v = req.headers[name]
        return v === undefined ? randomRequestId() : requestIdOf(Array.isArray(v) ? v[0]! : v, slots)
      }
    }
    case 'query': {
      const name = source.name
      return (req) => {
        const v = queryParam(req.url ?? '/', name)
        return v === undefined ? randomRequestId() : requestIdOf(v, slots)
      }
    }
    case 'cookie': {
      const name = source.name
      return (req) => {
        const v = cookieValue(req.headers.cookie, name)
        return v === undefined ? randomRequestId() : requestIdOf(v, slots)
      }
    }
  }
}

export function pathOf(url: string): string {
  const q = url.indexOf('?')
  return q === -1 ? url : url.slice(0, q)
}

/** First value of a query parameter, percent-decoded; undefined when absent. */
export function queryParam(url: string, name: string): string | undefined {
  const q = url.indexOf('?')
  if (q === -1) return undefined
  const v = new URLSearchParams(url.slice(q + 1)).get(name)
  return v === null ? undefined : v
}

/** A cookie's value from a Cookie header; undefined when absent. */
export function cookieValue(header: string | undefined, name: string): string | undefined {
  if (!header) return undefined
  for (const part of header.split(';')) {
    const eq = part.indexOf('=')
    if (eq === -1) continue
    if (part.slice(0, eq).trim() === name) {
      let v = part.slice(eq + 1).trim()
      if (v.length >= 2 && v.startsWith('"') && v.endsWith('"')) v = v.slice(1, -1)
      return v
    }
  }
  return undefined
}
