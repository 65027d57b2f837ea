/**
 * tls.acme against a real ACME CA: Pebble (Debian's pebble), validating
 * http-01 on the gateway's plain listener and tls-alpn-01 on its HTTPS
 * listener, with 2 workers, through the CLI. Pebble refuses 5 % of good
 * nonces as bad (its default): nothing fails for it.
 */
import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { X509Certificate } from 'node:crypto'
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { connect as tlsConnect } from 'node:tls'
import { httpsConfig, httpsSetup, type HttpsSetup } from '../helpers/https.js'
import { send } from '../helpers/http.js'
import { Pebble } from '../helpers/pebble.js'
import { freePort } from '../helpers/dns-server.js'
import { SpawnedGateway } from '../helpers/spawn-gateway.js'
import { RedisServer } from '../helpers/redis-server.js'
import { AriDirectory, RateLimitingCa } from '../helpers/stub-acme.js'

type Ports = { readonly http: number, readonly https: number }

function acmeConfig (s: HttpsSetup, pebble: Pebble, storage: string, challenges: string[], names = ['www.example.com']): string {
  const tls = `tls:
  acme:
    directory: ${pebble.directory}
    directoryCa: ${pebble.directoryCa}
    email: ops@example.com
    agreeToTerms: true
    storage: { dir: ${storage} }
    names: [${names.join(', ')}]
    challenges: [${challenges.join(', ')}]`
  return httpsConfig(s, '', tls)
}

async function start (t: TestContext, config: string, ports: Ports): Promise<SpawnedGateway> {
  return await SpawnedGateway.start(t, config.replaceAll('${HTTPS_PORT}', String(ports.https)), { port: ports.http, workers: 2 })
}

/** A handshake with SNI `name`, verified against `ca`: the leaf served, or the error. */
async function served (port: number, name: string, ca: string, timeoutMs = 3000): Promise<{ serial: string, notAfterMs: number, names: string } | Error> {
  return await new Promise((resolve) => {
    const socket = tlsConnect({ host: '127.0.0.1', port, servername: name, ca, ALPNProtocols: ['http/1.1'] })
    socket.setTimeout(timeoutMs, () => { socket.destroy(new Error('timeout')) })
    socket.once('secureConnect', () => {
      const leaf = socket.getPeerX509Certificate() as X509Certificate
      resolve({ serial: leaf.serialNumber, notAfterMs: Date.parse(leaf.validTo), names: leaf.subjectAltName ?? '' })
      socket.destroy()
    })
    socket.once('error', (error) => { resolve(error) })
  })
}

