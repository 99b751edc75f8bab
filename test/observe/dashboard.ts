// The dashboard in a real browser (Debian's chromium, driven by puppeteer-core): the replica
// rows and the ring appear, and follow an /add and a killed replica; the page runs with no
// error (its Content-Security-Policy lets only its own script run). Takes a screenshot: into a
// temporary directory, or, with UPDATE_DOCS=1, over docs/dashboard.png (the README's picture),
// so an ordinary run leaves the work tree as it was. All traffic stays on loopback.
import t from 'tap'
import { existsSync } from 'node:fs'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import puppeteer, { type Page } from 'puppeteer-core'
import { startTestApp } from '../fixtures/app.js'
import { call, waitFor } from '../fixtures/http.js'
import { observeUrl } from '../fixtures/observe.js'
import type { ProcessProvider } from '../../src/replicas/process.js'

const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium'

/** The bits of the DOM the checks read (the test compiles without the DOM library). */
interface Canvas {
  width: number
  height: number
  getContext(kind: '2d'): { getImageData(x: number, y: number, w: number, h: number): { data: Uint8ClampedArray } } | null
  toDataURL(): string
}
interface Row {
  dataset: Record<string, string | undefined>
}

// .ci/run installs chromium and sets REQUIRE_BROWSER=1, which turns a skip into a failure.
const missing = existsSync(CHROMIUM) ? false : `no browser at ${CHROMIUM} (apt-get install -y chromium, or set CHROMIUM)`
if (missing && process.env.REQUIRE_BROWSER === '1') t.fail(missing)
else {
  t.test('the dashboard shows the replicas and the ring, and follows membership', { skip: missing }, async (t) => {
    const app = await startTestApp(t, ['--replicas', '3', '--health-interval', '200', '--start-timeout', '60000'])
    const base = await observeUrl(t, app)
    const profile = await mkdtemp(join(tmpdir(), 'rb-chromium-'))
    t.teardown(() => rm(profile, { recursive: true, force: true }))
    const browser = await puppeteer.launch({
      executablePath: CHROMIUM,
      headless: true,
      userDataDir: profile,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage'],
    })
    t.teardown(() => browser.close())
    const page = await browser.newPage()
    const problems: string[] = []
    page.on('pageerror', (err) => problems.push(`page error: ${(err as Error).message}`))
    page.on('console', (m) => m.type() === 'error' && problems.push(`console: ${m.text()}`))
    await page.setViewport({ width: 1400, height: 1000 })
    await page.goto(`${base}/dashboard`)

    const rows = (): Promise<string[]> => page.$$eval('#rows tr', (trs) => trs.map((tr) => (tr as unknown as Row).dataset.replica ?? ''))
    const ringColours = (p: Page): Promise<number> =>
      p.$eval('#ring', (cv) => {
        const c = cv as unknown as Canvas
        const data = c.getContext('2d')!.getImageData(0, 0, c.width, c.height).data
        const seen = new Set<string>()
        // Opaque pixels only: anti-aliased edges blend into the background.
        for (let i = 0; i < data.length; i += 4 * 7) if (data[i + 3] === 255) seen.add(`${data[i]},${data[i + 1]},${data[i + 2]}`)
        return seen.size
      })
    const ringImage = (): Promise<string> => page.$eval('#ring', (cv) => (cv as unknown as Canvas).toDataURL())
    const until = async (what: string, check: () => Promise<boolean>): Promise<void> => waitFor(what, check, 15_000, 100)

    await until('three replica rows', async () => (await rows()).length === 3)
    t.same((await rows()).sort(), [...app.balancer.membership().replicas].sort(), 'one row per replica, by name')
    t.ok((await ringColours(page)) >= 3, 'the ring is drawn in (at least) one colour per owner')
    const before = await ringImage()

    // Traffic shows up as a rate in the table.
    for (let i = 0; i < 60; i++) await call(`${app.url}/home`)
    await until('a request rate', async () => (await page.$$eval('#rows tr td:nth-child(6)', (tds) => tds.map((td) => Number(td.textContent!.replace(/,/g, ''))))).reduce((a, b) => a + b, 0) === 60)

    t.equal((await call(`${app.url}/add`, 'POST', JSON.stringify({ n: 1, hostnames: ['Dash 4'] }))).status, 200)
    await until('the added row', async () => (await rows()).includes('Dash 4'))
    await until('the ring redrawn with the new owner', async () => (await ringImage()) !== before)

    const victim = app.balancer.membership().replicas[0]!
    process.kill((app.balancer.provider as ProcessProvider).pidOf(victim)!, 'SIGKILL')
    await until('the killed row gone and its replacement shown', async () => {
      const now = await rows()
      return !now.includes(victim) && now.length === 4
    })
    await until('the replacement in the events', async () => (await page.$eval('#events', (ul) => ul.textContent ?? '')).includes(`replaces ${victim}`))
    t.same((await rows()).sort(), [...app.balancer.membership().replicas].sort(), 'rows follow membership')

    // A fuller picture for the README: more replicas, a few seconds of traffic.
    t.equal((await call(`${app.url}/add`, 'POST', JSON.stringify({ n: 4 }))).status, 200)
    const end = Date.now() + 6000
    while (Date.now() < end) await Promise.all(Array.from({ length: 8 }, () => call(`${app.url}/home`)))
    await until('eight rows', async () => (await rows()).length === 8)
    const shot = process.env.UPDATE_DOCS === '1' ? join(import.meta.dirname, '..', '..', 'docs', 'dashboard.png') : join(profile, 'dashboard.png')
    await page.screenshot({ path: shot })
    const png = await readFile(shot)
    t.ok(png.length > 10_000 && png.subarray(1, 4).toString() === 'PNG', `a screenshot of the page (${png.length} bytes)`)
    t.same(problems, [], 'no page error, no console error (a CSP violation would be one)')
  })
}
