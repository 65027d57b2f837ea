/**
 * The dashboard in headless Chromium (Debian's, driven by playwright-core):
 * it loads, shows the demo's backends, and updates when an instance is
 * ejected. Screenshots are saved under test-output/.
 */
import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { chromium, type Browser } from 'playwright-core'
import { startDemo } from '../helpers/demo.js'
import { ConsulLikeDnsServer } from '../helpers/dns-server.js'
import { Upstream } from '../helpers/upstream.js'
import { SpawnedGateway } from '../helpers/spawn-gateway.js'
import { send } from '../helpers/http.js'
import { TestCa } from '../helpers/certificates.js'
import { freePort } from '../helpers/dns-server.js'

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

test('the dashboard: per-environment rates and charts, DNS queries over time, readable TTLs and ages, UTC times, a refused reload says why, an applied one what waits for a restart', async (t) => {
  const dns = await ConsulLikeDnsServer.start(t)
  const one = await Upstream.start(t, 'pr-1')
  const two = await Upstream.start(t, 'pr-2')
  dns.setService('_web._pr-1.service.consul', [{ address: '127.0.0.1', port: one.port }])
  dns.setService('_web._pr-2.service.consul', [{ address: '127.0.0.1', port: two.port }])
  dns.setService('_gone.service.consul', [])
  const gateway = await SpawnedGateway.start(t, `
listen: { http: "127.0.0.1:\${PORT}", admin: "127.0.0.1:\${ADMIN_PORT}" }
resolvers: { consul: { nameservers: ["${dns.address}"], ttl: { min: 500ms, max: 2s } } }
backends:
  gone: { discovery: { resolver: consul, srv: _gone.service.consul } }
frontends:
  - { name: gone, match: { host: gone.example.com }, backend: gone }
  - name: preview
    match: { host: "{env}.preview.example.com" }
    env: { pattern: "pr-[0-9]+" }
    backend: { template: "web-{env}", discovery: { resolver: consul, srv: "_web._{env}.service.consul" } }
    access: { allow: [127.0.0.0/8] }
    compress: true
`, { workers: 2 })   // the dashboard shows the one shared view of both workers
  const { appendFileSync } = await import('node:fs')
  let isDone = false
  const traffic = (async () => {
    for (let index = 0; index < 3000 && !isDone; index++) {
      await send(`${gateway.url}/`, { host: 'pr-1.preview.example.com' })
      if (index % 4 === 0) await send(`${gateway.url}/`, { host: 'pr-2.preview.example.com' })
      await new Promise((resolve) => setTimeout(resolve, 5))
    }
  })()
  try {
    await checkDashboard()
  } finally {
    isDone = true
    await traffic
  }
  async function checkDashboard (): Promise<void> {
  const browser = await launch(t)
  const page = await browser.newPage({ viewport: { width: 1280, height: 800 } })
  await page.goto(gateway.adminUrl + '/')
  await page.waitForSelector('tr[data-backend="web-pr-2"] .cell')
  await page.waitForTimeout(3500)
  const rate = async (backend: string): Promise<number> => Number(/([\d.]+) req\/s/.exec(await page.locator(`tr[data-backend="${backend}"] .rate`).innerText())?.[1] ?? 0)
  const [rateOne, rateTwo] = [await rate('web-pr-1'), await rate('web-pr-2')]
  assert.ok(rateOne > 0 && rateTwo > 0, `${rateOne} ${rateTwo}`)
  assert.ok(rateOne > rateTwo * 2, `pr-1 (${rateOne}/s) and pr-2 (${rateTwo}/s) are counted apart, not merged by template`)
  assert.ok(await page.locator('tr[data-backend="web-pr-1"] polyline.req').count() === 1)
  assert.notEqual(await page.locator('tr[data-backend="web-pr-1"] polyline.req').getAttribute('points'), '')
  assert.notEqual(await page.locator('#dns-chart polyline.dns').getAttribute('points'), '')
  const dnsTable = await page.locator('#dns').innerText()
  assert.match(dnsTable, /SRV _gone\.service\.consul\s+nxdomain \(0\)\s+— \(negative\) → 5s/)
  assert.doesNotMatch(dnsTable, /\bs → \d+ms|undefined/)
  assert.doesNotMatch(dnsTable, /\d{4,}ms/, 'ages and TTLs read as durations, not thousands of ms')
  // The routes view: each frontend's policies in order, and where it sends traffic now.
  assert.equal(await page.locator('tr[data-frontend="preview"] .policies').innerText(), 'access.addresses compress')
  assert.match(await page.locator('tr[data-frontend="preview"] .targets').innerText(), /web-pr-1 · 1\/1\s+web-pr-2 · 1\/1|web-pr-2 · 1\/1\s+web-pr-1 · 1\/1/)
  assert.equal(await page.locator('tr[data-frontend="gone"] .targets .pill.bad').innerText(), 'gone · 0/0')
  const meta = await page.locator('#meta').innerText()
  assert.match(meta, /config loaded \d\d:\d\d:\d\d UTC · workers 2\/2 · updated \d\d:\d\d:\d\d UTC/)
  // A tab opened now shows the past: the control plane keeps five minutes of rates (two points are a line).
  const deadline = Date.now() + 15_000
  const pointsNow = async (): Promise<number> => ((await send(`${gateway.adminUrl}/admin/state`)).json().history as { points: Array<{ backends: Record<string, { requests: number }> }> }).points.filter((point) => (point.backends['web-pr-1']?.requests ?? 0) > 0).length
  while (await pointsNow() < 2 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 250))
  const fresh = await browser.newPage({ viewport: { width: 1280, height: 800 } })
  await fresh.goto(gateway.adminUrl + '/')
  await fresh.waitForSelector('tr[data-backend="web-pr-1"] .cell')
  // Read at the first render, before a second poll could draw anything of its own.
  assert.notEqual(await fresh.locator('tr[data-backend="web-pr-1"] polyline.req').getAttribute('points'), '', 'a fresh tab draws the last minutes at once')
  await fresh.close()

  appendFileSync(gateway.configPath, '\nbackends: { broken: 1 }\n')
  await send(`${gateway.adminUrl}/admin/reload`, { method: 'POST' })
  await page.locator('#reload-error').filter({ hasText: 'reload refused' }).waitFor({ timeout: 5000 })
  // One YAML error, located as file:line:column (issue 22), not the parser's list.
  assert.match(await page.locator('#reload-error').innerText(), /reload refused: \S+gateway\.yaml:\d+:1: Map keys must be unique \(the previous/)
  // A file that applies but changes a field bound at start: the page says what waits for a restart.
  writeFileSync(gateway.configPath, readFileSync(gateway.configPath, 'utf8').replace('\nbackends: { broken: 1 }\n', '\nworkers: 3\n'))
  assert.equal((await send(`${gateway.adminUrl}/admin/reload`, { method: 'POST' })).status, 200)
  await page.locator('#reload-error').filter({ hasText: 'restart needed' }).waitFor({ timeout: 5000 })
  assert.equal(await page.locator('#reload-error').innerText(), 'restart needed to apply workers (the running values stay until then)')
  await page.screenshot({ path: 'test-output/dashboard-environments.png', fullPage: true })
  }
})