async function until<T> (read: () => Promise<T>, done: (value: T) => boolean, withinMs: number, what: string): Promise<T> {
  const deadline = Date.now() + withinMs
  let value = await read()
  while (!done(value)) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${withinMs} ms (last: ${JSON.stringify(value instanceof Error ? value.message : value)})`)
    await new Promise((resolve) => setTimeout(resolve, 200))
    value = await read()
  }
  return value
}

async function setup (t: TestContext, options: { validitySeconds?: number, eab?: Record<string, string> } = {}): Promise<{ s: HttpsSetup, pebble: Pebble, ports: Ports, storage: string }> {
  const s = await httpsSetup(t)
  const ports = { http: await freePort(), https: await freePort() }
  const pebble = await Pebble.start(t, { httpPort: ports.http, tlsPort: ports.https, ...options })
  const storage = mkdtempSync(join(tmpdir(), 'srvgate-acme-'))
  t.after(() => { rmSync(storage, { recursive: true, force: true }) })
  return { s, pebble, ports, storage }
}

for (const challenge of ['http-01', 'tls-alpn-01']) {
  test(`tls.acme with ${challenge} alone and 2 workers: the name of tls.acme.names is served with Pebble's full chain, every worker serves it, state and metrics tell it`, async (t) => {
    const { s, pebble, ports, storage } = await setup(t)
    const gateway = await start(t, acmeConfig(s, pebble, storage, [challenge]), ports)
    const root = await pebble.root()
    // Before the order ends the name has no certificate: the handshake is refused, nothing else served.
    const leaf = await until(async () => await served(ports.https, 'www.example.com', root), (value) => !(value instanceof Error), 30_000, 'a certificate for www.example.com')
    assert.ok(!(leaf instanceof Error))
    assert.match(leaf.names, /DNS:www\.example\.com/)
    // Both workers serve it (new connections spread over them), and requests go through it.
    for (let index = 0; index < 6; index++) {
      const again = await served(ports.https, 'www.example.com', root)
      assert.ok(!(again instanceof Error), String(again))
      assert.equal(again.serial, leaf.serial)
    }
    const state = (await send(`${gateway.adminUrl}/admin/state`)).json() as { certificates: Array<{ source: string, names: string[], notAfter?: string, nextRenewal?: string, lastError?: string }> }
    const acme = state.certificates.find((certificate) => certificate.source === 'acme')
    assert.deepEqual(acme?.names, ['www.example.com'])
    assert.equal(Date.parse(acme?.notAfter ?? ''), leaf.notAfterMs)
    assert.ok(Date.parse(acme?.nextRenewal ?? '') > Date.now(), 'the next renewal is ahead')
    assert.equal(acme?.lastError, undefined)
    const metrics = (await send(`${gateway.adminUrl}/metrics`)).body
    assert.match(metrics, /^srvgate_acme_orders_total\{result="issued"\} 1$/m)
    assert.match(metrics, new RegExp(`^srvgate_certificate_expiry_timestamp_seconds\\{name="www.example.com",source="acme"\\} ${leaf.notAfterMs / 1000}$`, 'm'))
    // Kept: the key private to the gateway's user.
    const folder = join(storage, readdirSync(storage)[0] as string)
    assert.equal(statSync(join(folder, 'certificates', 'www.example.com', 'key.pem')).mode & 0o777, 0o600)
    assert.equal(statSync(join(folder, 'account.key')).mode & 0o777, 0o600)
    // A name no certificate carries is still refused.
    assert.ok(await served(ports.https, 'other.example.com', root) instanceof Error)
  })
}

