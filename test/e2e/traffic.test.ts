/**
 * Traffic management (issue 11), through the CLI against the Consul-like DNS
 * server: splits between backends, failover to another datacenter, slow
 * start. (No connection left behind is in resilience.test.ts.)
 */
import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync, writeFileSync } from 'node:fs'
import { ConsulLikeDnsServer, type SrvInstance } from '../helpers/dns-server.js'
import { Upstream } from '../helpers/upstream.js'
import { SpawnedGateway } from '../helpers/spawn-gateway.js'
import { keepAlive, load, send, type Response } from '../helpers/http.js'

const sleep = async (ms: number) => { await new Promise((resolve) => setTimeout(resolve, ms)) }
const records = (list: readonly Upstream[]): SrvInstance[] => list.map((upstream) => ({ address: '127.0.0.1', port: upstream.port }))
const RESOLVER = 'ttl: { min: 250ms, max: 1s }, timeout: 300ms, attempts: 2, negativeTtl: 5s, emptyGrace: 0s'

/** Instances named by prefix (v1-0, v2-0…), registered under `name`. */
async function service (t: TestContext, dns: ConsulLikeDnsServer, name: string, prefix: string, count: number): Promise<Upstream[]> {
  const upstreams = await Promise.all(Array.from({ length: count }, async (_, index) => await Upstream.start(t, `${prefix}-${index}`)))
  dns.setService(name, records(upstreams))
  return upstreams
}

function metric (text: string, pattern: RegExp): number {
  const match = pattern.exec(text)
  return match === null ? 0 : Number(match[1])
}

async function splitSetup (t: TestContext, workers: number) {
  const dns = await ConsulLikeDnsServer.start(t)
  const v1 = await service(t, dns, '_web._v1.service.consul', 'v1', 2)
  const v2 = await service(t, dns, '_web._v2.service.consul', 'v2', 1)
  const staging = await service(t, dns, '_web._staging.service.consul', 'staging', 1)
  const config = `
listen: { http: "127.0.0.1:\${PORT}", admin: "127.0.0.1:\${ADMIN_PORT}" }
resolvers:
  consul: { nameservers: ["${dns.address}"], ${RESOLVER} }
backends:
  web-v1: { discovery: { resolver: consul, srv: _web._v1.service.consul } }
  web-v2: { discovery: { resolver: consul, srv: _web._v2.service.consul } }
  web-staging: { discovery: { resolver: consul, srv: _web._staging.service.consul } }
  web-prod:
    split:
      - { backend: web-v2, weight: 10 }
      - { backend: web-v1, weight: 90 }
  web-sticky:
    split:
      - { backend: web-v2, weight: 10 }
      - { backend: web-v1, weight: 90 }
    stickyOn: cookie:session
frontends:
  - { name: canary-by-header, match: { host: www.example.com, headers: { x-canary: "1" } }, backend: web-v2 }
  - { name: www, match: { host: www.example.com }, backend: web-prod }
  - { name: sticky, match: { host: sticky.example.com }, backend: web-sticky }
  - { name: staging, match: { host: staging.example.com }, backend: web-staging }
`
  const gateway = await SpawnedGateway.start(t, config, { workers })
  return { dns, v1, v2, staging, gateway, config }
}

