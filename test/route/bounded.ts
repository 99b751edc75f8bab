// Bounded loads (--balance-factor): the chooser's rule on its own, then through the real proxy
// in front of real, slow upstream servers with a skewed key stream (one hot key).
import t, { type Test } from 'tap'
import { createServer, type Server } from 'node:http'
import { HashRing } from '../../src/ring/ring.js'
import { Upstream } from '../../src/upstream/upstream.js'
import { WriteBatcher } from '../../src/upstream/batcher.js'
import { proxyOptions } from '../fixtures/proxy.js'
import { createProxy } from '../../src/front/http.js'
import { createChooser, type Loaded } from '../../src/route/bounded.js'
import { call, listen, waitFor } from '../fixtures/http.js'
import { rng } from '../fixtures/rng.js'

// ---- the rule, with plain objects as members ---------------------------------------------

interface Fake extends Loaded {
  name: string
  inflight: number
}

function fakeRing(names: string[], weights: number[] = []): { ring: HashRing<Fake>; by: Map<string, Fake> } {
  const ring = new HashRing<Fake>()
  const by = new Map<string, Fake>()
  names.forEach((name, i) => {
    const f: Fake = { name, inflight: 0 }
    by.set(name, f)
    ring.add(name, f, weights[i] ?? 1)
  })
  return { ring, by }
}

/** The distinct members clockwise from id's slot, owner first (the ring's own walk order). */
function walkOrder<T>(ring: HashRing<T>, id: number): string[] {
  const order: string[] = []
  ring.next(id, (_v, name) => (order.push(name), false))
  return order
}

t.test('off: the ring owner, whatever the load', async (t) => {
  const { ring, by } = fakeRing(['a', 'b', 'c'])
  const choose = createChooser(ring, undefined)
  by.get(ring.pick(7)!.name)!.inflight = 1000
  t.equal(choose(7), ring.pick(7))
  t.equal(createChooser(new HashRing<Fake>(), 1.25)(7), undefined, 'empty ring')
  for (const bad of [0, 0.5, -1, NaN, Infinity]) t.throws(() => createChooser(ring, bad), RangeError, `factor ${bad}`)
})

t.test('on: the owner while under its bound, else the next clockwise with room', async (t) => {
  const { ring, by } = fakeRing(['a', 'b', 'c', 'd'])
  const choose = createChooser(ring, 1.25)
  const id = 12345
  const [owner, second, third] = walkOrder(ring, id)
  // 7 in flight elsewhere + this one = 8; bound = ceil(1.25 × 8 / 4) = 3.
  by.get(owner!)!.inflight = 2
  by.get(second!)!.inflight = 3
  by.get(third!)!.inflight = 2
  t.equal(choose(id)!.name, owner, 'owner at 2 < 3: keeps its key')
  by.get(owner!)!.inflight = 3
  by.get(third!)!.inflight = 1
  // Still 7 + 1 = 8 in all: owner and second are at 3, the third clockwise has room.
  t.equal(choose(id)!.name, third, 'owner and the next are full: the one after')
  // Everyone at the bound cannot happen (the bounds sum past the load), but a lone member is
  // always chosen.
  const solo = fakeRing(['x'])
  solo.by.get('x')!.inflight = 99
  t.equal(createChooser(solo.ring, 1)(id)!.name, 'x')
})

t.test('weights scale the bound', async (t) => {
  const { ring, by } = fakeRing(['heavy', 'light'], [3, 1])
  const choose = createChooser(ring, 1)
  const id = [...Array(1000).keys()].find((k) => ring.pick(k)!.name === 'heavy')!
  // 7 in flight + 1 = 8 over weight 4: heavy's bound is ceil(8 × 3/4) = 6, light's 2.
  by.get('heavy')!.inflight = 5
  by.get('light')!.inflight = 2
  t.equal(choose(id)!.name, 'heavy', 'weight 3: room up to 6')
  by.get('heavy')!.inflight = 6
  by.get('light')!.inflight = 1
  t.equal(choose(id)!.name, 'light')
})

