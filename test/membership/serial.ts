// Membership changes run one at a time, in arrival order, and a failure does not block the next.
import t from 'tap'
import { setImmediate as tick } from 'node:timers/promises'
import { SerialQueue } from '../../src/membership/serial.js'

t.test('changes never interleave and run in arrival order', async (t) => {
  const q = new SerialQueue()
  const log: string[] = []
  const change = (name: string) => async (): Promise<string> => {
    log.push(`${name} start`)
    await tick()
    await tick()
    log.push(`${name} end`)
    return name
  }
  const results = await Promise.all([q.run(change('a')), q.run(change('b')), q.run(change('c'))])
  t.same(results, ['a', 'b', 'c'])
  t.same(log, ['a start', 'a end', 'b start', 'b end', 'c start', 'c end'])
})

t.test('a failed change rejects its own caller only', async (t) => {
  const q = new SerialQueue()
  const failed = q.run(async () => {
    throw new Error('boom')
  })
  const next = q.run(async () => 'next')
  await t.rejects(failed, { message: 'boom' })
  t.equal(await next, 'next')
})