test('split 90/10: measured over 10,000 requests with two workers; the access log and metrics name the member; the header override forces the canary', async (t) => {
  const { v2, staging, gateway } = await splitSetup(t, 2)
  const result = await load(async () => await send(`${gateway.url}/`, { host: 'www.example.com', agent: keepAlive }), { concurrency: 8, until: () => false, maxRequests: 10_000 })
  assert.deepEqual(result.failures, [])
  const canary = result.byInstance.get('v2-0') ?? 0
  const share = canary / result.total
  // Each worker rotates its own exact 1-in-10 sequence: the sum is within a request or two per worker.
  assert.ok(Math.abs(share - 0.10) <= 0.02, `canary share ${(share * 100).toFixed(2)} % of ${result.total}`)
  assert.ok((result.byInstance.get('v1-0') ?? 0) > 4000 && (result.byInstance.get('v1-1') ?? 0) > 4000, 'web-v1 balances over its own instances')
  assert.equal(staging[0]?.requests, 0, 'another environment is never reached')

  const metrics = (await send(`${gateway.adminUrl}/metrics`)).body
  assert.equal(metric(metrics, /^srvgate_split_requests_total\{split="web-prod",backend="web-v2"\} (\d+)$/m), canary)
  assert.equal(metric(metrics, /^srvgate_split_requests_total\{split="web-prod",backend="web-v1"\} (\d+)$/m), result.total - canary)
  assert.equal(metric(metrics, /^srvgate_http_requests_total\{frontend="www",backend="web-v2",status_class="2xx",code="200"\} (\d+)$/m), canary)
  const line = await gateway.waitForLog((entry) => entry.msg === 'request' && entry.backend === 'web-v2')
  assert.equal(line.split, 'web-prod')
  assert.equal(String(line.instance), `127.0.0.1:${v2[0]?.port ?? 0}`)

  for (let index = 0; index < 20; index++) {
    const response = await send(`${gateway.url}/`, { host: 'www.example.com', headers: { 'x-canary': '1' } })
    assert.equal(response.json().instance, 'v2-0', 'x-canary: 1 always reaches the canary')
  }

  // Weights change by reload: 50/50 from the next request on.
  writeFileSync(gateway.configPath, readFileSync(gateway.configPath, 'utf8').replace('{ backend: web-v2, weight: 10 }', '{ backend: web-v2, weight: 50 }').replace('{ backend: web-v1, weight: 90 }', '{ backend: web-v1, weight: 50 }'))
  assert.equal((await send(`${gateway.adminUrl}/admin/reload`, { method: 'POST' })).status, 200)
  const halves = await load(async () => await send(`${gateway.url}/`, { host: 'www.example.com', agent: keepAlive }), { concurrency: 8, until: () => false, maxRequests: 1000 })
  const halfShare = (halves.byInstance.get('v2-0') ?? 0) / halves.total
  assert.ok(Math.abs(halfShare - 0.5) <= 0.02, `after the reload: ${(halfShare * 100).toFixed(1)} % on the canary`)
})

test('split with stickyOn: a session key always gets the same member, in two gateway processes with the same configuration', async (t) => {
  const { gateway, config } = await splitSetup(t, 1)
  const other = await SpawnedGateway.start(t, config, { workers: 1 })
  const memberOf = (response: Response): string => String(response.json().instance).split('-')[0] as string
  let canary = 0
  const KEYS = 400
  for (let key = 0; key < KEYS; key++) {
    const headers = { cookie: `theme=dark; session=user-${key}` }
    const first = memberOf(await send(`${gateway.url}/`, { host: 'sticky.example.com', headers, agent: keepAlive }))
    const again = memberOf(await send(`${gateway.url}/`, { host: 'sticky.example.com', headers, agent: keepAlive }))
    const elsewhere = memberOf(await send(`${other.url}/`, { host: 'sticky.example.com', headers, agent: keepAlive }))
    assert.equal(again, first, `user-${key} stays on ${first}`)
    assert.equal(elsewhere, first, `user-${key} gets ${first} from the other replica too`)
    if (first === 'v2') canary++
  }
  assert.ok(canary > KEYS * 0.05 && canary < KEYS * 0.16, `about 10 % of sessions on the canary: ${canary} of ${KEYS}`)
})

