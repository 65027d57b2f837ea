/**
 * The story srvgate exists for (spec §5): instances are replaced, crash and
 * move, DNS goes away, and clients see no failed request. srvgate runs
 * through its CLI; the DNS server changes under a bounded load loop.
 */
import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { ConsulLikeDnsServer, type SrvInstance } from '../helpers/dns-server.js'
import { Upstream } from '../helpers/upstream.js'
import { SpawnedGateway } from '../helpers/spawn-gateway.js'
import { load, send } from '../helpers/http.js'
import { replaceEveryInstance } from '../helpers/rolling.js'

const WEB = '_web._prod.service.consul'
/** Everything here holds with one process and with a primary and two workers (issue 9). */
const WORKER_COUNTS = [1, 2]
const sleep = async (ms: number) => { await new Promise((resolve) => setTimeout(resolve, ms)) }

async function setup (t: TestContext, workers: number, instances: number, resolverExtra = '') {
  const dns = await ConsulLikeDnsServer.start(t)
  const upstreams = await Promise.all(Array.from({ length: instances }, async (_, index) => await Upstream.start(t, `v1-${index}`)))
  const records = (list: Upstream[]): SrvInstance[] => list.map((upstream) => ({ address: '127.0.0.1', port: upstream.port }))
  dns.setService(WEB, records(upstreams))
  dns.setService('_web._staging.service.consul', records([upstreams[0] as Upstream]))
  const gateway = await SpawnedGateway.start(t, `
listen: { http: "127.0.0.1:\${PORT}", admin: "127.0.0.1:\${ADMIN_PORT}" }
resolvers:
  consul: { nameservers: ["${dns.address}"], ttl: { min: 250ms, max: 1s }, timeout: 300ms, attempts: 2${resolverExtra} }
backends:
  web-prod: { discovery: { resolver: consul, srv: ${WEB} }, retry: { attempts: 3 } }
  web-staging: { discovery: { resolver: consul, srv: _web._staging.service.consul } }
frontends:
  - { name: staging, match: { host: staging.example.com }, backend: web-staging }
  - { name: prod, match: { host: www.example.com }, backend: web-prod }
`, { workers })
  const get = async () => await send(`${gateway.url}/`, { host: 'www.example.com' })
  return { dns, upstreams, records, gateway, get }
}

for (const workers of WORKER_COUNTS) test(`rolling replacement of every instance under load: 0 failed requests (workers: ${workers})`, async (t) => {
  const { dns, upstreams, get } = await setup(t, workers, 3)
  let isDone = false
  const running = load(get, { concurrency: 8, until: () => isDone, maxRequests: 50_000 })
  const replacements = await replaceEveryInstance(t, dns, WEB, upstreams)
  await sleep(1000)
  isDone = true
  const result = await running
  assert.deepEqual(result.failures, [], `${result.failures.length} of ${result.total} requests failed`)
  assert.ok(result.total > 200, `a real load: ${result.total} requests`)
  for (const next of replacements) assert.ok(next.requests > 0, `${next.name} got traffic`)
})

for (const workers of WORKER_COUNTS) test(`an instance crashes under load while its record stays 3 s in DNS: 0 failed idempotent requests (workers: ${workers})`, async (t) => {
  const { dns, upstreams, records, get } = await setup(t, workers, 3)
  let isDone = false
  const running = load(get, { concurrency: 8, until: () => isDone, maxRequests: 50_000 })
  await sleep(500)
  const victim = upstreams[0] as Upstream
  await victim.kill()
  await sleep(3000)
  dns.setService(WEB, records(upstreams.slice(1)))
  await sleep(1000)
  isDone = true
  const result = await running
  assert.deepEqual(result.failures, [], `${result.failures.length} of ${result.total} requests failed`)
  assert.ok((result.byInstance.get('v1-1') ?? 0) > 0 && (result.byInstance.get('v1-2') ?? 0) > 0)
})

for (const workers of WORKER_COUNTS) test(`the DNS server stopped for 15 s under load (staleFor 60s): 0 failed requests (workers: ${workers})`, async (t) => {
  const { dns, get } = await setup(t, workers, 2, ', staleFor: 60s')
  let isDone = false
  const running = load(get, { concurrency: 4, until: () => isDone, maxRequests: 100_000 })
  await sleep(500)
  await dns.outage(15_000)
  await sleep(1000)
  isDone = true
  const result = await running
  assert.deepEqual(result.failures, [], `${result.failures.length} of ${result.total} requests failed`)
  assert.equal(result.byInstance.size, 2, 'both instances kept serving from the stale answer')
})

