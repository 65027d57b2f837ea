/**
 * The dashboard in headless Chromium (Debian's, driven by playwright-core):
 * it loads, shows the demo's backends, and updates when an instance is
 * ejected. Screenshots are saved under test-output/.
 */
import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { mkdirSync } from 'node:fs'
import { chromium, type Browser } from 'playwright-core'
import { startDemo } from '../helpers/demo.js'
import { ConsulLikeDnsServer } from '../helpers/dns-server.js'
import { Upstream } from '../helpers/upstream.js'
import { SpawnedGateway } from '../helpers/spawn-gateway.js'
import { send } from '../helpers/http.js'

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium'
mkdirSync('test-output', { recursive: true })

async function launch (t: TestContext): Promise<Browser> {
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync']
  })
  t.after(async () => { await browser.close() })
  return browser
}

test('the dashboard loads and shows the demo\'s backends, instances and DNS', async (t) => {
  const demo = await startDemo(t)
  const browser = await launch(t)
  const page = await browser.newPage({ viewport: { width: 1280, height: 800 } })
  await page.goto(`http://127.0.0.1:${demo.adminPort}/`)
  await page.waitForSelector('tr[data-backend="web-prod"] .cell')
  assert.equal(await page.locator('#readiness').textContent(), 'ready')
  assert.equal(await page.locator('tr[data-backend="web-prod"] .cell[data-state="up"]').count(), 3)
  assert.equal(await page.locator('tr[data-backend="web-staging"] .cell[data-state="up"]').count(), 2)
  assert.match(await page.locator('#dns').innerText(), /SRV _web\._prod\.service\.demo/)
  await page.screenshot({ path: 'test-output/dashboard-demo.png', fullPage: true })
})

test('the dashboard updates when an instance is ejected, and says why', async (t) => {
  const dns = await ConsulLikeDnsServer.start(t)
  const failing = await Upstream.start(t, 'failing')
  const fine = await Upstream.start(t, 'fine')
  dns.setService('_web._prod.service.consul', [{ address: '127.0.0.1', port: failing.port }, { address: '127.0.0.1', port: fine.port }])
  const gateway = await SpawnedGateway.start(t, `
listen: { http: "127.0.0.1:\${PORT}", admin: "127.0.0.1:\${ADMIN_PORT}" }
resolvers: { consul: { nameservers: ["${dns.address}"] } }
backends:
  web-prod: { discovery: { resolver: consul, srv: _web._prod.service.consul }, balance: round-robin, outlier: { consecutiveFailures: 2, ejectFor: 60s } }
frontends:
  - { name: prod, match: {}, backend: web-prod }
`)
  const browser = await launch(t)
  const page = await browser.newPage({ viewport: { width: 1280, height: 600 } })
  await page.goto(gateway.adminUrl + '/')
  await page.waitForSelector('tr[data-backend="web-prod"] .cell[data-state="up"]')
  assert.equal(await page.locator('.cell[data-state="ejected"]').count(), 0)
  failing.behaviour = (_request, response) => { response.statusCode = 500; response.end('{}'); return true }
  for (let round = 0; round < 6; round++) await send(`${gateway.url}/`, { host: 'www.example.com' })
  const ejected = page.locator(`.cell[data-state="ejected"]`)
  await ejected.waitFor({ timeout: 5000 })
  assert.match(await ejected.innerText(), new RegExp(`127\\.0\\.0\\.1:${failing.port}[\\s\\S]*ejected until`))
  await page.screenshot({ path: 'test-output/dashboard-ejected.png', fullPage: true })
})