test('tls.acme: a restart with the CA stopped serves the certificate from storage at once, and orders nothing', async (t) => {
  const { s, pebble, ports, storage } = await setup(t)
  const config = acmeConfig(s, pebble, storage, ['http-01', 'tls-alpn-01'])
  const first = await start(t, config, ports)
  const root = await pebble.root()
  const leaf = await until(async () => await served(ports.https, 'www.example.com', root), (value) => !(value instanceof Error), 30_000, 'a certificate for www.example.com')
  assert.ok(!(leaf instanceof Error))
  assert.equal(await first.stop(), 0)
  pebble.stop()
  const second = await start(t, config, ports)
  const again = await served(ports.https, 'www.example.com', root)
  assert.ok(!(again instanceof Error), String(again))
  assert.equal(again.serial, leaf.serial)
  // Not due for renewal: the CA is not asked (it would fail, and say so).
  await new Promise((resolve) => setTimeout(resolve, 500))
  assert.doesNotMatch((await send(`${second.adminUrl}/metrics`)).body, /^srvgate_acme_orders_total\{/m)
  assert.equal(second.logs.filter((line) => /^acme: /.test(String(line.msg))).length, 0)
})

test('tls.acme: a short certificate (Pebble\'s validity 15 s) is renewed at two thirds of its life; the new one is served, the old one until then', async (t) => {
  const { s, pebble, ports, storage } = await setup(t, { validitySeconds: 15 })
  const gateway = await start(t, acmeConfig(s, pebble, storage, ['tls-alpn-01']), ports)
  const root = await pebble.root()
  const first = await until(async () => await served(ports.https, 'www.example.com', root), (value) => !(value instanceof Error), 30_000, 'a certificate for www.example.com')
  assert.ok(!(first instanceof Error))
  const renewed = await until(async () => await served(ports.https, 'www.example.com', root), (value) => !(value instanceof Error) && value.serial !== first.serial, 20_000, 'a renewed certificate')
  assert.ok(!(renewed instanceof Error))
  assert.ok(renewed.notAfterMs > first.notAfterMs)
  assert.equal(gateway.logs.filter((line) => line.msg === 'acme: certificate obtained').length >= 2, true)
})

test('tls.acme.eab: a CA that requires external account binding registers the account with the configured kid and key; a wrong key is refused, said once, and nothing is served', async (t) => {
  const hmacKey = Buffer.alloc(32, 7).toString('base64url')
  const { s, pebble, ports, storage } = await setup(t, { eab: { 'kid-srvgate': hmacKey } })
  const withEab = (key: string): string => acmeConfig(s, pebble, storage, ['tls-alpn-01']).replace('    agreeToTerms: true', `    agreeToTerms: true\n    eab: { kid: kid-srvgate, hmacKey: "${key}" }`)
  const gateway = await start(t, withEab(hmacKey), ports)
  const root = await pebble.root()
  const leaf = await until(async () => await served(ports.https, 'www.example.com', root), (value) => !(value instanceof Error), 30_000, 'a certificate for www.example.com')
  assert.ok(!(leaf instanceof Error))
  assert.equal(await gateway.stop(), 0)
  // A wrong key (in a fresh storage: no account yet): the CA refuses the account, the order fails.
  const other = mkdtempSync(join(tmpdir(), 'srvgate-acme-'))
  t.after(() => { rmSync(other, { recursive: true, force: true }) })
  const wrong = withEab(Buffer.alloc(32, 9).toString('base64url')).replace(`storage: { dir: ${storage} }`, `storage: { dir: ${other} }`)
  const refused = await start(t, wrong, { http: await freePort(), https: await freePort() })
  const state = await until(async () => (await send(`${refused.adminUrl}/admin/state`)).json() as { certificates: Array<{ source: string, lastError?: string }> }, (value) => value.certificates.some((certificate) => certificate.lastError !== undefined), 20_000, 'the order failed')
  assert.match(state.certificates.find((certificate) => certificate.source === 'acme')?.lastError ?? '', /binding|MAC|signature|verif/i)
  assert.equal(refused.logs.filter((line) => line.msg === 'acme: order failed; retrying').length, 1)
})

test('tls.acme with a CA that offers ARI (RFC 9773): the certificate is renewed at a moment in the window the CA suggests, years before renewBefore; /admin/state shows the window', async (t) => {
  const { s, pebble, ports, storage } = await setup(t)
  const ari = await AriDirectory.start(pebble.directory, pebble.directoryCa)
  t.after(async () => { await ari.stop() })
  // Until the first certificate is held, the CA suggests nothing (404).
  const gateway = await start(t, acmeConfig(s, pebble, storage, ['tls-alpn-01']).replace(`directory: ${pebble.directory}`, `directory: ${ari.directoryUrl}`), ports)
  const root = await pebble.root()
  const first = await until(async () => await served(ports.https, 'www.example.com', root), (value) => !(value instanceof Error), 30_000, 'a certificate for www.example.com')
  assert.ok(!(first instanceof Error))
  // The ID asked for is RFC 9773's: base64url(AKI keyIdentifier) "." base64url(serial).
  await until(async () => ari.asked.length, (count) => count >= 1, 10_000, 'renewalInfo asked')
  const [aki, serial] = (ari.asked[0] as string).split('.')
  assert.match(aki ?? '', /^[A-Za-z0-9_-]{20,}$/)
  const serialHex = Buffer.from(serial ?? '', 'base64url').toString('hex').replace(/^00/, '')
  assert.equal(serialHex.toUpperCase(), first.serial.toUpperCase().replace(/^0+/, '').padStart(serialHex.length, '0'))
  assert.equal(gateway.logs.filter((line) => line.msg === 'acme: certificate obtained').length, 1)
  // The CA now says: renew within the next 2 to 3 seconds (Pebble's certificate runs for years).
  const window = { start: new Date(Date.now() + 2000), end: new Date(Date.now() + 3000) }
  ari.windows.set(ari.asked[0] as string, window)
  // A CA that answers that same window for any certificate: the renewed one is not renewed again for it (no loop of orders).
  ari.otherwise = window
  // The gateway asks again at the CA's Retry-After (60 s); a restart asks at once.
  assert.equal(await gateway.stop(), 0)
  const again = await start(t, acmeConfig(s, pebble, storage, ['tls-alpn-01']).replace(`directory: ${pebble.directory}`, `directory: ${ari.directoryUrl}`), ports)
  const state = await until(async () => (await send(`${again.adminUrl}/admin/state`)).json() as { certificates: Array<{ source: string, renewalWindow?: { start: string, end: string }, nextRenewal?: string }> }, (value) => value.certificates.some((entry) => entry.renewalWindow !== undefined), 10_000, 'the window in /admin/state')
  const entry = state.certificates.find((certificate) => certificate.source === 'acme')
  assert.equal(entry?.renewalWindow?.start, window.start.toISOString())
  const renewAt = Date.parse(entry?.nextRenewal ?? '')
  assert.ok(renewAt >= window.start.getTime() - 1000 && renewAt <= window.end.getTime() + 1000, `next renewal ${entry?.nextRenewal} in the window`)
  const renewed = await until(async () => await served(ports.https, 'www.example.com', root), (value) => !(value instanceof Error) && value.serial !== first.serial, 30_000, 'a renewed certificate')
  assert.ok(!(renewed instanceof Error))
  assert.ok(again.logs.some((line) => line.msg === 'acme: the CA\'s renewal window (ARI)'))
  await again.waitForLog((line) => line.msg === 'acme: the CA\'s renewal window (ARI) is not about this certificate (it ended before it began, or the last renewal followed it); renewBefore stays in charge')
  await new Promise((resolve) => setTimeout(resolve, 2000))
  assert.equal(again.logs.filter((line) => line.msg === 'acme: certificate obtained').length, 1, 'one renewal, not a loop')
})

function onDemandConfig (s: HttpsSetup, pebble: Pebble, storage: string, perMinute: number): string {
  const tls = `tls:
  acme:
    directory: ${pebble.directory}
    directoryCa: ${pebble.directoryCa}
    agreeToTerms: true
    storage: { dir: ${storage} }
    onDemand: { frontends: [preview], perMinute: ${perMinute} }`
  return httpsConfig(s, '', tls)
}

async function metricValue (gateway: SpawnedGateway, series: string): Promise<number> {
  const line = (await send(`${gateway.adminUrl}/metrics`)).body.split('\n').find((candidate) => candidate.startsWith(`${series} `))
  return line === undefined ? 0 : Number(line.split(' ')[1])
}

test('tls.acme.onDemand: an environment with an instance gets its certificate at its first handshake; one with none, or outside env.pattern, gets unrecognized_name and causes no order', async (t) => {
  const { s, pebble, ports, storage } = await setup(t)
  const gateway = await start(t, onDemandConfig(s, pebble, storage, 10), ports)
  const root = await pebble.root()
  // pr-1 has an instance in DNS: the handshake is held while the order runs, then served.
  const leaf = await served(ports.https, 'pr-1.preview.example.com', root, 25_000)
  assert.ok(!(leaf instanceof Error), String(leaf))
  assert.match(leaf.names, /DNS:pr-1\.preview\.example\.com/)
  const answer = await new Promise<number>((resolve, reject) => {
    const socket = tlsConnect({ host: '127.0.0.1', port: ports.https, servername: 'pr-1.preview.example.com', ca: root, ALPNProtocols: ['http/1.1'] }, () => {
      socket.write('GET / HTTP/1.1\r\nHost: pr-1.preview.example.com\r\nConnection: close\r\n\r\n')
    })
    let text = ''
    socket.on('data', (chunk: Buffer) => { text += chunk.toString() })
    socket.on('end', () => { resolve(Number(/^HTTP\/1\.1 (\d+)/.exec(text)?.[1] ?? 0)) })
    socket.on('error', reject)
  })
  assert.equal(answer, 200)
  // pr-2 has no instance (no SRV records), staging fails env.pattern, www has no frontend on demand.
  for (const name of ['pr-2.preview.example.com', 'staging.preview.example.com', 'www.example.com', 'pr-2.preview.example.com']) {
    const refused = await served(ports.https, name, root)
    assert.ok(refused instanceof Error, name)
    assert.match(refused.message, /unrecognized name/i, name)
  }
  assert.equal(await metricValue(gateway, 'srvgate_acme_orders_total{result="issued"}'), 1)
  assert.equal(await metricValue(gateway, 'srvgate_acme_orders_total{result="failed"}'), 0)
  // Both pr-2 handshakes are refused (the second from the negative cache, without asking DNS again).
  assert.equal(await metricValue(gateway, 'srvgate_acme_on_demand_refusals_total{reason="no-instance"}'), 2)
  assert.equal(await metricValue(gateway, 'srvgate_acme_on_demand_refusals_total{reason="env-pattern"}'), 1)
  assert.equal(await metricValue(gateway, 'srvgate_acme_on_demand_refusals_total{reason="no-frontend"}'), 1)
  const state = (await send(`${gateway.adminUrl}/admin/state`)).json() as { certificates: Array<{ source: string, names: string[], onDemand?: boolean }> }
  assert.deepEqual(state.certificates.filter((certificate) => certificate.source === 'acme').map((certificate) => [certificate.names, certificate.onDemand]), [[['pr-1.preview.example.com'], true]])
})

test('tls.acme.onDemand: a burst of 50 distinct environments that exist orders no more than perMinute certificates', async (t) => {
  const { s, pebble, ports, storage } = await setup(t)
  const envs = Array.from({ length: 50 }, (_, index) => `pr-${100 + index}`)
  for (const env of envs) s.dns.setService(`_web._${env}.service.consul`, [{ address: '127.0.0.1', port: (s.upstreams[0] as { port: number }).port }])
  const gateway = await start(t, onDemandConfig(s, pebble, storage, 4), ports)
  const root = await pebble.root()
  const results = await Promise.all(envs.map(async (env) => await served(ports.https, `${env}.preview.example.com`, root, 25_000)))
  const servedCount = results.filter((result) => !(result instanceof Error)).length
  const orders = await metricValue(gateway, 'srvgate_acme_orders_total{result="issued"}') + await metricValue(gateway, 'srvgate_acme_orders_total{result="failed"}')
  assert.ok(orders <= 4, `${orders} orders`)
  assert.ok(servedCount >= 1 && servedCount <= 4, `${servedCount} served`)
  assert.ok(await metricValue(gateway, 'srvgate_acme_on_demand_refusals_total{reason="rate"}') >= 40)
})

test('tls.acme.storage.redis: two gateways sharing one Redis order each name once and both serve it (the CA validates at one of them, whichever ordered); Redis stopped mid-run costs no handshake', async (t) => {
  const { s, pebble, ports } = await setup(t)
  const redis = await RedisServer.start(t)
  const names = ['www.example.com', 'api.example.com', 'shop.example.com']
  const config = (storageRedis: string): string => acmeConfig(s, pebble, '', ['http-01', 'tls-alpn-01'], names).replace(/storage: \{ dir: [^}]*\}/, `storage: { redis: { url: "${storageRedis}", prefix: "test:" } }`)
  // Pebble validates on gateway A's ports; B's challenges reach A, which finds them in Redis.
  const a = await start(t, config(redis.url), ports)
  const portsB = { http: await freePort(), https: await freePort() }
  const b = await start(t, config(redis.url), portsB)
  const root = await pebble.root()
  for (const name of names) {
    for (const port of [ports.https, portsB.https]) {
      const leaf = await until(async () => await served(port, name, root), (value) => !(value instanceof Error), 40_000, `${name} on ${port}`)
      assert.ok(!(leaf instanceof Error))
    }
    // The same certificate on both: one order.
    const [fromA, fromB] = await Promise.all([served(ports.https, name, root), served(portsB.https, name, root)])
    assert.ok(!(fromA instanceof Error) && !(fromB instanceof Error))
    assert.equal(fromA.serial, fromB.serial, name)
  }
  const issued = await metricValue(a, 'srvgate_acme_orders_total{result="issued"}') + await metricValue(b, 'srvgate_acme_orders_total{result="issued"}')
  assert.equal(issued, names.length, 'each name ordered once across the two replicas')
  // Redis goes away: every handshake is still served, by both, from memory.
  redis.stop()
  await until(async () => await metricValue(a, 'srvgate_acme_storage_up'), (value) => value === 0, 5000, 'A sees Redis down')
  for (let round = 0; round < 5; round++) {
    for (const port of [ports.https, portsB.https]) {
      for (const name of names) assert.ok(!(await served(port, name, root) instanceof Error), `${name} on ${port} with Redis down`)
    }
  }
  assert.ok(a.logs.some((line) => line.msg === 'acme: storage unreachable (redis); certificates in hand keep serving, new orders wait'))
  await redis.restart()
  await until(async () => await metricValue(a, 'srvgate_acme_storage_up'), (value) => value === 1, 10_000, 'A sees Redis back')
})

