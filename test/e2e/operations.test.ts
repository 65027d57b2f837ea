/** Operating srvgate through its CLI: admin API, metrics, reload, drain, state file. */
import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, readFileSync, writeFileSync, existsSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ConsulLikeDnsServer, freePort } from '../helpers/dns-server.js'
import { Upstream } from '../helpers/upstream.js'
import { SpawnedGateway } from '../helpers/spawn-gateway.js'
import { load, send } from '../helpers/http.js'

const WEB = '_web._prod.service.consul'
/** The reload, drain and state-file stories hold with one process and with a primary and two workers (issue 9). */
const WORKER_COUNTS = [1, 2]
const sleep = async (ms: number) => { await new Promise((resolve) => setTimeout(resolve, ms)) }

function configText (dns: ConsulLikeDnsServer, extra = '', frontends = ''): string {
  return `
listen: { http: "127.0.0.1:\${PORT}", admin: "127.0.0.1:\${ADMIN_PORT}" }
resolvers: { consul: { nameservers: ["${dns.address}"], ttl: { min: 250ms, max: 1s }, timeout: 300ms, attempts: 1 } }
backends:
  web-prod: { discovery: { resolver: consul, srv: ${WEB} }, balance: round-robin, outlier: { consecutiveFailures: 2, ejectFor: 30s } }
frontends:
  - { name: prod, match: { host: www.example.com }, backend: web-prod }
${frontends}
${extra}`
}

async function setup (t: TestContext, extra = '', workers?: number) {
  const dns = await ConsulLikeDnsServer.start(t)
  const upstreams = await Promise.all(['a', 'b'].map(async (name) => await Upstream.start(t, name)))
  dns.setService(WEB, upstreams.map((upstream) => ({ address: '127.0.0.1', port: upstream.port })))
  const gateway = await SpawnedGateway.start(t, configText(dns, extra), { workers })
  return { dns, upstreams, gateway, get: async () => await send(`${gateway.url}/`, { host: 'www.example.com' }) }
}