test('split: a member emptied under load sends all traffic to the other member, never to staging; 0 failed requests', async (t) => {
  const { dns, v1, v2, staging, gateway } = await splitSetup(t, 2)
  let isDone = false
  const running = load(async () => await send(`${gateway.url}/`, { host: 'www.example.com', agent: keepAlive }), { concurrency: 8, until: () => isDone, maxRequests: 100_000 })
  await sleep(500)
  dns.setService('_web._v2.service.consul', [])
  // The v2 set is empty at the next read (emptyGrace 0s): a second is plenty.
  await sleep(1500)
  const v1Before = v1.reduce((sum, upstream) => sum + upstream.requests, 0)
  const v2Before = v2.reduce((sum, upstream) => sum + upstream.requests, 0)
  await sleep(1500)
  isDone = true
  const result = await running
  assert.deepEqual(result.failures, [], `${result.failures.length} of ${result.total} failed`)
  const v1After = v1.reduce((sum, upstream) => sum + upstream.requests, 0)
  const canaryAfter = await send(`${gateway.url}/`, { host: 'www.example.com' })
  assert.match(String(canaryAfter.json().instance), /^v1-/)
  assert.ok(v1After - v1Before > 100, 'web-v1 took the traffic')
  assert.equal(v2.reduce((sum, upstream) => sum + upstream.requests, 0), v2Before, 'the emptied member got nothing more')
  assert.equal(staging[0]?.requests, 0, 'staging never reached')
  const state = (await send(`${gateway.adminUrl}/admin/state`)).json() as { splits: Array<{ name: string, members: Array<{ backend: string, usable: boolean }> }> }
  assert.deepEqual(state.splits.find((split) => split.name === 'web-prod')?.members.map((member) => [member.backend, member.usable]), [['web-v2', false], ['web-v1', true]])
  const header = await send(`${gateway.url}/`, { host: 'www.example.com', headers: { 'x-canary': '1' } })
  assert.equal(header.status, 503, 'the header override names web-v2 alone: no instance is 503, never another backend')
})

async function failoverSetup (t: TestContext, workers: number) {
  const dns = await ConsulLikeDnsServer.start(t)
  const dc1 = await service(t, dns, '_api._prod.service.dc1.consul', 'dc1', 2)
  const dc2 = await service(t, dns, '_api._prod.service.dc2.consul', 'dc2', 2)
  const gateway = await SpawnedGateway.start(t, `
listen: { http: "127.0.0.1:\${PORT}", admin: "127.0.0.1:\${ADMIN_PORT}" }
resolvers:
  consul: { nameservers: ["${dns.address}"], ${RESOLVER} }
backends:
  api:
    discovery: { resolver: consul, srv: _api._prod.service.dc1.consul }
    failover:
      - { resolver: consul, srv: _api._prod.service.dc2.consul }
      - { resolver: consul, srv: _api._prod.service.dc3.consul }
    retry: { attempts: 3 }
frontends:
  - { name: api, match: {}, backend: api }
`, { workers })
  return { dns, dc1, dc2, gateway }
}