t.test('a skewed stream never puts a member above ceil(factor × average)', async (t) => {
  for (const factor of [1, 1.1, 1.25, 2]) {
    const names = ['s1', 's2', 's3', 's4', 's5']
    const { ring, by } = fakeRing(names, [1, 2, 1, 1, 3])
    const W = 8
    const choose = createChooser(ring, factor)
    let seed = 1
    const random = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 4294967296)
    const hot = 4242
    const live: Fake[] = []
    let affinityKept = 0
    let ownerHadRoom = 0
    for (let step = 0; step < 5000; step++) {
      if (live.length > 0 && random() < 0.45) {
        const done = live.splice(Math.floor(random() * live.length), 1)[0]!
        done.inflight--
        continue
      }
      const id = random() < 0.6 ? hot : Math.floor(random() * 1e6)
      const total = live.length + 1
      const bound = (f: Fake) => Math.ceil((factor * total * ring.weightOf(f.name)!) / W - 1e-9)
      const owner = ring.pick(id)!
      const chosen = choose(id)!
      if (owner.inflight < bound(owner)) {
        ownerHadRoom++
        if (chosen === owner) affinityKept++
      } else if (chosen === owner) t.fail(`factor ${factor}: owner at its bound chosen`)
      chosen.inflight++
      live.push(chosen)
      if (chosen.inflight > bound(chosen)) t.fail(`factor ${factor} step ${step}: ${chosen.name} holds ${chosen.inflight} > ${bound(chosen)}`)
      // Overflow goes to the first member clockwise with room.
      const firstWithRoom = walkOrder(ring, id).map((n) => by.get(n)!).find((f) => (f === chosen ? f.inflight - 1 : f.inflight) < bound(f))
      if (firstWithRoom !== chosen) t.fail(`factor ${factor} step ${step}: chose ${chosen.name}, first with room ${firstWithRoom?.name}`)
    }
    t.equal(affinityKept, ownerHadRoom, `factor ${factor}: every request whose owner had room stayed with it (${affinityKept})`)
  }
})

t.test('a worker of N (--workers): N × its own counts decide as one process over all of them', async (t) => {
  // Load spread evenly over N workers: every global count is N × the worker's. The worker's
  // chooser (share N, its own counts) must pick exactly what the single process's (share 1,
  // the global counts) picks, key by key; comparing raw local counts would not (below).
  const random = rng(17)
  for (const N of [2, 3, 4]) {
    let differs = 0
    for (const factor of [1, 1.25, 2]) {
      const local = fakeRing(['a', 'b', 'c', 'd', 'e'], [1, 2, 1, 1, 3])
      const global = fakeRing(['a', 'b', 'c', 'd', 'e'], [1, 2, 1, 1, 3])
      const worker = createChooser(local.ring, factor, N)
      const single = createChooser(global.ring, factor)
      const unscaled = createChooser(local.ring, factor)
      for (let trial = 0; trial < 2000; trial++) {
        for (const [name, f] of local.by) {
          f.inflight = Math.floor(random() * 6)
          global.by.get(name)!.inflight = N * f.inflight
        }
        const id = Math.floor(random() * 1e6)
        const want = single(id)!.name
        if (worker(id)!.name !== want) {
          t.fail(`N ${N} factor ${factor} trial ${trial}: worker chose ${worker(id)!.name}, the single process ${want}`)
          return
        }
        if (unscaled(id)!.name !== want) differs++
      }
    }
    t.ok(differs > 0, `N ${N}: the worker routes as one process in 3 × 2000 states (raw local counts would differ in ${differs})`)
  }
  t.throws(() => createChooser(fakeRing(['a']).ring, 1.25, 0), RangeError, 'share 0')
  t.throws(() => createChooser(fakeRing(['a']).ring, 1.25, 1.5), RangeError, 'share 1.5')
})

// ---- through the proxy, real sockets, slow replicas ---------------------------------------

interface Slow {
  name: string
  server: Server
  port: number
  current: number
  peak: number
  served: number
}

/** An upstream that answers only when `gate` opens (or after `delayMs`). */
async function slowBackend(t: Test, name: string, gate: Promise<void> | undefined, delayMs = 0): Promise<Slow> {
  const b: Slow = { name, server: undefined as unknown as Server, port: 0, current: 0, peak: 0, served: 0 }
  b.server = createServer((req, res) => {
    req.resume()
    b.current++
    b.peak = Math.max(b.peak, b.current)
    const answer = () => {
      b.current--
      b.served++
      res.writeHead(200, { 'content-type': 'text/plain' })
      res.end(name)
    }
    if (gate) void gate.then(answer)
    else setTimeout(answer, delayMs)
  })
  b.port = await listen(t, b.server)
  return b
}

async function proxyFor(t: Test, backends: Slow[], factor: number | undefined): Promise<{ url: string; ring: HashRing<Upstream> }> {
  const ring = new HashRing<Upstream>()
  const batcher = new WriteBatcher()
  for (const b of backends) {
    const u = new Upstream({ name: b.name, host: '127.0.0.1', port: b.port, id: b.name }, { batcher })
    t.teardown(() => u.close())
    ring.add(b.name, u)
  }
  const proxy = createProxy(proxyOptions({ ring, keyOf: (req) => Number(req.headers['x-key']), upstreamTimeoutMs: 10_000, choose: createChooser(ring, factor) }))
  const server = createServer(proxy)
  return { url: `http://127.0.0.1:${await listen(t, server)}`, ring }
}