for (const workers of WORKER_COUNTS) test(`scale-out: a new instance gets traffic within ttl.min + 1 s of its registration (workers: ${workers})`, async (t) => {
  const { dns, upstreams, records, get } = await setup(t, workers, 2)
  const added = await Upstream.start(t, 'added')
  let isDone = false
  const running = load(get, { concurrency: 4, until: () => isDone, maxRequests: 50_000 })
  await sleep(300)
  dns.setService(WEB, records([...upstreams, added]))
  const registeredAt = Date.now()
  while (added.requests === 0 && Date.now() - registeredAt < 5000) await sleep(10)
  const delay = Date.now() - registeredAt
  isDone = true
  const result = await running
  assert.ok(added.requests > 0, 'the new instance got traffic')
  assert.ok(delay <= 250 + 1000, `first request after ${delay} ms`)
  assert.deepEqual(result.failures, [])
})

for (const workers of WORKER_COUNTS) test(`isolation under load: staging emptied gets 503 while prod keeps serving (workers: ${workers})`, async (t) => {
  const { dns, gateway, get } = await setup(t, workers, 2)
  const staging = async () => await send(`${gateway.url}/`, { host: 'staging.example.com' })
  assert.equal((await staging()).status, 200)
  dns.setService('_web._staging.service.consul', [])
  let isDone = false
  const prodLoad = load(get, { concurrency: 4, until: () => isDone, maxRequests: 50_000 })
  // NXDOMAIN empties the set once emptyGrace (2 s) is over.
  const deadline = Date.now() + 6000
  let stagingStatus = 200
  while (Date.now() < deadline && stagingStatus === 200) {
    await sleep(100)
    stagingStatus = (await staging()).status
  }
  const emptied = await staging()
  isDone = true
  const result = await prodLoad
  assert.equal(emptied.status, 503)
  assert.deepEqual(emptied.json(), { error: 'no_healthy_upstream', backend: 'web-staging' })
  assert.deepEqual(result.failures, [], 'prod never failed')
})

for (const workers of WORKER_COUNTS) test(`no connection left behind: after a rolling replacement the gateway holds no socket to a departed instance, and srvgate_upstream_connections says so (workers: ${workers})`, async (t) => {
  const { dns, upstreams, get, gateway } = await setup(t, workers, 3)
  // Staging shares v1-0 in this setup: an instance another backend still lists keeps its pool. Not here.
  dns.setService('_web._staging.service.consul', [])
  let isDone = false
  const running = load(get, { concurrency: 8, until: () => isDone, maxRequests: 50_000 })
  await sleep(500)
  for (const old of upstreams) assert.ok(old.openConnections > 0, `${old.name} is in use before`)
  // The old processes keep running (an orchestrator may take a while to stop them): only srvgate can close these connections.
  const replacements = await replaceEveryInstance(t, dns, WEB, upstreams, { stopOld: false })
  await sleep(500)
  isDone = true
  const result = await running
  assert.deepEqual(result.failures, [])
  // Well before the 4 s keep-alive timeout: closed because the instances left, not because they idled.
  await sleep(500)
  for (const old of upstreams) assert.equal(old.openConnections, 0, `${old.name} left DNS: no socket of srvgate's remains`)
  const open = replacements.reduce((sum, next) => sum + next.openConnections, 0)
  assert.ok(open > 0)
  const metrics = (await send(`${gateway.adminUrl}/metrics`)).body
  assert.equal(Number(/^srvgate_upstream_connections (\d+)$/m.exec(metrics)?.[1]), open)
})

test('maxConnectionAge: a connection older than the limit is not reused; the next request opens a new one', async (t) => {
  const dns = await ConsulLikeDnsServer.start(t)
  const upstream = await Upstream.start(t, 'aged')
  dns.setService(WEB, [{ address: '127.0.0.1', port: upstream.port }])
  const gateway = await SpawnedGateway.start(t, `
listen: { http: "127.0.0.1:\${PORT}", admin: "127.0.0.1:\${ADMIN_PORT}" }
resolvers: { consul: { nameservers: ["${dns.address}"], ttl: { min: 250ms, max: 1s } } }
backends: { web-prod: { discovery: { resolver: consul, srv: ${WEB} }, maxConnectionAge: 400ms } }
frontends: [ { name: prod, match: { host: www.example.com }, backend: web-prod } ]
`, { workers: 1 })
  for (let index = 0; index < 5; index++) assert.equal((await send(`${gateway.url}/`, { host: 'www.example.com' })).status, 200)
  assert.equal(upstream.connectionsAccepted, 1, 'reused while young')
  await sleep(600)
  for (let index = 0; index < 3; index++) assert.equal((await send(`${gateway.url}/`, { host: 'www.example.com' })).status, 200)
  assert.equal(upstream.connectionsAccepted, 2, 'recycled once older than maxConnectionAge')
})