for (const workers of [1, 2]) {
  test(`failover: dc1 crashes and leaves DNS under load → dc2 serves, 0 failed requests; dc1 back → traffic returns within ttl.min + 1 s; both empty → 503 (workers: ${workers})`, async (t) => {
    const { dns, dc1, dc2, gateway } = await failoverSetup(t, workers)
    const get = async (): Promise<Response> => await send(`${gateway.url}/`, { host: 'api.example.com', agent: keepAlive })
    assert.match(String((await get()).json().instance), /^dc1-/, 'dc1 serves while it has instances')
    const state = async () => (await send(`${gateway.adminUrl}/admin/state`)).json() as { backends: Array<{ name: string, failover?: { serving?: string, targets: Array<{ name: string, usable: boolean }> } }> }
    const serving = async (): Promise<string | undefined> => (await state()).backends.find((backend) => backend.name === 'api')?.failover?.serving

    let isDone = false
    const running = load(get, { concurrency: 8, until: () => isDone, maxRequests: 100_000 })
    await sleep(500)
    // dc1's instances die, and their records stay until Consul's checks remove them.
    for (const upstream of dc1) await upstream.kill()
    await sleep(1000)
    dns.setService('_api._prod.service.dc1.consul', [])
    await sleep(1000)
    assert.equal(await serving(), 'api~failover-1', 'the admin state names the target serving now')
    const dc2Before = dc2.reduce((sum, upstream) => sum + upstream.requests, 0)
    assert.ok(dc2Before > 50, 'dc2 took over')

    // dc1 comes back on the same addresses.
    const back = await Promise.all(dc1.map(async (upstream, index) => await Upstream.start(t, `dc1-back-${index}`, { port: upstream.port })))
    dns.setService('_api._prod.service.dc1.consul', records(back))
    const backAt = Date.now()
    while (back.every((upstream) => upstream.requests === 0) && Date.now() - backAt < 5000) await sleep(20)
    const returnedMs = Date.now() - backAt
    await sleep(500)
    isDone = true
    const result = await running
    assert.deepEqual(result.failures, [], `${result.failures.length} of ${result.total} failed`)
    assert.ok(returnedMs <= 250 + 1000, `traffic back on dc1 ${returnedMs} ms after it returned to DNS (ttl.min 250ms; negativeTtl is 5s)`)
    const dc2During = dc2.reduce((sum, upstream) => sum + upstream.requests, 0)
    const after = await Promise.all(Array.from({ length: 20 }, async () => String((await get()).json().instance)))
    assert.ok(after.every((instance) => instance.startsWith('dc1-back')), `all back on dc1: ${after.join(' ')}`)
    assert.equal(dc2.reduce((sum, upstream) => sum + upstream.requests, 0), dc2During, 'nothing more to dc2 once dc1 is back')
    assert.equal(await serving(), 'api')

    const metrics = (await send(`${gateway.adminUrl}/metrics`)).body
    // One name for the target everywhere (the access log, /admin/state, this label); its DNS name beside it.
    const failedOver = metric(metrics, /^srvgate_failover_requests_total\{backend="api",target="api~failover-1",discovery="_api._prod.service.dc2.consul"\} (\d+)$/m)
    assert.ok(failedOver >= dc2Before && failedOver <= dc2During, `the failover counter (${failedOver}) counts dc2's requests (${dc2Before}..${dc2During})`)
    const line = await gateway.waitForLog((entry) => entry.msg === 'request' && entry.failover === 'api~failover-1')
    assert.equal(line.backend, 'api')
    assert.equal(line.failoverDiscovery, '_api._prod.service.dc2.consul')
    const targets = (await state()).backends.find((backend) => backend.name === 'api')?.failover?.targets.map((target) => target.name)
    assert.deepEqual(targets, ['api~failover-1', 'api~failover-2'])

    dns.setService('_api._prod.service.dc1.consul', [])
    dns.setService('_api._prod.service.dc2.consul', [])
    const deadline = Date.now() + 5000
    let last = await get()
    while (last.status !== 503 && Date.now() < deadline) {
      await sleep(50)
      last = await get()
    }
    assert.equal(last.status, 503, 'dc1, dc2 and dc3 empty: no healthy instance')
    assert.equal(last.json().error, 'no_healthy_upstream')
    assert.equal(await serving(), undefined)
  })
}

test('slow start: after a scale-out the new instance\'s share rises over slowStart; a mass replacement is not slowed', async (t) => {
  const dns = await ConsulLikeDnsServer.start(t)
  const old = await service(t, dns, '_web._prod.service.consul', 'old', 3)
  const gateway = await SpawnedGateway.start(t, `
listen: { http: "127.0.0.1:\${PORT}", admin: "127.0.0.1:\${ADMIN_PORT}" }
resolvers:
  consul: { nameservers: ["${dns.address}"], ${RESOLVER} }
backends:
  web: { discovery: { resolver: consul, srv: _web._prod.service.consul }, balance: round-robin, slowStart: 6s }
frontends:
  - { name: web, match: {}, backend: web }
`, { workers: 1 })
  const get = async (): Promise<Response> => await send(`${gateway.url}/`, { host: 'www.example.com', agent: keepAlive })
  // Cold start: every instance was there from the first answer, none is held back.
  const first = await load(get, { concurrency: 4, until: () => false, maxRequests: 600 })
  for (const upstream of old) assert.ok(Math.abs((first.byInstance.get(upstream.name) ?? 0) - 200) <= 2, `${upstream.name}: an even share from the start`)

  const fresh = await Upstream.start(t, 'new-0')
  dns.setService('_web._prod.service.consul', records([...old, fresh]))
  while (fresh.requests === 0) await get()
  // Shares per second: the newcomer ramps from 10 % of its weight to all of it (a quarter) over 6 s.
  const shares: number[] = []
  for (let second = 0; second < 8; second++) {
    const until = Date.now() + 1000
    const window = await load(get, { concurrency: 4, until: () => Date.now() >= until, maxRequests: 50_000 })
    shares.push((window.byInstance.get('new-0') ?? 0) / window.total)
  }
  const rounded = shares.map((share) => share.toFixed(3)).join(' ')
  assert.ok((shares[0] as number) < 0.12, `the first second is held back: ${rounded}`)
  assert.ok((shares[3] as number) > (shares[0] as number) + 0.05, `the share rises: ${rounded}`)
  assert.ok(Math.abs((shares[7] as number) - 0.25) < 0.03, `a full quarter after slowStart: ${rounded}`)

  // A mass replacement: every instance is new at once, nobody to hold back for.
  const replacements = await Promise.all(Array.from({ length: 4 }, async (_, index) => await Upstream.start(t, `next-${index}`)))
  dns.setService('_web._prod.service.consul', records(replacements))
  while (replacements.every((upstream) => upstream.requests === 0)) await get()
  await sleep(500)
  const after = await load(get, { concurrency: 4, until: () => false, maxRequests: 800 })
  assert.deepEqual(after.failures, [])
  for (const upstream of replacements) assert.ok(Math.abs((after.byInstance.get(upstream.name) ?? 0) - 200) <= 10, `${upstream.name}: ${after.byInstance.get(upstream.name) ?? 0} of 800, not held back`)
})

