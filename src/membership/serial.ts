/**
 * Membership changes run one at a time, in arrival order: two changes never interleave, and
 * a change that fails does not block the next.
 */
export class SerialQueue {
  private tail: Promise<unknown> = Promise.resolve()

  run<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.tail.then(fn, fn)
    this.tail = run.catch(() => undefined)
    return run
  }
}