test('HTTPS: Chromium loads a page through the HTTPS listener over HTTP/2, and the dashboard lists the certificate with its names and expiry', async (t) => {
  const dns = await ConsulLikeDnsServer.start(t)
  const upstream = await Upstream.start(t, 'page')
  dns.setService('_web._prod.service.consul', [{ address: '127.0.0.1', port: upstream.port }])
  const ca = TestCa.create(t)
  const issued = ca.issue(['www.example.com', '*.preview.example.com'])
  const httpsPort = await freePort()
  const gateway = await SpawnedGateway.start(t, `
listen: { https: "127.0.0.1:${httpsPort}", admin: "127.0.0.1:\${ADMIN_PORT}" }
tls: { certificates: [ { cert: ${issued.cert}, key: ${issued.key} } ], hsts: { maxAge: 1d } }
resolvers: { consul: { nameservers: ["${dns.address}"], ttl: { min: 250ms, max: 1s } } }
backends: { web-prod: { discovery: { resolver: consul, srv: _web._prod.service.consul } } }
frontends: [ { name: prod, match: { host: www.example.com }, backend: web-prod } ]
`)
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync',
      '--host-resolver-rules=MAP www.example.com 127.0.0.1']
  })
  t.after(async () => { await browser.close() })
  // The test CA is not in Chromium's store: the certificate itself is checked by the TLS tests.
  const context = await browser.newContext({ ignoreHTTPSErrors: true })
  const page = await context.newPage()
  const response = await page.goto(`https://www.example.com:${httpsPort}/page?from=chromium`)
  assert.equal(response?.status(), 200)
  const headers = await response?.allHeaders() ?? {}
  assert.match(headers['x-request-id'] ?? '', /\S+/)
  assert.equal(headers['strict-transport-security'], 'max-age=86400')
  const echoed = JSON.parse(await page.locator('body').innerText()) as { url: string, headers: Record<string, string> }
  assert.equal(echoed.url, '/page?from=chromium')
  assert.equal(echoed.headers['x-forwarded-proto'], 'https')
  const line = await gateway.waitForLog((entry) => entry.msg === 'request' && entry.path === '/page')
  assert.equal(line.httpVersion, '2.0', 'Chromium negotiated HTTP/2 by ALPN')

  const dashboard = await browser.newPage({ viewport: { width: 1280, height: 800 } })
  await dashboard.goto(`${gateway.adminUrl}/`)
  const row = dashboard.locator(`#certificates tr[data-serial="${issued.serial}"]`)
  await row.waitFor({ timeout: 5000 })
  const rowText = await row.innerText()
  assert.match(rowText, /www\.example\.com, \*\.preview\.example\.com/)
  assert.match(rowText, /\d{4}-\d\d-\d\d \((29|30) days\)/)
  await dashboard.screenshot({ path: 'test-output/dashboard-certificates.png', fullPage: true })
})