test('tls.acme: a CA that cannot be reached is said in words an operator can act on (state, log), once; an on-demand name whose order fails is not ordered again at every handshake', async (t) => {
  const s = await httpsSetup(t)
  // Pebble validates http-01 at a port where nothing listens: every order fails at validation.
  const ports = { http: await freePort(), https: await freePort() }
  const pebble = await Pebble.start(t, { httpPort: await freePort(), tlsPort: await freePort() })
  const storage = mkdtempSync(join(tmpdir(), 'srvgate-acme-'))
  t.after(() => { rmSync(storage, { recursive: true, force: true }) })
  const tls = `tls:
  acme:
    directory: ${pebble.directory}
    directoryCa: ${pebble.directoryCa}
    agreeToTerms: true
    storage: { dir: ${storage} }
    challenges: [http-01]
    onDemand: { frontends: [preview], perMinute: 20 }`
  const gateway = await start(t, httpsConfig(s, '', tls), ports)
  const root = await pebble.root()
  for (let index = 0; index < 5; index++) assert.ok(await served(ports.https, 'pr-1.preview.example.com', root, 25_000) instanceof Error)
  assert.equal(await metricValue(gateway, 'srvgate_acme_orders_total{result="failed"}'), 1, 'one order, then the retry delay')
  assert.ok(await metricValue(gateway, 'srvgate_acme_on_demand_refusals_total{reason="backoff"}') >= 4)
  // The CA stopped: a name at start cannot be ordered; the reason is the connection, not a library's TypeError.
  pebble.stop()
  const config = httpsConfig(s, '', tls.replace('onDemand: { frontends: [preview], perMinute: 20 }', 'names: [www.example.com]'))
  const second = await start(t, config, { http: await freePort(), https: await freePort() })
  const state = await until(async () => (await send(`${second.adminUrl}/admin/state`)).json() as { certificates: Array<{ source: string, lastError?: string }> }, (value) => value.certificates.some((certificate) => certificate.lastError !== undefined), 40_000, 'an order failed')
  assert.match(state.certificates.find((certificate) => certificate.source === 'acme')?.lastError ?? '', /cannot reach the ACME directory https:\/\/localhost:\d+\/dir: ECONNREFUSED/)
  assert.equal(second.logs.filter((line) => line.msg === 'acme: order failed; retrying').length, 1)
})