test('admin: healthz, readyz, metrics and state', async (t) => {
  const { gateway, upstreams, get } = await setup(t)
  assert.equal((await send(`${gateway.adminUrl}/healthz`)).status, 200)
  assert.equal((await send(`${gateway.adminUrl}/readyz`)).status, 200)
  ;(upstreams[0] as Upstream).behaviour = (_request, response) => { response.statusCode = 500; response.end('{}'); return true }
  let answered5xx = 0
  for (let round = 0; round < 6; round++) if ((await get()).status >= 500) answered5xx++
  await send(`${gateway.url}/`, { host: 'nowhere.example.org' })
  // Two failures eject the instance; with several workers (the default here) the ejection
  // applies one IPC round trip later, so a request routed meanwhile may still reach it.
  // Whatever the count, the metrics must say exactly what the client saw.
  assert.ok(answered5xx >= 2 && answered5xx <= 4, `5xx answers: ${answered5xx}`)

  const metrics = (await send(`${gateway.adminUrl}/metrics`)).body
  assert.match(metrics, new RegExp(`srvgate_http_requests_total\\{frontend="prod",backend="web-prod",status_class="2xx",code="200"\\} ${6 - answered5xx}\n`))
  assert.match(metrics, new RegExp(`srvgate_http_requests_total\\{frontend="prod",backend="web-prod",status_class="5xx",code="500"\\} ${answered5xx}\n`))
  // A request with no route is labelled, not left with empty labels.
  assert.match(metrics, /srvgate_http_requests_total\{frontend="\(none\)",backend="\(none\)",status_class="4xx",code="404"\} 1/)
  assert.doesNotMatch(metrics, /frontend=""/)
  // Prometheus conventions: standard process/nodejs names, no doubled prefix, no _total on a gauge.
  assert.match(metrics, /^process_cpu_seconds_total \d/m)
  assert.match(metrics, /^nodejs_eventloop_lag_seconds \d/m)
  assert.doesNotMatch(metrics, /srvgate_process_/)
  const gauges = [...metrics.matchAll(/^# TYPE (\S+) gauge$/gm)].map((match) => match[1] as string)
  assert.ok(gauges.length > 5)
  assert.deepEqual(gauges.filter((name) => name.endsWith('_total')), [])
  assert.match(metrics, /^srvgate_build_info\{version="\d+\.\d+\.\d+",nodejs_version="v\d+[^"]*"\} 1$/m)
  assert.match(metrics, /^srvgate_config_last_reload_successful 1$/m)
  assert.match(metrics, /^srvgate_config_last_reload_success_timestamp_seconds \d{10}/m)
  assert.match(metrics, /^srvgate_http_requests_in_flight 0$/m)
  assert.match(metrics, /^srvgate_http_request_duration_seconds_bucket\{le="0\.1",frontend="prod",backend="web-prod",status_class="2xx"\} \d+$/m)
  assert.match(metrics, /^srvgate_http_request_duration_seconds_count\{frontend="\(none\)",backend="\(none\)",status_class="4xx"\} 1$/m)
  assert.match(metrics, /srvgate_upstream_latency_seconds_bucket\{le="[\d.]+",backend="web-prod",outcome="success"\}/)
  assert.match(metrics, /srvgate_outlier_ejections_total\{backend="web-prod"\} 1/)
  assert.match(metrics, /srvgate_backend_instances\{backend="web-prod",state="ejected"\} 1/)
  assert.match(metrics, /srvgate_backend_instances\{backend="web-prod",state="up"\} 1/)
  assert.match(metrics, /srvgate_dns_queries_total\{nameserver="127\.0\.0\.1:\d+",transport="udp",outcome="noerror"\} \d+/)
  assert.match(metrics, /srvgate_dns_cache_reads_total\{result="(hit|miss)"\} \d+/)

  const state = (await send(`${gateway.adminUrl}/admin/state`)).json() as { isReady: boolean, frontends: Array<{ name: string }>, backends: Array<{ name: string, status: string, instances: Array<{ key: string, state: string, reason?: string, inFlight: number, priority: number, weight: number }> }>, resolverCache: Array<{ key: string, ttlReceivedSeconds: number, ttlClampedMs: number, ageMs: number, isStale: boolean }> }
  assert.equal(state.isReady, true)
  assert.deepEqual(state.frontends.map((frontend) => frontend.name), ['prod'])
  const backend = state.backends.find((entry) => entry.name === 'web-prod')
  assert.equal(backend?.status, 'answer')
  const ejected = backend?.instances.find((instance) => instance.key === `127.0.0.1:${(upstreams[0] as Upstream).port}`)
  assert.equal(ejected?.state, 'ejected')
  assert.match(String(ejected?.reason), /^ejected until \d{4}-\d\d-\d\dT.* after 1 ejection\(s\) in a row$/)
  assert.equal(typeof ejected?.inFlight, 'number')
  const entry = state.resolverCache.find((cached) => cached.key === `SRV ${WEB}`)
  assert.equal(entry?.ttlReceivedSeconds, 0)
  assert.equal(entry?.ttlClampedMs, 250)
  assert.equal(entry?.isStale, false)
})

test('admin token (the probes and the dashboard\'s icon open without it) and the warning for an open admin listener', async (t) => {
  const dns = await ConsulLikeDnsServer.start(t)
  const guarded = await SpawnedGateway.start(t, configText(dns, 'admin: { token: "${TOKEN}" }'), { env: { TOKEN: 's3cret-token' } })
  assert.equal((await send(`${guarded.adminUrl}/healthz`)).status, 200)
  assert.equal((await send(`${guarded.adminUrl}/readyz`)).status, 200)
  assert.equal((await send(`${guarded.adminUrl}/metrics`)).status, 401)
  assert.equal((await send(`${guarded.adminUrl}/admin/state`, { headers: { authorization: 'Bearer wrong' } })).status, 401)
  assert.equal((await send(`${guarded.adminUrl}/admin/state`, { headers: { authorization: 'Bearer s3cret-token' } })).status, 200)
  const dashboard = await send(`${guarded.adminUrl}/?token=s3cret-token`)
  assert.equal(dashboard.status, 200)
  // Opened with its token in the URL: no Referer carries it on, no cache keeps it, and the page takes it out of the address bar.
  assert.deepEqual([dashboard.headers['referrer-policy'], dashboard.headers['cache-control']], ['no-referrer', 'no-store'])
  assert.match(dashboard.body, /history\.replaceState\(null, '', location\.pathname\)/)
  // The dashboard's icon: served (not a 404), and without the token a browser does not send for it.
  const icon = await send(`${guarded.adminUrl}/favicon.ico`)
  assert.deepEqual([icon.status, icon.headers['content-type']], [200, 'image/svg+xml'])
  assert.match(icon.body, /^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg"[^]*<\/svg>$/)
  assert.equal(guarded.logs.some((line) => String(line.msg).includes('no token')), false)

  const open = await SpawnedGateway.start(t, configText(dns).replace('admin: "127.0.0.1:${ADMIN_PORT}"', 'admin: "0.0.0.0:${ADMIN_PORT}"'))
  await open.waitForLog((line) => /admin listener \(.*\) is reachable beyond loopback and has no token/.test(String(line.msg)))
})

for (const workers of WORKER_COUNTS) test(`SIGHUP with a broken file keeps serving under load; a good file is swapped in (workers: ${workers})`, async (t) => {
  const { dns, gateway, get } = await setup(t, '', workers)
  const original = readFileSync(gateway.configPath, 'utf8')
  let isDone = false
  const running = load(get, { concurrency: 4, until: () => isDone, maxRequests: 50_000 })
  await sleep(300)
  writeFileSync(gateway.configPath, original.replace('balance: round-robin', 'balance: fastest').replace('ttl: { min: 250ms', 'ttl: { min: nope'))
  gateway.process.kill('SIGHUP')
  const failed = await gateway.waitForLog((line) => line.msg === 'reload failed; the previous configuration stays in use')
  assert.deepEqual(failed.errors, [
    'resolvers.consul.ttl.min: must be a duration such as 250ms, 1s or 5m (line 3)',
    'backends.web-prod.balance: must be one of: weighted, round-robin, least-request, random, hash (line 5)'
  ])
  const viaAdmin = await send(`${gateway.adminUrl}/admin/reload`, { method: 'POST' })
  assert.equal(viaAdmin.status, 422)
  await sleep(300)
  isDone = true
  const result = await running
  assert.deepEqual(result.failures, [], 'no request failed during the broken reload')
  const metrics = (await send(`${gateway.adminUrl}/metrics`)).body
  assert.match(metrics, /srvgate_config_reloads_total\{result="error"\} 2/)
  const state = (await send(`${gateway.adminUrl}/admin/state`)).json() as { lastReload: { result: string } }
  assert.equal(state.lastReload.result, 'error')

  // A good file: a new frontend appears, with its own backend, in one step.
  const canary = await Upstream.start(t, 'canary')
  dns.setService('_web._canary.service.consul', [{ address: '127.0.0.1', port: canary.port }])
  writeFileSync(gateway.configPath, original
    .replace('frontends:', 'frontends:\n  - { name: canary, match: { host: canary.example.com }, backend: web-canary }')
    .replace('backends:', `backends:\n  web-canary: { discovery: { resolver: consul, srv: _web._canary.service.consul } }`))
  assert.equal((await send(`${gateway.url}/`, { host: 'canary.example.com' })).status, 404)
  const applied = await send(`${gateway.adminUrl}/admin/reload`, { method: 'POST' })
  assert.equal(applied.status, 200, applied.body)
  const routed = await send(`${gateway.url}/`, { host: 'canary.example.com' })
  assert.equal(routed.status, 200)
  assert.equal(routed.json().instance, 'canary')
})

for (const workers of WORKER_COUNTS) test(`a reload never cuts an in-flight request (workers: ${workers})`, async (t) => {
  const { upstreams, gateway } = await setup(t, '', workers)
  for (const upstream of upstreams) upstream.behaviour = (request, response) => {
    if (request.url !== '/slow') return false
    setTimeout(() => { response.end(JSON.stringify({ instance: upstream.name })) }, 1500)
    return true
  }
  const slow = send(`${gateway.url}/slow`, { host: 'www.example.com' })
  await sleep(200)
  writeFileSync(gateway.configPath, readFileSync(gateway.configPath, 'utf8').replace('balance: round-robin', 'balance: least-request'))
  const applied = await send(`${gateway.adminUrl}/admin/reload`, { method: 'POST' })
  assert.equal(applied.status, 200)
  const response = await slow
  assert.equal(response.status, 200)
})

for (const workers of WORKER_COUNTS) test(`SIGTERM under load: readyz turns 503, in-flight requests finish, nothing dropped, exit 0 (workers: ${workers})`, async (t) => {
  const { gateway, upstreams } = await setup(t, 'drain: { delay: 1s, timeout: 10s }', workers)
  for (const upstream of upstreams) upstream.behaviour = (_request, response) => {
    setTimeout(() => { response.end(JSON.stringify({ instance: upstream.name })) }, 50)
    return true
  }
  // The load generator behaves like a load balancer: it stops sending once readyz says 503.
  let sawNotReady = false
  const poller = setInterval(() => {
    send(`${gateway.adminUrl}/readyz`).then((response) => { if (response.status === 503) sawNotReady = true }, () => {})
  }, 50)
  t.after(() => clearInterval(poller))
  const running = load(async () => await send(`${gateway.url}/`, { host: 'www.example.com' }), { concurrency: 8, until: () => sawNotReady, maxRequests: 50_000 })
  await sleep(500)
  gateway.process.kill('SIGTERM')
  const result = await running
  const code = await new Promise<number | null>((resolve) => {
    if (gateway.process.exitCode !== null) resolve(gateway.process.exitCode)
    else gateway.process.once('exit', resolve)
  })
  assert.equal(sawNotReady, true)
  assert.deepEqual(result.failures, [], `${result.failures.length} of ${result.total} failed`)
  assert.equal(code, 0)
  await gateway.waitForLog((line) => line.msg === 'drained')
})

for (const workers of WORKER_COUNTS) test(`restarted while DNS is down, the gateway serves the state file's sets, marked stale (workers: ${workers})`, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'srvgate-state-'))
  const statePath = join(dir, 'state', 'state.json')
  const dns = await ConsulLikeDnsServer.start(t)
  const upstream = await Upstream.start(t, 'remembered')
  dns.setService(WEB, [{ address: '127.0.0.1', port: upstream.port }])
  const first = await SpawnedGateway.start(t, configText(dns, `statePath: ${statePath}`), { workers })
  assert.equal((await send(`${first.url}/`, { host: 'www.example.com' })).status, 200)
  await first.stop()
  assert.ok(existsSync(statePath), 'the state file was written')
  const saved = JSON.parse(readFileSync(statePath, 'utf8')) as { sets: Array<{ lookup: { name: string }, instances: Array<{ port: number }> }> }
  assert.equal(saved.sets[0]?.lookup.name, WEB)
  assert.equal(saved.sets[0]?.instances[0]?.port, upstream.port)

  await dns.stop()
  const second = await SpawnedGateway.start(t, configText(dns, `statePath: ${statePath}`), { workers })
  const response = await send(`${second.url}/`, { host: 'www.example.com' })
  assert.equal(response.status, 200)
  assert.equal(response.json().instance, 'remembered')
  const state = (await send(`${second.adminUrl}/admin/state`)).json() as { backends: Array<{ isStale: boolean }> }
  assert.equal(state.backends[0]?.isStale, true)
})

for (const workers of WORKER_COUNTS) test(`templated backends are kept in the state file too: a restart while DNS is down serves preview environments (workers: ${workers})`, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'srvgate-state-'))
  const statePath = join(dir, 'state.json')
  const dns = await ConsulLikeDnsServer.start(t)
  const preview = await Upstream.start(t, 'preview-7')
  dns.setService(WEB, [])
  dns.setService('_web._pr-7.service.consul', [{ address: '127.0.0.1', port: preview.port }])
  const previewFrontend = `  - name: preview
    match: { host: "{env}.preview.example.com" }
    env: { pattern: "pr-[0-9]+" }
    backend: { template: "web-{env}", discovery: { resolver: consul, srv: "_web._{env}.service.consul" } }`
  const config = `${configText(dns, `statePath: ${statePath}`, previewFrontend)}\ntemplatedBackends: { max: 16, idleTimeout: 10m }\n`
  const first = await SpawnedGateway.start(t, config, { workers })
  assert.equal((await send(`${first.url}/`, { host: 'pr-7.preview.example.com' })).status, 200)
  await first.stop()
  const saved = JSON.parse(readFileSync(statePath, 'utf8')) as { sets: Array<{ lookup: { name: string }, resolver: string }> }
  assert.deepEqual(saved.sets.map((set) => [set.lookup.name, set.resolver]), [['_web._pr-7.service.consul', 'consul']])

  await dns.stop()
  const second = await SpawnedGateway.start(t, config, { workers })
  const response = await send(`${second.url}/`, { host: 'pr-7.preview.example.com' })
  assert.equal(response.status, 200)
  assert.equal(response.json().instance, 'preview-7')
})