test('templated split: each env splits between its own members; an env\'s emptied member sends all of that env to its other member, never another env (workers: 2)', async (t) => {
  const dns = await ConsulLikeDnsServer.start(t)
  const pr1v1 = await service(t, dns, '_web-pr-1._v1.service.consul', 'pr-1-v1', 1)
  const pr1v2 = await service(t, dns, '_web-pr-1._v2.service.consul', 'pr-1-v2', 1)
  const pr2v1 = await service(t, dns, '_web-pr-2._v1.service.consul', 'pr-2-v1', 1)
  const pr2v2 = await service(t, dns, '_web-pr-2._v2.service.consul', 'pr-2-v2', 1)
  const gateway = await SpawnedGateway.start(t, `
listen: { http: "127.0.0.1:\${PORT}", admin: "127.0.0.1:\${ADMIN_PORT}" }
resolvers:
  consul: { nameservers: ["${dns.address}"], ${RESOLVER} }
frontends:
  - name: preview
    match: { host: "{env}.preview.example.com" }
    env: { pattern: "pr-[0-9]+" }
    backend:
      template: web-{env}
      split:
        - { template: "web-{env}-v2", weight: 20, discovery: { resolver: consul, srv: "_web-{env}._v2.service.consul" } }
        - { template: "web-{env}-v1", weight: 80, discovery: { resolver: consul, srv: "_web-{env}._v1.service.consul" } }
`, { workers: 2 })
  const get = (env: string) => async (): Promise<Response> => await send(`${gateway.url}/`, { host: `${env}.preview.example.com`, agent: keepAlive })
  const first = await load(get('pr-1'), { concurrency: 4, until: () => false, maxRequests: 1000 })
  assert.deepEqual(first.failures, [])
  const canary = first.byInstance.get('pr-1-v2-0') ?? 0
  assert.ok(Math.abs(canary / first.total - 0.2) <= 0.02, `pr-1's canary share: ${canary} of ${first.total}`)
  assert.deepEqual([...first.byInstance.keys()].sort(), ['pr-1-v1-0', 'pr-1-v2-0'], 'pr-1 reaches its own instances only')

  dns.setService('_web-pr-1._v2.service.consul', [])
  await sleep(1500)
  const before = { v2: pr1v2[0]?.requests ?? 0, pr2: (pr2v1[0]?.requests ?? 0) + (pr2v2[0]?.requests ?? 0) }
  const emptied = await load(get('pr-1'), { concurrency: 4, until: () => false, maxRequests: 500 })
  assert.deepEqual(emptied.failures, [])
  assert.equal(emptied.byInstance.get('pr-1-v1-0'), 500, 'all of pr-1 to its v1')
  assert.equal(pr1v2[0]?.requests, before.v2)
  assert.equal((pr2v1[0]?.requests ?? 0) + (pr2v2[0]?.requests ?? 0), before.pr2, 'pr-2 is never reached for pr-1')
  assert.ok((pr1v1[0]?.requests ?? 0) >= 500)

  const other = await load(get('pr-2'), { concurrency: 4, until: () => false, maxRequests: 500 })
  assert.deepEqual(other.failures, [])
  assert.ok((other.byInstance.get('pr-2-v2-0') ?? 0) > 60, 'pr-2 still splits: its own canary is there')
  const metrics = (await send(`${gateway.adminUrl}/metrics`)).body
  assert.ok(metric(metrics, /^srvgate_split_requests_total\{split="web-\{env\}",backend="web-\{env\}-v2"\} (\d+)$/m) > 0, 'metric labels are the templates: bounded cardinality')
})

