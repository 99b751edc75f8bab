/**
 * Hash presets for the ring (SPEC 3). A preset says where a request lands (H) and where
 * virtual server j of a server is placed (Φ); the ring does probing and ownership.
 *
 * Formula presets are polynomials in the request id / server id, evaluated exactly modulo
 * M: every coefficient and argument is reduced mod M (M <= 65536) first, so each product is
 * below 2^32 and each sum far below 2^53 -- no floating point overflow for any safe id.
 * The `ring` preset mixes instead, and places servers by hostname, not by join order. The
 * `default` preset mixes request ids the same way but builds its owner table by a
 * capacity-capped rendezvous assignment (table.ts) instead of virtual servers and probing.
 */
import { fmix32, fnv1a32, mixId } from './mix.js'

/** H(i) = h[0]·i² + h[1]·i + h[2];  Φ(i, j) = phi[0]·i² + phi[1]·i + phi[2]·j² + phi[3]·j + phi[4]. */
export interface FormulaHash {
  readonly kind: 'formula'
  /** A preset name, or the canonical `custom:h=..;phi=..` text. */
  readonly name: string
  readonly h: readonly [number, number, number]
  readonly phi: readonly [number, number, number, number, number]
}

/** Request slot = mix(id) mod M; point (name, j) = fmix32(FNV-1a(`${name}#${j}`)) mod M. */
export interface MixedHash {
  readonly kind: 'mixed'
  readonly name: 'ring'
}

/**
 * Request slot = mix(id) mod M, as `ring`; the owner table is a capacity-capped rendezvous
 * assignment of the slots to the hostnames (table.ts): within 5 % of fair, same in any join
 * order. No virtual servers, no probing.
 */
export interface TableHash {
  readonly kind: 'table'
  readonly name: 'default'
}

export type HashSpec = FormulaHash | MixedHash | TableHash

/** A spec bound to a slot count M: the two functions the ring calls. */
export interface BoundHash {
  readonly spec: HashSpec
  /** Slot of request id `id` (a non-negative safe integer; not validated here). */
  requestSlot(id: number): number
  /** Unprobed slot of virtual server j of the server with this id and hostname (not used by `table`). */
  vnodeSlot(serverId: number, hostname: string, j: number): number
}

function formula(
  name: string,
  h: readonly [number, number, number],
  phi: readonly [number, number, number, number, number],
): FormulaHash {
  return Object.freeze({ kind: 'formula', name, h: Object.freeze(h), phi: Object.freeze(phi) })
}

export const HASH_PRESETS = Object.freeze({
  default: Object.freeze({ kind: 'table', name: 'default' }) as TableHash,
  ring: Object.freeze({ kind: 'mixed', name: 'ring' }) as MixedHash,
  // The original course assignment: H = i² + 2i + 17, Φ = i² + j² + 2j + 25.
  assignment: formula('assignment', [1, 2, 17], [1, 0, 1, 2, 25]),
  // Seed document 002: H = 2i² + i + 17, Φ = i + j + 2j² + 25.
  quadratic: formula('quadratic', [2, 1, 17], [0, 1, 2, 1, 25]),
  // Seed document 000: H = 3i + 17, Φ = i + 3j + 25.
  linear: formula('linear', [0, 3, 17], [0, 1, 0, 3, 25]),
})

export type HashPresetName = keyof typeof HASH_PRESETS

/** Names accepted by parseHashSpec besides the `custom:` form. */
export const HASH_PRESET_NAMES: readonly HashPresetName[] = Object.freeze(
  Object.keys(HASH_PRESETS) as HashPresetName[],
)

const CUSTOM_SYNTAX = 'custom:h=A,B,C;phi=A,B,C,D,E'
const ACCEPTED = `${HASH_PRESET_NAMES.join(', ')} or ${CUSTOM_SYNTAX} (non-negative integers)`

/**
 * A custom formula spec from its coefficients. Coefficients must be non-negative safe
 * integers: the formulas are defined over the naturals, and a negative value would make
 * "mod M" ambiguous between languages.
 */