test('a corrupt state file is ignored with a warning, never a crash', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'srvgate-state-'))
  const statePath = join(dir, 'state.json')
  writeFileSync(statePath, '{ not json')
  const dns = await ConsulLikeDnsServer.start(t)
  dns.setService(WEB, [])
  const gateway = await SpawnedGateway.start(t, configText(dns, `statePath: ${statePath}`))
  await gateway.waitForLog((line) => line.msg === 'state file ignored')
  assert.equal((await send(`${gateway.adminUrl}/healthz`)).status, 200)
})

test('health records survive a reload: an ejected instance stays out', async (t) => {
  const { gateway, upstreams, get } = await setup(t)
  const bad = upstreams[0] as Upstream
  bad.behaviour = (_request, response) => { response.statusCode = 500; response.end('{}'); return true }
  for (let round = 0; round < 6; round++) await get()
  const applied = await send(`${gateway.adminUrl}/admin/reload`, { method: 'POST' })
  assert.equal(applied.status, 200)
  const state = (await send(`${gateway.adminUrl}/admin/state`)).json() as { backends: Array<{ instances: Array<{ key: string, state: string }> }> }
  assert.equal(state.backends[0]?.instances.find((instance) => instance.key === `127.0.0.1:${bad.port}`)?.state, 'ejected')
  bad.requests = 0
  for (let round = 0; round < 6; round++) assert.equal((await get()).status, 200)
  assert.equal(bad.requests, 0)
})