type StateBackend = { name: string, instances: Array<{ key: string, state: string }>, failover?: { serving?: string } }
type AdminState = { backends: StateBackend[], splits: Array<{ name: string, members: Array<{ backend: string, usable: boolean }> }> }

/** An instance whose process is gone: its port was listening, and is closed now; DNS still lists it. */
async function deadInstance (t: TestContext, name: string): Promise<Upstream> {
  const upstream = await Upstream.start(t, name)
  await upstream.kill()
  return upstream
}

for (const workers of [1, 2]) {
  test(`split 10/90 whose 90 side's only instance is dead (still in DNS): no request fails, the dead instance is ejected, its share goes to the sibling (workers: ${workers})`, async (t) => {
    const dns = await ConsulLikeDnsServer.start(t)
    const canary = await service(t, dns, '_web._v2.service.consul', 'v2', 1)
    const dead = await deadInstance(t, 'v1-0')
    dns.setService('_web._v1.service.consul', records([dead]))
    const gateway = await SpawnedGateway.start(t, `
listen: { http: "127.0.0.1:\${PORT}", admin: "127.0.0.1:\${ADMIN_PORT}" }
resolvers:
  consul: { nameservers: ["${dns.address}"], ${RESOLVER} }
backends:
  web-v1: { discovery: { resolver: consul, srv: _web._v1.service.consul } }
  web-v2: { discovery: { resolver: consul, srv: _web._v2.service.consul } }
  web-prod:
    split:
      - { backend: web-v2, weight: 10 }
      - { backend: web-v1, weight: 90 }
frontends:
  - { name: www, match: { host: www.example.com }, backend: web-prod }
`, { workers })
    const get = async (): Promise<Response> => await send(`${gateway.url}/`, { host: 'www.example.com', agent: keepAlive })
    // Before: 36 of 40 answered 502 (50 % of one instance rounds to 0 ejections; retries stayed in web-v1).
    const first = await load(get, { concurrency: 2, until: () => false, maxRequests: 40 })
    assert.deepEqual(first.failures, [], `${first.failures.length} of ${first.total} failed`)
    assert.equal(first.byInstance.get('v2-0'), 40, 'every request answered by the sibling')

    const state = (await send(`${gateway.adminUrl}/admin/state`)).json() as AdminState
    const v1 = state.backends.find((backend) => backend.name === 'web-v1')
    assert.equal(v1?.instances[0]?.key, `127.0.0.1:${dead.port}`)
    assert.equal(v1?.instances[0]?.state, 'ejected', 'the only instance is ejected: web-v2 takes its traffic')
    assert.deepEqual(state.splits[0]?.members.map((member) => [member.backend, member.usable]), [['web-v2', true], ['web-v1', false]])
    const metrics = (await send(`${gateway.adminUrl}/metrics`)).body
    assert.equal(metric(metrics, /^srvgate_outlier_ejections_total\{backend="web-v1"\} (\d+)$/m), 1)

    // Afterwards the split sends web-v1's share to web-v2 directly: no attempt on the dead instance, no retry.
    const retriesBefore = metric(metrics, /^srvgate_upstream_retries_total\{backend="web-v1",reason="connect-failure"\} (\d+)$/m)
    assert.ok(retriesBefore >= 3, `the connect failures were retried into the sibling (${retriesBefore})`)
    const after = await load(get, { concurrency: 2, until: () => false, maxRequests: 20 })
    assert.deepEqual(after.failures, [])
    const later = (await send(`${gateway.adminUrl}/metrics`)).body
    assert.equal(metric(later, /^srvgate_split_requests_total\{split="web-prod",backend="web-v2"\} (\d+)$/m) - metric(metrics, /^srvgate_split_requests_total\{split="web-prod",backend="web-v2"\} (\d+)$/m), 20, 'the whole share routed to web-v2')
    assert.equal(metric(later, /^srvgate_upstream_retries_total\{backend="web-v1",reason="connect-failure"\} (\d+)$/m), retriesBefore, 'nothing more tried on the dead instance')
    assert.equal(canary[0]?.requests, 60)
  })
}