function keyFor(ring: HashRing<Upstream>, name: string, skip = 0): string {
  for (let id = 0; id < 100_000; id++) if (ring.pick(id)?.name === name && skip-- === 0) return String(id)
  throw new Error(`no key for ${name}`)
}

/** 8 cold requests (two keys per replica), then 32 with one hot key, all held until released. */
async function hotBurst(t: Test, factor: number | undefined) {
  let release!: () => void
  const gate = new Promise<void>((r) => (release = r))
  const backends = await Promise.all(['r1', 'r2', 'r3', 'r4'].map((n) => slowBackend(t, n, gate)))
  const { url, ring } = await proxyFor(t, backends, factor)
  const arrived = () => backends.reduce((s, b) => s + b.current, 0)
  const replies: Promise<{ key: string; body: string; status: number }>[] = []
  const send = (key: string) => replies.push(call(`${url}/home`, 'GET', undefined, { 'x-key': key }).then((r) => ({ key, body: r.body, status: r.status })))
  const cold = [0, 1].flatMap((k) => backends.map((b) => keyFor(ring, b.name, k)))
  for (const key of cold) {
    send(key)
    await waitFor('the cold request to arrive', () => arrived() === replies.length)
  }
  const hotOwner = backends.find((b) => b.name === ring.pick(7)!.name)!
  for (let k = 0; k < 32; k++) send('7')
  await waitFor('all 40 requests to be held by the replicas', () => arrived() === 40)
  const peaks = backends.map((b) => b.current)
  release()
  const done = await Promise.all(replies)
  return { backends, ring, done, peaks, hotOwner, cold }
}

t.test('one hot key, 40 requests held by 4 slow replicas, factor 1.25', async (t) => {
  const { backends, ring, done, peaks, hotOwner, cold } = await hotBurst(t, 1.25)
  t.ok(done.every((r) => r.status === 200), 'every request answered')
  t.same(
    done.slice(0, 8).map((r) => r.body),
    cold.map((k) => ring.pick(Number(k))!.name),
    'cold keys, sent while there was room, stayed with their own replicas',
  )
  const bound = Math.ceil((1.25 * 40) / 4) // 13
  t.ok(Math.max(...peaks) <= bound, `no replica held more than ceil(1.25 × 40/4) = ${bound}: ${peaks.join(' / ')}`)
  t.equal(peaks[backends.indexOf(hotOwner)], bound, `the hot key's replica kept it up to its bound (${bound})`)
  const order = walkOrder(ring, 7)
  const next = backends.find((b) => b.name === order[1])!
  t.ok(peaks[backends.indexOf(next)]! > 2, `the overflow went to the next replica clockwise (${next.name}: ${peaks[backends.indexOf(next)]})`)
  t.equal(backends.reduce((s, b) => s + b.served, 0), 40)
})

t.test('the same burst without a balance factor piles onto one replica', async (t) => {
  const { backends, done, peaks, hotOwner } = await hotBurst(t, undefined)
  t.ok(done.every((r) => r.status === 200))
  t.equal(peaks[backends.indexOf(hotOwner)], 34, 'its 2 cold requests and all 32 hot ones')
})

t.test('a continuous skewed stream through slow replicas (100 ms each, 20 at a time)', async (t) => {
  const backends = await Promise.all(['r1', 'r2', 'r3', 'r4'].map((n) => slowBackend(t, n, undefined, 100)))
  const { url } = await proxyFor(t, backends, 1.25)
  let next = 0
  const statuses: number[] = []
  const worker = async () => {
    while (next < 200) {
      const k = next++
      const key = k % 4 === 3 ? String(100000 + k * 7919) : '7' // 75 % of the requests: one key
      statuses.push((await call(`${url}/home`, 'GET', undefined, { 'x-key': key })).status)
    }
  }
  await Promise.all(Array.from({ length: 20 }, worker))
  t.equal(statuses.filter((s) => s === 200).length, 200)
  // At most 20 in flight (plus the one being placed): no replica ever above ceil(1.25 × 20/4).
  const peaks = backends.map((b) => b.peak)
  t.ok(Math.max(...peaks) <= Math.ceil((1.25 * 20) / 4), `peak in flight per replica: ${peaks.join(' / ')} (bound 7)`)
  t.ok(Math.min(...backends.map((b) => b.served)) > 0, `everyone served: ${backends.map((b) => b.served).join(' / ')}`)
})