test('readyz is 503 while the first resolutions run, 200 once they are done', async (t) => {
  const dns = await ConsulLikeDnsServer.start(t)
  const upstream = await Upstream.start(t, 'slow-dns')
  dns.setService(WEB, [{ address: '127.0.0.1', port: upstream.port }])
  let isHolding = true
  dns.tamper = (_request, answer) => isHolding ? [] : [answer]
  const adminPort = await freePort()
  const starting = SpawnedGateway.start(t, configText(dns).replace('attempts: 1', 'attempts: 10').replace('admin: "127.0.0.1:${ADMIN_PORT}"', `admin: "127.0.0.1:${adminPort}"`))
  let sawNotReady = false
  for (let round = 0; round < 100 && !sawNotReady; round++) {
    try {
      sawNotReady = (await send(`http://127.0.0.1:${adminPort}/readyz`, { agent: false })).status === 503
    } catch {
      await sleep(50)
    }
  }
  isHolding = false
  await starting
  assert.equal(sawNotReady, true, 'readyz answered 503 during warm-up')
  assert.equal((await send(`http://127.0.0.1:${adminPort}/readyz`)).status, 200)
})

test('a reload while DNS is down keeps serving the last known instances', async (t) => {
  const { dns, gateway, get } = await setup(t, 'drain: { delay: 0s, timeout: 5s }')
  assert.equal((await get()).status, 200)
  await dns.stop()
  await sleep(400)
  writeFileSync(gateway.configPath, readFileSync(gateway.configPath, 'utf8').replace('balance: round-robin', 'balance: random'))
  const applied = await send(`${gateway.adminUrl}/admin/reload`, { method: 'POST' })
  assert.equal(applied.status, 200, applied.body)
  for (let round = 0; round < 10; round++) assert.equal((await get()).status, 200)
  const state = (await send(`${gateway.adminUrl}/admin/state`)).json() as { backends: Array<{ isStale: boolean, instances: unknown[] }> }
  assert.equal(state.backends[0]?.instances.length, 2)
})

for (const workers of WORKER_COUNTS) test(`reloads asked at the same moment under load apply one at a time, nothing fails (workers: ${workers})`, async (t) => {
  const { gateway, get } = await setup(t, '', workers)
  let isDone = false
  const running = load(get, { concurrency: 4, until: () => isDone, maxRequests: 50_000 })
  const answers = await Promise.all(Array.from({ length: 5 }, async () => await send(`${gateway.adminUrl}/admin/reload`, { method: 'POST', agent: false })))
  isDone = true
  const result = await running
  assert.deepEqual(answers.map((answer) => answer.status), [200, 200, 200, 200, 200])
  // Log lines are written asynchronously: a reload's answer can come before its line.
  await gateway.waitForLog(() => gateway.logs.filter((line) => line.msg === 'configuration reloaded').length >= 5)
  assert.equal(gateway.logs.filter((line) => line.msg === 'configuration reloaded').length, 5)
  assert.deepEqual(result.failures, [])
  assert.match((await send(`${gateway.adminUrl}/metrics`)).body, /srvgate_config_reloads_total\{result="ok"\} 5/)
})