export function customHash(h: readonly number[], phi: readonly number[]): FormulaHash {
  if (h.length !== 3) throw new Error(`custom hash: h needs 3 coefficients, got ${h.length}`)
  if (phi.length !== 5) throw new Error(`custom hash: phi needs 5 coefficients, got ${phi.length}`)
  for (const c of [...h, ...phi]) {
    if (!Number.isSafeInteger(c) || c < 0) {
      throw new Error(`custom hash: coefficients must be non-negative integers, got ${c}`)
    }
  }
  const name = `custom:h=${h.join(',')};phi=${phi.join(',')}`
  return formula(name, [h[0]!, h[1]!, h[2]!], [phi[0]!, phi[1]!, phi[2]!, phi[3]!, phi[4]!])
}

function parseCoefficients(text: string, what: string, whole: string): number[] {
  return text.split(',').map((part) => {
    const t = part.trim()
    const n = Number(t)
    if (!/^\d+$/.test(t) || !Number.isSafeInteger(n)) {
      throw new Error(
        `Invalid hash "${whole}": ${what} coefficient ${JSON.stringify(part)} is not a non-negative integer; expected ${CUSTOM_SYNTAX}`,
      )
    }
    return n
  })
}

/**
 * Parses `--hash`: a preset name (`default`, `ring`, `assignment`, `quadratic`, `linear`) or
 * `custom:h=A,B,C;phi=A,B,C,D,E`. Throws an Error naming the accepted values otherwise.
 */
export function parseHashSpec(text: string): HashSpec {
  const t = text.trim()
  if (Object.hasOwn(HASH_PRESETS, t)) return HASH_PRESETS[t as HashPresetName]
  if (!t.startsWith('custom:')) {
    throw new Error(`Unknown hash ${JSON.stringify(text)}: expected ${ACCEPTED}`)
  }
  const parts = new Map<string, string>()
  for (const part of t.slice('custom:'.length).split(';')) {
    const eq = part.indexOf('=')
    const key = part.slice(0, eq).trim()
    if (eq < 0 || (key !== 'h' && key !== 'phi') || parts.has(key)) {
      throw new Error(`Invalid hash ${JSON.stringify(text)}: expected ${CUSTOM_SYNTAX} (non-negative integers)`)
    }
    parts.set(key, part.slice(eq + 1))
  }
  const h = parts.get('h')
  const phi = parts.get('phi')
  if (h === undefined || phi === undefined) {
    throw new Error(`Invalid hash ${JSON.stringify(text)}: both h and phi are required, as in ${CUSTOM_SYNTAX}`)
  }
  const hc = parseCoefficients(h, 'h', text)
  const pc = parseCoefficients(phi, 'phi', text)
  if (hc.length !== 3 || pc.length !== 5) {
    throw new Error(
      `Invalid hash ${JSON.stringify(text)}: h needs 3 and phi 5 coefficients (got ${hc.length} and ${pc.length}); expected ${CUSTOM_SYNTAX}`,
    )
  }
  return customHash(hc, pc)
}

/** Binds a spec to M slots (1..65536), precomputing the coefficients reduced mod M. */
export function bindHash(spec: HashSpec, slots: number): BoundHash {
  const m = slots
  if (spec.kind === 'mixed' || spec.kind === 'table') {
    return {
      spec,
      requestSlot: (id) => mixId(id) % m,
      vnodeSlot: (_serverId, hostname, j) => fmix32(fnv1a32(`${hostname}#${j}`)) % m,
    }
  }
  // After this reduction every operand is < m <= 2^16, so a·b < 2^32: exact in a double.
  const [h0, h1, h2] = spec.h.map((c) => c % m) as [number, number, number]
  const [p0, p1, p2, p3, p4] = spec.phi.map((c) => c % m) as [number, number, number, number, number]
  return {
    spec,
    requestSlot(id) {
      const i = id % m
      return (((h0 * i) % m) * i + h1 * i + h2) % m
    },
    vnodeSlot(serverId, _hostname, j) {
      const i = serverId % m
      const k = j % m
      return (((p0 * i) % m) * i + p1 * i + ((p2 * k) % m) * k + p3 * k + p4) % m
    },
  }
}
