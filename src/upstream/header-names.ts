/**
 * Header names matched where they lie, inside the head text a reader holds: no slice and no
 * lower-cased copy per header (the per-request strings that profiles showed on the plain GET
 * path). Matching is ASCII case-insensitive, as header names are (RFC 9110 5.1).
 */

/** Does text[start, end) spell `lower` (a lower-case name), in any case? */
export function nameIs(text: string, start: number, end: number, lower: string): boolean {
  if (end - start !== lower.length) return false
  for (let i = 0; i < lower.length; i++) {
    let c = text.charCodeAt(start + i)
    if (c >= 65 && c <= 90) c += 32
    if (c !== lower.charCodeAt(i)) return false
  }
  return true
}

/** A fixed set of lower-case names; most names are ruled out by their length alone. */
export class NameSet {
  private readonly byLength: Array<string[] | undefined> = []

  constructor(names: Iterable<string>) {
    for (const name of names) (this.byLength[name.length] ??= []).push(name)
  }

  /** Is text[start, end) one of the names? */
  has(text: string, start: number, end: number): boolean {
    const candidates = this.byLength[end - start]
    if (candidates === undefined) return false
    for (let i = 0; i < candidates.length; i++) if (nameIs(text, start, end, candidates[i]!)) return true
    return false
  }
}