test('failover: the head\'s only instance is dead (still in DNS): it is ejected and the failover target serves; no request fails', async (t) => {
  const dns = await ConsulLikeDnsServer.start(t)
  const dead = await deadInstance(t, 'dc1-0')
  dns.setService('_api._prod.service.dc1.consul', records([dead]))
  const dc2 = await service(t, dns, '_api._prod.service.dc2.consul', 'dc2', 1)
  const gateway = await SpawnedGateway.start(t, `
listen: { http: "127.0.0.1:\${PORT}", admin: "127.0.0.1:\${ADMIN_PORT}" }
resolvers:
  consul: { nameservers: ["${dns.address}"], ${RESOLVER} }
backends:
  api:
    discovery: { resolver: consul, srv: _api._prod.service.dc1.consul }
    failover:
      - { resolver: consul, srv: _api._prod.service.dc2.consul }
frontends:
  - { name: api, match: {}, backend: api }
`, { workers: 1 })
  const get = async (): Promise<Response> => await send(`${gateway.url}/`, { host: 'api.example.com', agent: keepAlive })
  const result = await load(get, { concurrency: 1, until: () => false, maxRequests: 10 })
  assert.deepEqual(result.failures, [])
  assert.equal(result.byInstance.get('dc2-0'), 10)
  const state = (await send(`${gateway.adminUrl}/admin/state`)).json() as AdminState
  const api = state.backends.find((backend) => backend.name === 'api')
  assert.equal(api?.instances[0]?.state, 'ejected', 'the head\'s last instance is ejected: the target takes over')
  assert.equal(api?.failover?.serving, 'api~failover-1')
  const metrics = (await send(`${gateway.adminUrl}/metrics`)).body
  const retries = metric(metrics, /^srvgate_upstream_retries_total\{backend="api",reason="connect-failure"\} (\d+)$/m)
  assert.equal(retries, 3, 'three connect failures (outlier.consecutiveFailures), then no attempt on the dead instance')
  assert.equal(dc2[0]?.requests, 10)
})

test('a backend\'s only instance is dead but still in DNS: passive health keeps it (every request a 502); an active health check takes it out (503 at once, no attempt) — the caution in README and docs/OPERATIONS.md', async (t) => {
  const dns = await ConsulLikeDnsServer.start(t)
  const dead = await deadInstance(t, 'solo-0')
  dns.setService('_solo._prod.service.consul', records([dead]))
  dns.setService('_checked._prod.service.consul', records([dead]))
  const gateway = await SpawnedGateway.start(t, `
listen: { http: "127.0.0.1:\${PORT}", admin: "127.0.0.1:\${ADMIN_PORT}" }
resolvers:
  consul: { nameservers: ["${dns.address}"], ${RESOLVER} }
backends:
  solo: { discovery: { resolver: consul, srv: _solo._prod.service.consul } }
  checked:
    discovery: { resolver: consul, srv: _checked._prod.service.consul }
    healthCheck: { interval: 200ms, timeout: 100ms, fall: 2 }
frontends:
  - { name: solo, match: { host: solo.example.com }, backend: solo }
  - { name: checked, match: { host: checked.example.com }, backend: checked }
`, { workers: 1 })
  const statuses = async (host: string): Promise<number[]> => await Promise.all(Array.from({ length: 10 }, async () => (await send(`${gateway.url}/`, { host })).status))
  // maxEjectedPercent (50) never ejects a backend's last instance: each request is a connect failure.
  assert.deepEqual(await statuses('solo.example.com'), Array(10).fill(502))
  assert.deepEqual(await statuses('solo.example.com'), Array(10).fill(502), 'still: passive health alone never leaves it')
  // The check fails twice (fall: 2) within about 2 × 200 ms: the instance is out, requests are answered without trying it.
  const deadline = Date.now() + 5000
  let last = await send(`${gateway.url}/`, { host: 'checked.example.com' })
  while (last.status !== 503 && Date.now() < deadline) {
    await sleep(100)
    last = await send(`${gateway.url}/`, { host: 'checked.example.com' })
  }
  assert.equal(last.status, 503)
  assert.equal(last.json().error, 'no_healthy_upstream')
  const attempts = async (backend: string): Promise<number> => {
    const metrics = (await send(`${gateway.adminUrl}/metrics`)).body
    return metric(metrics, new RegExp(`^srvgate_upstream_latency_seconds_count\\{backend="${backend}",outcome="connect-failure"\\} (\\d+)$`, 'm'))
  }
  assert.equal(await attempts('solo'), 20, 'one connect attempt per request to the unchecked backend')
  const attemptsBefore = await attempts('checked')
  assert.deepEqual(await statuses('checked.example.com'), Array(10).fill(503))
  assert.equal(await attempts('checked'), attemptsBefore, 'no attempt on the dead instance once the check has failed')
})