test('the dashboard shows which datacenter serves a failover chain, each split\'s members with whether they can take traffic, and the DNS face\'s names', async (t) => {
  const dns = await ConsulLikeDnsServer.start(t)
  const dc1 = await Upstream.start(t, 'dc1')
  const dc2 = await Upstream.start(t, 'dc2')
  const v1 = await Upstream.start(t, 'v1')
  dns.setService('_api.service.dc1.consul', [{ address: '127.0.0.1', port: dc1.port }])
  dns.setService('_api.service.dc2.consul', [{ address: '127.0.0.1', port: dc2.port }])
  dns.setService('_web._v1.service.consul', [{ address: '127.0.0.1', port: v1.port }])
  const gateway = await SpawnedGateway.start(t, `
listen: { http: "127.0.0.1:\${PORT}", admin: "127.0.0.1:\${ADMIN_PORT}" }
resolvers: { consul: { nameservers: ["${dns.address}"], ttl: { min: 250ms, max: 1s }, emptyGrace: 0s } }
backends:
  api: { discovery: { resolver: consul, srv: _api.service.dc1.consul }, failover: [ { resolver: consul, srv: _api.service.dc2.consul } ] }
  web-v1: { discovery: { resolver: consul, srv: _web._v1.service.consul } }
  web-v2: { discovery: { resolver: consul, srv: _web._v2.service.consul } }
  web-prod: { split: [ { backend: web-v2, weight: 10 }, { backend: web-v1, weight: 90 } ], stickyOn: "cookie:session" }
frontends:
  - { name: api, match: { host: api.example.com }, backend: api }
  - { name: www, match: {}, backend: web-prod }
dns:
  listen: ["127.0.0.1:${await freePort()}"]
  zone: srvgate.internal
  names: { api: { backend: api }, www: { gateway: true } }
`)
  const browser = await launch(t)
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } })
  await page.goto(gateway.adminUrl + '/')
  await page.waitForSelector('tr[data-backend="api"] .failover[data-serving="api"]')
  assert.match(await page.locator('tr[data-backend="api"] .failover').innerText(), /serving: own discovery/)
  assert.match(await page.locator('tr[data-split="web-prod"]').innerText(), /web-v2 · 10[\s\S]*web-v1 · 90[\s\S]*cookie:session/)
  assert.equal(await page.locator('tr[data-split="web-prod"] .pill.bad').innerText(), 'web-v2 · 10', 'web-v2 has no instance: marked')
  assert.equal(await page.locator('tr[data-face-name="api.srvgate.internal"] .addresses').innerText(), '127.0.0.1', 'the DNS face\'s names and what they answer now')
  assert.match(await page.locator('#dns-face-zone').innerText(), /srvgate\.internal on 127\.0\.0\.1:\d+ · TTL 5s/)
  dns.setService('_api.service.dc1.consul', [])
  await page.waitForSelector('tr[data-backend="api"] .failover[data-serving="api~failover-1"]', { timeout: 5000 })
  assert.match(await page.locator('tr[data-backend="api"] .failover').innerText(), /failover api~failover-1/)
  await page.screenshot({ path: 'test-output/dashboard-traffic.png', fullPage: true })
})
