/**
 * A worker's side of the IPC channel: sending, and calls that the primary answers (/add and
 * /rm arriving at this worker run on the primary's balancer, and come back with its answer
 * or its BalancerError, code and message as thrown there).
 */
import { BalancerError, ERRORS, type ErrorCode } from '../errors.js'
import type { Membership } from '../membership/types.js'
import type { MembershipControl } from '../admin/api.js'
import type { FromWorker, ToWorker } from './protocol.js'

export class PrimaryChannel {
  private nextId = 1
  private readonly pending = new Map<number, { resolve: (m: Membership) => void; reject: (err: Error) => void }>()

  send(message: FromWorker): void {
    // The channel is gone when the primary died; the worker exits on 'disconnect'.
    if (process.connected) process.send!(message)
  }

  /** A `reply` from the primary: settle its call. */
  settle(message: Extract<ToWorker, { t: 'reply' }>): void {
    const call = this.pending.get(message.id)
    if (call === undefined) return
    this.pending.delete(message.id)
    if (message.error) {
      const code = (message.error.code in ERRORS ? message.error.code : 'INTERNAL') as ErrorCode
      call.reject(new BalancerError(code, message.error.message))
    } else {
      call.resolve(message.membership!)
    }
  }

  /** The primary is gone: every open call fails as the single process fails a request during shutdown. */
  failAll(): void {
    for (const call of this.pending.values()) call.reject(new BalancerError('SHUTTING_DOWN'))
    this.pending.clear()
  }

  /** Membership for the admin routes: reads from the worker's snapshot, changes through the primary. */
  control(membership: () => Membership, inRing: () => number): MembershipControl {
    const call = (op: 'add' | 'rm', n: number, hostnames: readonly string[], weights: readonly number[]): Promise<Membership> =>
      new Promise((resolve, reject) => {
        if (!process.connected) return reject(new BalancerError('SHUTTING_DOWN'))
        const id = this.nextId++
        this.pending.set(id, { resolve, reject })
        this.send({ t: 'call', id, op, n, hostnames: [...hostnames], weights: [...weights] })
      })
    return {
      membership,
      add: (n, hostnames = [], weights = []) => call('add', n, hostnames, weights),
      remove: (n, hostnames = []) => call('rm', n, hostnames, []),
      ring: { get size() { return inRing() } },
    }
  }
}