for (const workers of [1, 2]) {
  test(`templatedBackends.newPerSecond: a burst of new environment names past the bucket gets 503 + Retry-After and no DNS query; an environment alive keeps 200 (workers: ${workers})`, async (t) => {
    const dns = await ConsulLikeDnsServer.start(t)
    await service(t, dns, '_web._pr-1.service.consul', 'pr-1', 1)
    const gateway = await SpawnedGateway.start(t, `
listen: { http: "127.0.0.1:\${PORT}", admin: "127.0.0.1:\${ADMIN_PORT}" }
resolvers:
  consul: { nameservers: ["${dns.address}"], ${RESOLVER} }
templatedBackends: { newPerSecond: 2 }
frontends:
  - name: preview
    match: { host: "{env}.preview.example.com" }
    env: { pattern: "^pr-[0-9]+$" }
    backend: { template: "web-{env}", discovery: { resolver: consul, srv: "_web._{env}.service.consul" } }
`, { workers })
    const get = async (env: string): Promise<Response> => await send(`${gateway.url}/`, { host: `${env}.preview.example.com`, agent: keepAlive })
    assert.equal((await get('pr-1')).status, 200, 'pr-1 made: one of the two tokens')

    // 30 names never seen, at once, with pr-1 asked alongside.
    const names = Array.from({ length: 30 }, (_, index) => `pr-${1000 + index}`)
    const [flood, alive] = await Promise.all([
      Promise.all(names.map(async (env) => ({ env, response: await get(env) }))),
      Promise.all(Array.from({ length: 10 }, async () => await get('pr-1')))
    ])
    assert.deepEqual(alive.map((response) => response.status), Array(10).fill(200), 'an environment alive is not limited')
    const limited = flood.filter(({ response }) => response.json().error === 'template_rate_limited')
    const admitted = flood.filter(({ response }) => response.json().error !== 'template_rate_limited')
    // One token left after pr-1, plus what 2 a second adds while the burst runs.
    assert.ok(admitted.length <= 3, `${admitted.length} of 30 new names got past a bucket of 2`)
    assert.ok(limited.length >= 27)
    for (const { response } of limited) {
      assert.equal(response.status, 503)
      assert.equal(response.headers['retry-after'], '1')
      assert.deepEqual(response.json(), { error: 'template_rate_limited' })
    }
    for (const { response } of admitted) assert.equal(response.json().error, 'no_healthy_upstream', 'an admitted name is asked (NXDOMAIN)')
    const asked = new Set(dns.queries.map((query) => query.name))
    for (const { env } of limited) assert.equal(asked.has(`_web._${env}.service.consul`), false, `${env}: DNS asked nothing`)
    for (const { env } of admitted) assert.equal(asked.has(`_web._${env}.service.consul`), true)

    const metrics = (await send(`${gateway.adminUrl}/metrics`)).body
    assert.equal(metric(metrics, /^srvgate_templated_backends_refused_total\{reason="rate"\} (\d+)$/m), limited.length)
    assert.equal((await get('pr-1')).status, 200)
    // A rate, not a ban: a second later a new name is made and asked.
    await sleep(1000)
    assert.equal((await get('pr-2000')).json().error, 'no_healthy_upstream')
    assert.ok(dns.queries.some((query) => query.name === '_web._pr-2000.service.consul'))
  })
}
