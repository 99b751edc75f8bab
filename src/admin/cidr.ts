/**
 * Address ranges for --admin-allow: parse `10.0.0.0/8`, `fc00::/7`, `::1`, `any`, and ask
 * whether a peer address is inside one. Every address lives in one 128-bit space: an IPv4
 * address a.b.c.d is its IPv4-mapped IPv6 form ::ffff:a.b.c.d (what a dual-stack socket
 * reports for an IPv4 client), so `127.0.0.0/8` matches both `127.0.0.1` and
 * `::ffff:127.0.0.1` without listing both. Parsing is strict: a malformed range is a
 * configuration error, never a rule that silently matches nothing (or everything).
 */
import { isIPv4, isIPv6 } from 'node:net'

const ALL = (1n << 128n) - 1n
/** ::ffff:0:0/96, where IPv4 addresses live. */
const V4_MAPPED = 0xffffn << 32n

export interface Cidr {
  /** As written in the list (for messages and --help). */
  readonly text: string
  /** First address of the range (host bits zero). */
  readonly base: bigint
  /** Prefix length in the 128-bit space (an IPv4 /8 is 96 + 8). */
  readonly bits: number
}

/** Named ranges: the default is `loopback,private`. */
export const NAMED: Readonly<Record<string, readonly string[]>> = {
  loopback: ['127.0.0.0/8', '::1/128'],
  private: ['10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', 'fc00::/7'],
}

/** An IPv4 or IPv6 address (an IPv6 zone such as %eth0 is ignored) as a 128-bit number; undefined if malformed. */
export function parseAddress(text: string): bigint | undefined {
  const percent = text.indexOf('%')
  const address = percent === -1 ? text : text.slice(0, percent)
  if (isIPv4(address)) return V4_MAPPED | ipv4(address)
  if (isIPv6(address)) return ipv6(address)
  return undefined
}

/** `address/prefix` or a single address (a /32 or /128). Throws Error with a message for the user. */
export function parseCidr(text: string): Cidr {
  const trimmed = text.trim()
  const slash = trimmed.indexOf('/')
  const addressText = slash === -1 ? trimmed : trimmed.slice(0, slash)
  const v4 = isIPv4(addressText)
  if (!v4 && (!isIPv6(addressText) || addressText.includes('%'))) {
    throw new Error(`${JSON.stringify(text)} is not an IPv4 or IPv6 address range (e.g. 10.0.0.0/8 or fd00::/8)`)
  }
  const max = v4 ? 32 : 128
  let prefix = max
  if (slash !== -1) {
    const prefixText = trimmed.slice(slash + 1)
    prefix = /^\d{1,3}$/.test(prefixText) ? Number(prefixText) : NaN
    if (!(prefix <= max)) throw new Error(`${JSON.stringify(text)}: the prefix length must be a number from 0 to ${max}`)
  }
  const address = parseAddress(addressText)!
  const bits = v4 ? 96 + prefix : prefix
  const base = address & mask(bits)
  if (base !== address) {
    // 192.168.1.10/24 is usually a typo for a single host or for 192.168.1.0/24: ask.
    throw new Error(`${JSON.stringify(text)} has bits set past its /${prefix} prefix; write the range's first address (e.g. ${format(base, v4)}/${prefix}) or a single address`)
  }
  return Object.freeze({ text: trimmed, base, bits })
}

function mask(bits: number): bigint {
  return bits === 0 ? 0n : (ALL << BigInt(128 - bits)) & ALL
}

/** Is a parsed address inside the range? */
export function contains(cidr: Cidr, address: bigint): boolean {
  return (address & mask(cidr.bits)) === cidr.base
}

/** A parsed --admin-allow value: `any`, or a list of ranges. */
export class AllowList {
  private constructor(
    /** undefined: any address. */
    readonly ranges: readonly Cidr[] | undefined,
  ) {
    Object.freeze(this)
  }

  static readonly ANY = new AllowList(undefined)

  /**
   * Comma-separated ranges, single addresses and the names `loopback` and `private`, or
   * `any`. Throws Error naming the first bad entry.
   */
  static parse(text: string): AllowList {
    const entries = text.split(',').map((s) => s.trim())
    if (entries.length === 1 && entries[0]!.toLowerCase() === 'any') return AllowList.ANY
    if (entries.some((e) => e.toLowerCase() === 'any')) throw new Error('`any` allows every address: use it alone, not in a list')
    if (entries.some((e) => e === '')) throw new Error(`${JSON.stringify(text)} has an empty entry`)
    const ranges: Cidr[] = []
    for (const entry of entries) {
      const named = NAMED[entry.toLowerCase()]
      if (named !== undefined) ranges.push(...named.map(parseCidr))
      else ranges.push(parseCidr(entry))
    }
    return new AllowList(Object.freeze(ranges))
  }

  /** Is this peer address (as a socket reports it) allowed? An unknown or malformed address is not. */
  allows(address: string | undefined): boolean {
    if (this.ranges === undefined) return true
    if (address === undefined) return false
    const parsed = parseAddress(address)
    return parsed !== undefined && this.ranges.some((range) => contains(range, parsed))
  }

  toString(): string {
    return this.ranges === undefined ? 'any' : this.ranges.map((r) => r.text).join(',')
  }

  /** As written (JSON.stringify cannot write the ranges' bigints). */
  toJSON(): string {
    return this.toString()
  }
}

function ipv4(text: string): bigint {
  let value = 0n
  for (const part of text.split('.')) value = (value << 8n) | BigInt(Number(part))
  return value
}

/** A valid IPv6 address (checked by isIPv6) as a 128-bit number; handles `::` and a trailing dotted IPv4. */
function ipv6(text: string): bigint {
  let body = text
  const lastColon = body.lastIndexOf(':')
  const last = body.slice(lastColon + 1)
  if (last.includes('.')) {
    // '::ffff:1.2.3.4' is '::ffff:102:304': the dotted part is the last two groups.
    const v4 = ipv4(last)
    body = `${body.slice(0, lastColon + 1)}${(v4 >> 16n).toString(16)}:${(v4 & 0xffffn).toString(16)}`
  }
  const split = (part: string): string[] => (part === '' ? [] : part.split(':'))
  const double = body.indexOf('::')
  let groups: string[]
  if (double === -1) {
    groups = split(body)
  } else {
    const head = split(body.slice(0, double))
    const rest = split(body.slice(double + 2))
    groups = [...head, ...Array<string>(8 - head.length - rest.length).fill('0'), ...rest]
  }
  let value = 0n
  for (const group of groups) value = (value << 16n) | BigInt(parseInt(group, 16))
  return value
}

/** An address of the 128-bit space as text: dotted IPv4 when `v4`, else full hex groups shortened by URL. */
function format(value: bigint, v4: boolean): string {
  if (v4) return [24n, 16n, 8n, 0n].map((shift) => String((value >> shift) & 0xffn)).join('.')
  const groups: string[] = []
  for (let shift = 112n; shift >= 0n; shift -= 16n) groups.push(((value >> shift) & 0xffffn).toString(16))
  return new URL(`http://[${groups.join(':')}]/`).hostname.slice(1, -1)
}
