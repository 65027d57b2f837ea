/**
 * srvgate/client (issue 13): the gateway's discovery, balancing and
 * failover inside a Node program. The client is imported through the
 * package's own `exports` (self-reference to the built dist/), against the
 * Consul-like test DNS server and BIND9, under bounded load loops.
 */
import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { spawn, spawnSync } from 'node:child_process'
import { cpSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { Registry } from 'prom-client'
import { Agent, ClientClosedError, createClient, createClientFromFile, request, type SrvgateClient } from 'srvgate/client'
import { ConsulLikeDnsServer, type SrvInstance } from '../helpers/dns-server.js'
import { BindServer, ZONE } from '../helpers/bind-server.js'
import { Upstream } from '../helpers/upstream.js'
import { replaceEveryInstance, replaceEveryInstanceInBind } from '../helpers/rolling.js'
import { SpawnedGateway } from '../helpers/spawn-gateway.js'
import { send } from '../helpers/http.js'

const WEB = '_web._prod.service.consul'
const sleep = async (ms: number) => { await new Promise((resolve) => setTimeout(resolve, ms)) }
const records = (list: readonly Upstream[]): SrvInstance[] => list.map((upstream) => ({ address: '127.0.0.1', port: upstream.port }))

function clientFor (t: TestContext, nameserver: string, srv = WEB, extra: Record<string, unknown> = {}, resolverExtra: Record<string, unknown> = {}): SrvgateClient {
  const client = createClient({
    resolvers: { consul: { nameservers: [nameserver], ttl: { min: '250ms', max: '1s' }, timeout: '300ms', attempts: 2, ...resolverExtra } },
    services: { web: { discovery: { resolver: 'consul', srv }, retry: { attempts: 3 }, ...extra } }
  })
  t.after(async () => { await client.close() })
  return client
}

/** Requests to http://web/ from `concurrency` loops until `until()`; failures kept with why. */
async function loadThrough (client: SrvgateClient, until: () => boolean, options: { concurrency?: number, maxRequests?: number, method?: 'GET' | 'POST' } = {}) {
  let total = 0
  const failures: string[] = []
  const byInstance = new Map<string, number>()
  const loop = async (): Promise<void> => {
    while (!until() && total < (options.maxRequests ?? 100_000)) {
      total++
      try {
        const response = await client.request('http://web/load', { method: options.method ?? 'GET', body: options.method === 'POST' ? 'payload' : undefined })
        const body = await response.body.json() as { instance: string }
        if (response.statusCode !== 200) failures.push(`status ${response.statusCode}`)
        else byInstance.set(body.instance, (byInstance.get(body.instance) ?? 0) + 1)
      } catch (error) {
        failures.push(`${(error as { code?: string }).code ?? ''} ${(error as Error).message}`)
      }
    }
  }
  await Promise.all(Array.from({ length: options.concurrency ?? 8 }, loop))
  return { total, failures, byInstance }
}

test('client: a rolling replacement of every instance under load, 0 failed requests; the Host is the logical name; DNS queries follow TTLs, not requests', async (t) => {
  const dns = await ConsulLikeDnsServer.start(t)
  const upstreams = await Promise.all([0, 1, 2].map(async (index) => await Upstream.start(t, `v1-${index}`)))
  dns.setService(WEB, records(upstreams))
  const client = clientFor(t, dns.address)
  const seen: string[] = []
  upstreams[0]!.onRequestStart = (request) => { seen.push(String(request.headers.host)) }
  await client.ready()
  const queriesAtStart = dns.queries.length
  let isDone = false
  const running = loadThrough(client, () => isDone)
  const replacements = await replaceEveryInstance(t, dns, WEB, upstreams)
  await sleep(1000)
  isDone = true
  const result = await running
  assert.deepEqual(result.failures, [], `${result.failures.length} of ${result.total} failed`)
  assert.ok(result.total > 300, `a real load: ${result.total}`)
  for (const next of replacements) assert.ok((result.byInstance.get(next.name) ?? 0) > 0, `${next.name} got traffic`)
  assert.ok(seen.length > 0 && seen.every((host) => host === 'web'), 'Host: the logical name')
  const seconds = 0.3 * 6 + 1
  const queries = dns.queries.length - queriesAtStart
  assert.ok(queries < seconds * 12, `${queries} DNS queries for ${result.total} requests in ~${seconds}s: set by the 250 ms TTL floor and refreshes, not by requests`)
})

test('client: an instance crashes under load while its record stays in DNS: 0 failed GETs, POSTs retried unless the dead instance had them, ejected, events and metrics tell it', async (t) => {
  const dns = await ConsulLikeDnsServer.start(t)
  const upstreams = await Promise.all([0, 1, 2].map(async (index) => await Upstream.start(t, `v1-${index}`)))
  dns.setService(WEB, records(upstreams))
  const registry = new Registry()
  const client = createClient({
    resolvers: { consul: { nameservers: [dns.address], ttl: { min: '250ms', max: '1s' } } },
    services: { web: { discovery: { resolver: 'consul', srv: WEB }, outlier: { consecutiveFailures: 2, ejectFor: '30s' } } },
    registry
  })
  t.after(async () => { await client.close() })
  const events = { pick: 0, retry: [] as string[], ejection: [] as string[] }
  client.on('pick', () => { events.pick++ })
  client.on('retry', (event) => { events.retry.push(event.reason) })
  client.on('ejection', (event) => { events.ejection.push(event.instance) })
  await client.ready()
  let isDone = false
  const gets = loadThrough(client, () => isDone)
  const posts = loadThrough(client, () => isDone, { concurrency: 2, method: 'POST' })
  await sleep(400)
  const victim = upstreams[0] as Upstream
  const victimKey = `127.0.0.1:${victim.port}`
  await victim.kill()
  await sleep(2000)
  isDone = true
  const [getResult, postResult] = await Promise.all([gets, posts])
  assert.deepEqual(getResult.failures, [], `GET: ${getResult.failures.length} of ${getResult.total} failed`)
  // A POST the instance had already received when it died may have been processed: never retried (spec §3).
  // Only those in flight at the crash may fail; every later one meets a connect failure and is retried.
  assert.ok(postResult.failures.length <= 2 && postResult.failures.every((failure) => failure.startsWith('SG_ERR_UPSTREAM_RESET')), `POST: ${postResult.failures.join('; ')}`)
  assert.ok(postResult.total > 50)
  assert.deepEqual(events.ejection, [victimKey])
  assert.ok(events.retry.includes('connect-failure'))
  assert.ok(events.pick >= getResult.total + postResult.total)
  assert.ok(!client.instances('web').includes(victimKey), 'the ejected instance is not usable')
  const metrics = await registry.metrics()
  assert.match(metrics, /^srvgate_outlier_ejections_total\{backend="web"\} 1$/m)
  assert.match(metrics, /^srvgate_upstream_retries_total\{backend="web",reason="connect-failure"\} [1-9]\d*$/m)
  assert.match(metrics, /^srvgate_backend_instances\{backend="web",state="ejected"\} 1$/m)
  assert.match(metrics, /^srvgate_dns_queries_total\{nameserver="127\.0\.0\.1:\d+",transport="udp",outcome="noerror"\} [1-9]\d*$/m)
  assert.doesNotMatch(metrics, /srvgate_http_requests_total|process_cpu/, 'no gateway edge or process metrics in the application\'s registry')
})

test('client: the DNS server down 15 s under load: 0 failed requests from the stale set', async (t) => {
  const dns = await ConsulLikeDnsServer.start(t)
  const upstreams = await Promise.all([0, 1].map(async (index) => await Upstream.start(t, `v1-${index}`)))
  dns.setService(WEB, records(upstreams))
  const client = clientFor(t, dns.address, WEB, {}, { staleFor: '60s' })
  await client.ready()
  let isDone = false
  const running = loadThrough(client, () => isDone, { concurrency: 4 })
  await sleep(300)
  await dns.outage(15_000)
  await sleep(500)
  isDone = true
  const result = await running
  assert.deepEqual(result.failures, [], `${result.failures.length} of ${result.total} failed`)
  assert.ok((result.byInstance.get('v1-0') ?? 0) > 0 && (result.byInstance.get('v1-1') ?? 0) > 0)
})

test('client: unknown hosts pass through to ordinary DNS untouched; a service with no instance is an error with a stable code', async (t) => {
  const dns = await ConsulLikeDnsServer.start(t)
  const plain = await Upstream.start(t, 'plain')
  const client = clientFor(t, dns.address, '_nothing.service.consul')
  await client.ready()
  const direct = await client.request(`http://127.0.0.1:${plain.port}/x`)
  assert.equal((await direct.body.json() as { instance: string }).instance, 'plain')
  const byName = await client.fetch(`http://localhost:${plain.port}/y`)
  assert.equal(byName.status, 200, 'a host name that is not a service: resolved by the system, as always')
  await assert.rejects(client.request('http://web/'), (error: Error & { code?: string }) => error.code === 'SG_ERR_NO_HEALTHY_INSTANCE' || /no usable instance/.test(error.message))
})

test('client: a request the caller abandons (AbortSignal) is let go at the instance and counts nothing against it; timeouts.response bounds a silent instance', async (t) => {
  const dns = await ConsulLikeDnsServer.start(t)
  const slow = await Upstream.start(t, 'slow')
  let aborted = 0
  slow.behaviour = (request, response) => {
    response.on('close', () => { if (!response.writableEnded) aborted++ })
    return true
  }
  dns.setService(WEB, records([slow]))
  const client = clientFor(t, dns.address, WEB, { timeouts: { response: '800ms' }, retry: { attempts: 0 } })
  await client.ready()
  const events: string[] = []
  client.on('attempt', (event) => { events.push(event.outcome) })
  await assert.rejects(client.request('http://web/', { signal: AbortSignal.timeout(200) }), (error: Error) => error.name === 'AbortError' || /abort/i.test(error.message))
  await sleep(200)
  assert.equal(aborted, 1, 'the instance saw the request go away')
  assert.deepEqual(events, [], 'nothing counted against the instance')
  const started = Date.now()
  await assert.rejects(client.request('http://web/'), (error: Error & { code?: string }) => error.code === 'SG_ERR_UPSTREAM_TIMEOUT')
  assert.ok(Date.now() - started < 2000, 'timeouts.response (800ms) bounds it')
})

test('client: after close(), fetch, request and dispatcher.dispatch reject with ClientClosedError (SG_ERR_CLIENT_CLOSED), never an answer from the frozen view; through the interceptor, only services are refused', async (t) => {
  const dns = await ConsulLikeDnsServer.start(t)
  const upstream = await Upstream.start(t, 'before-close')
  dns.setService(WEB, records([upstream]))
  const client = clientFor(t, dns.address)
  const agent = new Agent().compose(client.interceptor)
  t.after(async () => { await agent.close() })
  await client.ready()
  assert.equal((await client.request('http://web/')).statusCode, 200)
  await client.close()
  const isClosedError = (error: Error & { code?: string }): boolean => error instanceof ClientClosedError && error.code === 'SG_ERR_CLIENT_CLOSED'
  await assert.rejects(client.fetch('http://web/after'), isClosedError)
  await assert.rejects(client.request('http://web/after'), isClosedError)
  await assert.rejects(client.request(`http://127.0.0.1:${upstream.port}/other-host`), isClosedError, 'other hosts too: the client is closed')
  await assert.rejects(request('http://web/after', { dispatcher: client.dispatcher }), isClosedError)
  // The raw Dispatcher contract, as undici's Agent keeps it after close(): the error to the handler, false returned.
  const refused = await new Promise<{ returned: boolean, error: Error & { code?: string } }>((resolve) => {
    let returned = true
    returned = client.dispatcher.dispatch({ origin: 'http://web', path: '/raw', method: 'GET' }, {
      onError: (error: Error) => { queueMicrotask(() => { resolve({ returned, error }) }) }
    } as never)
  })
  assert.equal(refused.returned, false)
  assert.ok(isClosedError(refused.error), String(refused.error))
  await assert.rejects(request('http://web/after', { dispatcher: agent }), isClosedError)
  const other = await request(`http://127.0.0.1:${upstream.port}/direct`, { dispatcher: agent })
  assert.equal(other.statusCode, 200, 'the Agent the interceptor is composed onto keeps its own hosts')
  await other.body.dump()
  assert.equal(upstream.requests, 2, 'nothing after close() reached the instance')
})

test('client: a gateway\'s own file gives the services; the interceptor composes onto an undici Agent from the same copy', async (t) => {
  const dns = await ConsulLikeDnsServer.start(t)
  const upstream = await Upstream.start(t, 'from-file')
  dns.setService(WEB, records([upstream]))
  const dir = mkdtempSync(join(tmpdir(), 'srvgate-client-file-'))
  const file = join(dir, 'gateway.yaml')
  writeFileSync(file, `
listen: { http: 0.0.0.0:8080 }
resolvers: { consul: { nameservers: ["${dns.address}"] } }
backends: { web: { discovery: { resolver: consul, srv: ${WEB} } } }
frontends: [ { name: all, match: {}, backend: web } ]
`)
  const client = await createClientFromFile(file)
  t.after(async () => { await client.close() })
  await client.ready()
  assert.equal((await (await client.request('http://web/')).body.json() as { instance: string }).instance, 'from-file')
  // fetch: its body (a stream of its own) reaches the instance whole, Host is the logical name.
  const viaFetch = await client.fetch('http://web:8080/f', { method: 'POST', body: new Blob(['hello ', 'fetch']).stream(), duplex: 'half' } as never)
  const echoed = await viaFetch.json() as { headers: Record<string, string>, bodyBytes: number, method: string }
  assert.deepEqual([viaFetch.status, echoed.method, echoed.bodyBytes, echoed.headers.host], [200, 'POST', 11, 'web:8080'])
  const agent = new Agent().compose(client.interceptor)
  t.after(async () => { await agent.close() })
  const composed = await request('http://web/composed', { dispatcher: agent })
  assert.equal((await composed.body.json() as { instance: string }).instance, 'from-file')
  const passed = await request(`http://127.0.0.1:${upstream.port}/direct`, { dispatcher: agent })
  assert.equal(passed.statusCode, 200, 'other hosts go on through the Agent')
  await passed.body.dump()
})

test('client: a gateway file\'s split backend is a service: the gateway\'s exact shares, the gateway\'s member for each sticky key, a dead member\'s share moves on; no member left is an error naming the split', async (t) => {
  const dns = await ConsulLikeDnsServer.start(t)
  const v1 = await Promise.all([0, 1].map(async (index) => await Upstream.start(t, `v1-${index}`)))
  const v2 = [await Upstream.start(t, 'v2-0')]
  dns.setService('_web._v1.service.consul', records(v1))
  dns.setService('_web._v2.service.consul', records(v2))
  const sections = `
resolvers:
  consul: { nameservers: ["${dns.address}"], ttl: { min: 250ms, max: 1s }, timeout: 300ms, attempts: 2, emptyGrace: 0s }
backends:
  web-v1: { discovery: { resolver: consul, srv: _web._v1.service.consul } }
  web-v2: { discovery: { resolver: consul, srv: _web._v2.service.consul } }
  web-prod: { split: [ { backend: web-v2, weight: 10 }, { backend: web-v1, weight: 90 } ] }
  web-sticky: { split: [ { backend: web-v2, weight: 10 }, { backend: web-v1, weight: 90 } ], stickyOn: "header:x-user" }
frontends:
  - { name: sticky, match: { host: sticky.example.com }, backend: web-sticky }
`
  const dir = mkdtempSync(join(tmpdir(), 'srvgate-client-split-'))
  const file = join(dir, 'gateway.yaml')
  writeFileSync(file, `listen: { http: 127.0.0.1:8080 }\n${sections}`)
  const client = await createClientFromFile(file)
  t.after(async () => { await client.close() })
  await client.ready()
  const memberOf = (instance: string): string => instance.split('-')[0] as string
  const through = async (url: string, headers: Record<string, string> = {}): Promise<string> => {
    const response = await client.request(url, { headers })
    assert.equal(response.statusCode, 200)
    return (await response.body.json() as { instance: string }).instance
  }

  // Without a sticky key the shares are exact, as at the gateway: 10 in every 100.
  const shares = new Map<string, number>()
  for (let index = 0; index < 100; index++) {
    const member = memberOf(await through('http://web-prod/'))
    shares.set(member, (shares.get(member) ?? 0) + 1)
  }
  assert.deepEqual(Object.fromEntries(shares), { v1: 90, v2: 10 })
  assert.deepEqual(client.instances('web-prod').sort(), [...v1, ...v2].map((upstream) => `127.0.0.1:${upstream.port}`).sort())

  // A sticky key goes to the member the gateway (run from the same sections) sends it to.
  const gateway = await SpawnedGateway.start(t, `listen: { http: "127.0.0.1:\${PORT}", admin: "127.0.0.1:\${ADMIN_PORT}" }\n${sections}`, { workers: 1 })
  const keys = Array.from({ length: 100 }, (_, index) => `user-${index}`)
  const byClient: string[] = []
  const byGateway: string[] = []
  for (const key of keys) {
    byClient.push(memberOf(await through('http://web-sticky/', { 'x-user': key })))
    byGateway.push(memberOf(String((await send(`${gateway.url}/`, { host: 'sticky.example.com', headers: { 'x-user': key } })).json().instance)))
  }
  assert.deepEqual(byClient, byGateway, 'the same member for every key, in the client and at the gateway')
  assert.ok(byClient.includes('v1') && byClient.includes('v2'), 'keys land on both members')
  assert.equal(memberOf(await through('http://web-sticky/', { 'x-user': 'user-7' })), byClient[7], 'a key stays')

  // The canary's instance dies while DNS still lists it: its requests move to web-v1 (nothing was sent), none fails.
  await v2[0]?.kill()
  // Its pooled connections were reset (a reset after sending is retried inside the member only): let the pool see them go.
  await sleep(200)
  const afterDeath = await Promise.all(Array.from({ length: 40 }, async () => memberOf(await through('http://web-prod/'))))
  assert.ok(afterDeath.every((member) => member === 'v1'), afterDeath.join(' '))
  assert.ok(!client.instances('web-prod').includes(`127.0.0.1:${v2[0]?.port ?? 0}`), 'the dead instance is ejected, the last of its member too')

  // No member with a usable instance: an error naming the split, never a fall-through to system DNS.
  dns.setService('_web._v1.service.consul', [])
  dns.setService('_web._v2.service.consul', [])
  const deadline = Date.now() + 5000
  let error: (Error & { code?: string }) | undefined
  while (error === undefined && Date.now() < deadline) {
    try { await through('http://web-prod/') } catch (caught) { error = caught as Error & { code?: string } }
    await sleep(50)
  }
  assert.equal(error?.code, 'SG_ERR_NO_HEALTHY_INSTANCE', String(error))
  assert.match(error?.message ?? '', /web-prod: no member has a usable instance/)
})

test('client: BIND9 and nsupdate, every instance replaced under load, then one crashes: 0 failed requests', async (t) => {
  const srvName = `_web._tcp.${ZONE}`
  const upstreams = await Promise.all([0, 1].map(async (index) => await Upstream.start(t, `old${index}`)))
  // Zone-file names are relative unless they end with a dot; nsupdate's are absolute.
  const bind = await BindServer.start(t, upstreams.flatMap((upstream) => [`${srvName}. 0 IN SRV 1 1 ${upstream.port} ${upstream.name}.${ZONE}.`, `${upstream.name} 0 IN A 127.0.0.1`]))
  const client = clientFor(t, bind.address, srvName)
  await client.ready()
  let isDone = false
  const running = loadThrough(client, () => isDone, { concurrency: 6 })
  const replacements = await replaceEveryInstanceInBind(t, bind, srvName, upstreams)
  await sleep(800)
  // Then one of the new instances crashes while its record stays: GETs go on to the other.
  const crashed = replacements[0] as Upstream
  await crashed.kill()
  await sleep(1500)
  isDone = true
  const result = await running
  assert.deepEqual(result.failures, [], `${result.failures.length} of ${result.total} failed`)
  assert.ok((result.byInstance.get('new0') ?? 0) > 0 && (result.byInstance.get('new1') ?? 0) > 0)
  assert.ok(!client.instances('web').includes(`127.0.0.1:${crashed.port}`), 'the crashed instance is ejected')
})

test('client: a plain ESM program exits by itself after close(); the package installed elsewhere (npm pack) resolves srvgate/client from JavaScript and TypeScript', async (t) => {
  const dns = await ConsulLikeDnsServer.start(t)
  const upstream = await Upstream.start(t, 'only')
  dns.setService(WEB, records([upstream]))
  const dir = mkdtempSync(join(tmpdir(), 'srvgate-client-user-'))
  // The package as users get it: npm pack, then installed as a dependency of another folder.
  const packed = spawnSync('npm', ['pack', '--pack-destination', dir, '--silent'], { encoding: 'utf8', timeout: 120_000 })
  assert.equal(packed.status, 0, packed.stderr)
  const tarball = readdirSync(dir).find((name) => name.endsWith('.tgz')) as string
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'client-user', version: '1.0.0', type: 'module', private: true }))
  const installed = spawnSync('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', '--ignore-scripts', `./${tarball}`], { cwd: dir, encoding: 'utf8', timeout: 300_000 })
  assert.equal(installed.status, 0, installed.stderr)
  cpSync(resolve('test/fixtures/client-program.mjs'), join(dir, 'program.mjs'))
  cpSync(resolve('test/fixtures/client-program.ts'), join(dir, 'program.ts'))

  const started = Date.now()
  const child = spawn(process.execPath, ['program.mjs', dns.address, `http://127.0.0.1:${upstream.port}/plain`], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  let err = ''
  child.stdout.on('data', (chunk: Buffer) => { out += chunk.toString() })
  child.stderr.on('data', (chunk: Buffer) => { err += chunk.toString() })
  const code = await new Promise<number | null>((resolveExit) => {
    const timer = setTimeout(() => { child.kill('SIGKILL'); resolveExit(-1) }, 15_000)
    child.once('exit', (exitCode) => { clearTimeout(timer); resolveExit(exitCode) })
  })
  assert.equal(code, 0, `the program ended by itself (no handle left): ${err}`)
  assert.ok(Date.now() - started < 10_000)
  const result = JSON.parse(out) as { service: { status: number, body: { instance: string, url: string } }, plain: { status: number, body: { instance: string } } }
  assert.equal(result.service.status, 200)
  assert.equal(result.service.body.url, '/from-program')
  assert.equal(result.plain.body.instance, 'only')

  const tsc = spawnSync(process.execPath, [resolve('node_modules/typescript/bin/tsc'), '--noEmit', '--strict', '--module', 'nodenext', '--moduleResolution', 'nodenext', '--target', 'es2022', '--skipLibCheck', '--types', 'node', '--typeRoots', resolve('node_modules/@types'), 'program.ts'], { cwd: dir, encoding: 'utf8', timeout: 120_000 })
  assert.equal(tsc.status, 0, `TypeScript sees the types: ${tsc.stdout}${tsc.stderr}`)
})