test('tls.acme: a CA that rate-limits (429 rateLimited, Retry-After: 1 h) is asked nothing more before then; the name says when it is tried next, and why', async (t) => {
  const s = await httpsSetup(t)
  const ca = await RateLimitingCa.start()
  t.after(async () => { await ca.stop() })
  const storage = mkdtempSync(join(tmpdir(), 'srvgate-acme-'))
  t.after(() => { rmSync(storage, { recursive: true, force: true }) })
  const tls = `tls:
  acme:
    directory: ${ca.directoryUrl}
    agreeToTerms: true
    storage: { dir: ${storage} }
    names: [www.example.com]
    challenges: [http-01]`
  const gateway = await start(t, httpsConfig(s, '', tls), { http: await freePort(), https: await freePort() })
  type Entry = { source: string, lastError?: string, nextRenewal?: string }
  const state = await until(async () => (await send(`${gateway.adminUrl}/admin/state`)).json() as { certificates: Entry[] }, (value) => value.certificates.some((entry) => entry.lastError !== undefined), 20_000, 'the order failed')
  const entry = state.certificates.find((certificate) => certificate.source === 'acme') as Entry
  assert.match(entry.lastError ?? '', /too many new registrations/)
  const nextInMs = Date.parse(entry.nextRenewal ?? '') - Date.now()
  assert.ok(nextInMs > 3_500_000 && nextInMs <= 3_600_000, `next order in ${nextInMs} ms, not the usual first retry (1 min)`)
  const failed = gateway.logs.find((line) => line.msg === 'acme: order failed; retrying')
  assert.equal((failed?.err as { code?: string } | undefined)?.code, 'SG_ERR_ACME_RATE_LIMITED')
  assert.equal(failed?.retryAfterS, 3600)
  assert.equal(await metricValue(gateway, 'srvgate_acme_orders_total{result="failed"}'), 1)
  // Nothing more reaches the CA while it asked to wait.
  await new Promise((resolve) => setTimeout(resolve, 1500))
  assert.deepEqual(ca.signedRequests, ['POST /account'])
})
