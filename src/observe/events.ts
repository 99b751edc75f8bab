/**
 * Recent membership and health events for /stats and the dashboard: a bounded list, newest
 * last, filled from the balancer's events (joined, left, suspect, restored, dead, replaced).
 */

export interface ObservedEvent {
  /** Wall-clock ms. */
  readonly at: number
  readonly kind: 'joined' | 'left' | 'suspect' | 'restored' | 'dead' | 'replaced'
  readonly replica: string
  readonly detail: string
}

/** What the log listens to (the balancer's events). */
export interface EventSource<M extends { readonly name: string }> {
  on(event: 'joined', listener: (member: M) => void): unknown
  on(event: 'left', listener: (name: string, reason: string, member: M) => void): unknown
  on(event: 'suspect' | 'restored' | 'dead', listener: (member: M) => void): unknown
  on(event: 'replaced', listener: (dead: string, fresh: string) => void): unknown
}

export class EventLog {
  private readonly list: ObservedEvent[] = []

  constructor(private readonly capacity = 100) {}

  listen<M extends { readonly name: string }>(source: EventSource<M>): void {
    source.on('joined', (m) => this.push('joined', m.name, 'joined the ring'))
    source.on('left', (name, reason) => this.push('left', name, reason))
    source.on('suspect', (m) => this.push('suspect', m.name, 'refused or reset a connection: out of the ring until checked'))
    source.on('restored', (m) => this.push('restored', m.name, 'answers its heartbeat again: back in the ring'))
    source.on('dead', (m) => this.push('dead', m.name, 'found dead: out of the ring'))
    source.on('replaced', (dead, fresh) => this.push('replaced', fresh, `replaces ${dead}`))
  }

  push(kind: ObservedEvent['kind'], replica: string, detail: string): void {
    this.list.push({ at: Date.now(), kind, replica, detail })
    if (this.list.length > this.capacity) this.list.shift()
  }

  recent(): readonly ObservedEvent[] {
    return this.list
  }
}
