/**
 * Several worker processes (issue 9): one discovery and one health view
 * whatever the worker count, a worker's death costs only what it had in
 * flight, reloads apply everywhere or nowhere, /metrics adds the workers up.
 * srvgate runs through its CLI; workers are real processes.
 */
import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync, writeFileSync } from 'node:fs'
import { Agent } from 'node:http'
import { ConsulLikeDnsServer, freePort } from '../helpers/dns-server.js'
import { Upstream } from '../helpers/upstream.js'
import { SpawnedGateway } from '../helpers/spawn-gateway.js'
import { load, send } from '../helpers/http.js'

const WEB = '_web._prod.service.consul'
const sleep = async (ms: number) => { await new Promise((resolve) => setTimeout(resolve, ms)) }

type WorkersState = { workers: { configured: number, running: number, replaced: number, pids: number[] } }

function config (dns: ConsulLikeDnsServer, extra = ''): string {
  return `
listen: { http: "127.0.0.1:\${PORT}", admin: "127.0.0.1:\${ADMIN_PORT}" }
resolvers: { consul: { nameservers: ["${dns.address}"], ttl: { min: 250ms, max: 1s }, timeout: 300ms, attempts: 2 } }
backends:
  web-prod: { discovery: { resolver: consul, srv: ${WEB} }, retry: { attempts: 2 } }
frontends:
  - { name: preview, match: { host: "{env}.preview.example.com" }, env: { pattern: "pr-[0-9]+" }, backend: { template: "web-{env}", discovery: { resolver: consul, srv: "_web._{env}.service.consul" } } }
  - { name: prod, match: { host: www.example.com }, backend: web-prod }
${extra}`
}

async function workersOf (gateway: SpawnedGateway): Promise<WorkersState['workers']> {
  return ((await send(`${gateway.adminUrl}/admin/state`)).json() as unknown as WorkersState).workers
}

/** The workers once `count` serve again (a replacement takes a few hundred ms to start). */
async function untilRunning (gateway: SpawnedGateway, count: number, withinMs = 5000): Promise<WorkersState['workers']> {
  const deadline = Date.now() + withinMs
  for (;;) {
    const workers = await workersOf(gateway)
    if (workers.running === count || Date.now() > deadline) return workers
    await sleep(50)
  }
}

/** Requests on fresh connections: the primary hands connections to the workers in turn. */
async function spread (gateway: SpawnedGateway, host: string, count: number, path = '/'): Promise<number[]> {
  const statuses: number[] = []
  for (let index = 0; index < count; index++) statuses.push((await send(`${gateway.url}${path}`, { host, agent: false })).status)
  return statuses
}

/** Process ids that wrote access-log lines for this host. */
function servingPids (gateway: SpawnedGateway, host: string): Set<unknown> {
  return new Set(gateway.logs.filter((line) => line.msg === 'request' && line.host === host).map((line) => line.pid))
}

/**
 * One keep-alive connection on each of two different workers (the kernel
 * chooses which worker accepts; connections are opened until both are held).
 */
async function connectionPerWorker (t: TestContext, gateway: SpawnedGateway, host: string): Promise<Agent[]> {
  const byPid = new Map<unknown, Agent>()
  for (let attempt = 0; attempt < 40 && byPid.size < 2; attempt++) {
    const agent = new Agent({ keepAlive: true, maxSockets: 1 })
    t.after(() => { agent.destroy() })
    const requestId = `pin-${attempt}`
    await send(`${gateway.url}/`, { host, agent, headers: { 'x-request-id': requestId } })
    const line = await gateway.waitForLog((entry) => entry.msg === 'request' && entry.requestId === requestId)
    if (!byPid.has(line.pid)) byPid.set(line.pid, agent)
    else agent.destroy()
  }
  assert.equal(byPid.size, 2, 'a connection on each worker')
  return [...byPid.values()]
}

async function twoInstances (t: TestContext, dns: ConsulLikeDnsServer): Promise<Upstream[]> {
  const upstreams = await Promise.all(['a', 'b'].map(async (name) => await Upstream.start(t, name)))
  dns.setService(WEB, upstreams.map((upstream) => ({ address: '127.0.0.1', port: upstream.port })))
  return upstreams
}

test('workers: 2 in the file, SRVGATE_WORKERS wins; the admin state names them; /metrics adds both workers\' counters', async (t) => {
  const dns = await ConsulLikeDnsServer.start(t)
  await twoInstances(t, dns)
  const gateway = await SpawnedGateway.start(t, config(dns, 'workers: 3'), { env: { SRVGATE_WORKERS: '2' } })
  const workers = await workersOf(gateway)
  assert.equal(workers.configured, 2)
  assert.equal(workers.running, 2)
  assert.equal(workers.pids.length, 2)
  // Forked with the young generation capped (cluster/worker-v8.ts); the primary is not.
  for (const pid of workers.pids) assert.ok(readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').includes('--max-semi-space-size=4'), `worker ${pid}`)
  assert.ok(!readFileSync(`/proc/${gateway.process.pid as number}/cmdline`, 'utf8').includes('--max-semi-space-size'))
  assert.deepEqual(await spread(gateway, 'www.example.com', 10), Array(10).fill(200))
  await gateway.waitForLog(() => gateway.logs.filter((line) => line.msg === 'request').length >= 10)
  assert.deepEqual(servingPids(gateway, 'www.example.com'), new Set(workers.pids), 'both workers served requests')
  const metrics = (await send(`${gateway.adminUrl}/metrics`)).body
  assert.match(metrics, /^srvgate_http_requests_total\{frontend="prod",backend="web-prod",status_class="2xx",code="200"\} 10$/m)
  assert.match(metrics, /^srvgate_http_request_duration_seconds_count\{frontend="prod",backend="web-prod",status_class="2xx"\} 10$/m)
  // What only the primary does is counted once: one build_info, one reload gauge.
  assert.match(metrics, /^srvgate_config_last_reload_successful 1$/m)
  assert.equal(metrics.match(/^srvgate_build_info\{/gm)?.length, 1)
  // Event-loop delay and GC pauses are exposed (prom-client's aggregators per metric).
  assert.match(metrics, /^nodejs_eventloop_lag_p99_seconds \d/m)
  // A young process may not have collected yet: the family is there, its samples come with the first GC.
  assert.match(metrics, /^# TYPE nodejs_gc_duration_seconds histogram$/m)
  const state = (await send(`${gateway.adminUrl}/admin/state`)).json() as { backends: Array<{ name: string, requests: number }> }
  assert.equal(state.backends.find((backend) => backend.name === 'web-prod')?.requests, 10)

  const bad = await SpawnedGateway.spawn(t, config(dns), { env: { SRVGATE_WORKERS: 'many' } })
  assert.equal(await bad.exited(), 1)
  assert.match(bad.stderr, /SRVGATE_WORKERS: must be a whole number from 1 to 256, not "many"/)
})

test('the same DNS queries with 1 and 2 workers: discovery and templated backends run once, in the primary', async (t) => {
  const counts: number[] = []
  for (const workers of [1, 2]) {
    const dns = await ConsulLikeDnsServer.start(t)
    await twoInstances(t, dns)
    dns.setService('_web._pr-1.service.consul', [{ address: '127.0.0.1', port: (await Upstream.start(t, 'pr-1')).port }])
    dns.setService('_web._pr-2.service.consul', [{ address: '127.0.0.1', port: (await Upstream.start(t, 'pr-2')).port }])
    // TTLs longer than the test: every query counted is a first resolution.
    const gateway = await SpawnedGateway.start(t, config(dns).replace('ttl: { min: 250ms, max: 1s }', 'ttl: { min: 30s, max: 60s }'), { workers })
    assert.deepEqual(await spread(gateway, 'www.example.com', 6), Array(6).fill(200))
    assert.deepEqual(await spread(gateway, 'pr-1.preview.example.com', 6), Array(6).fill(200))
    assert.deepEqual(await spread(gateway, 'pr-2.preview.example.com', 6), Array(6).fill(200))
    await sleep(500)
    if (workers === 2) {
      await gateway.waitForLog(() => gateway.logs.filter((line) => line.msg === 'request').length >= 18)
      assert.equal(servingPids(gateway, 'pr-1.preview.example.com').size, 2, 'both workers needed the templated backend')
    }
    const metrics = (await send(`${gateway.adminUrl}/metrics`)).body
    const counted = [...metrics.matchAll(/^srvgate_dns_queries_total\{[^}]*\} (\d+)$/gm)].reduce((sum, match) => sum + Number(match[1]), 0)
    assert.equal(counted, dns.queries.length, 'the metric counts what the DNS server saw')
    counts.push(dns.queries.length)
  }
  assert.equal(counts[1], counts[0], `DNS queries with 1 worker: ${counts[0]}, with 2: ${counts[1]}`)
})

test('one ejection decided from failures seen by different workers', async (t) => {
  const dns = await ConsulLikeDnsServer.start(t)
  const [bad, good] = await twoInstances(t, dns) as [Upstream, Upstream]
  // Four failures in a row eject; hash on a header pins a key to one instance.
  const gateway = await SpawnedGateway.start(t, config(dns).replace('retry: { attempts: 2 } }', 'retry: { attempts: 0 }, balance: hash, hashOn: "header:x-key", outlier: { consecutiveFailures: 4, ejectFor: 60s } }'), { workers: 2 })
  const [first, second] = await connectionPerWorker(t, gateway, 'www.example.com') as [Agent, Agent]
  // A key that lands on the instance about to break.
  let key = ''
  for (let index = 0; index < 50 && key === ''; index++) {
    const answer = await send(`${gateway.url}/`, { host: 'www.example.com', headers: { 'x-key': `k${index}` }, agent: first })
    if (answer.body.includes(`"instance":"${bad.name}"`)) key = `k${index}`
  }
  assert.notEqual(key, '', 'some key hashes to that instance')
  bad.behaviour = (_request, response) => { response.writeHead(500).end('broken'); return true }
  // Two failures on each worker: neither alone reaches four.
  for (const agent of [first, second, first, second]) {
    assert.equal((await send(`${gateway.url}/`, { host: 'www.example.com', headers: { 'x-key': key }, agent })).status, 500)
  }
  await sleep(300)
  const metrics = (await send(`${gateway.adminUrl}/metrics`)).body
  assert.match(metrics, /^srvgate_outlier_ejections_total\{backend="web-prod"\} 1$/m)
  const state = (await send(`${gateway.adminUrl}/admin/state`)).json() as { backends: Array<{ name: string, instances: Array<{ port: number, state: string }> }> }
  assert.equal(state.backends[0]?.instances.find((instance) => instance.port === bad.port)?.state, 'ejected')
  // Applied everywhere: the same key now goes to the other instance on both workers.
  const before = good.requests
  for (const agent of [first, second, first, second]) {
    assert.equal((await send(`${gateway.url}/`, { host: 'www.example.com', headers: { 'x-key': key }, agent })).status, 200)
  }
  assert.equal(good.requests, before + 4)
})

test('a worker killed with SIGKILL under load costs at most what it had in flight, and is replaced at once', async (t) => {
  const dns = await ConsulLikeDnsServer.start(t)
  await twoInstances(t, dns)
  const gateway = await SpawnedGateway.start(t, config(dns), { workers: 2 })
  const [victim] = (await workersOf(gateway)).pids
  assert.ok(victim !== undefined)
  let isDone = false
  let killedAt = 0
  const failedAt: number[] = []
  const concurrency = 8
  const get = async () => {
    const answer = await send(`${gateway.url}/`, { host: 'www.example.com' }).catch((error: Error) => ({ status: 0, body: error.message }))
    if (answer.status !== 200) failedAt.push(Date.now())
    return answer as Awaited<ReturnType<typeof send>>
  }
  const running = load(get, { concurrency, until: () => isDone, maxRequests: 50_000 })
  await sleep(700)
  killedAt = Date.now()
  process.kill(victim, 'SIGKILL')
  await sleep(2500)
  isDone = true
  const result = await running
  assert.ok(result.total > 300, `a real load: ${result.total} requests`)
  assert.ok(failedAt.length <= concurrency, `${failedAt.length} failed; at most the ${concurrency} a worker can have in flight`)
  assert.ok(failedAt.every((at) => at >= killedAt && at < killedAt + 1000), 'failures only at the moment of the kill')
  const workers = await untilRunning(gateway, 2)
  assert.equal(workers.replaced, 1)
  assert.ok(!workers.pids.includes(victim))
  await gateway.waitForLog((line) => line.msg === 'worker exited: replacing it' && line.signal === 'SIGKILL')
  assert.deepEqual(await spread(gateway, 'www.example.com', 6), Array(6).fill(200))
})

test('a reload applies in every worker or in none: a worker that cannot prepare it is replaced with the running configuration', async (t) => {
  const dns = await ConsulLikeDnsServer.start(t)
  await twoInstances(t, dns)
  const gateway = await SpawnedGateway.start(t, config(dns), { workers: 2 })
  const staging = await Upstream.start(t, 'staging')
  dns.setService('_web._staging.service.consul', [{ address: '127.0.0.1', port: staging.port }])
  const rendered = SpawnedGateway.render(config(dns).replace('frontends:', `frontends:
  - { name: staging, match: { host: staging.example.com }, backend: web-staging }`).replace('backends:', `backends:
  web-staging: { discovery: { resolver: consul, srv: _web._staging.service.consul } }`), gateway.port, gateway.adminPort)
  writeFileSync(gateway.configPath, rendered)
  const [stopped] = (await workersOf(gateway)).pids
  assert.ok(stopped !== undefined)
  process.kill(stopped, 'SIGSTOP')
  t.after(() => { try { process.kill(stopped, 'SIGKILL') } catch {} })
  const refused = await send(`${gateway.adminUrl}/admin/reload`, { method: 'POST', timeoutMs: 20_000 })
  assert.equal(refused.status, 422, refused.body)
  assert.match(refused.body, /1 of 2 workers could not apply it .*did not answer within 10 s.*every worker keeps the previous configuration/)
  // From the answer on, the killed worker is not counted, whether or not its exit was seen yet;
  // asking for the state meanwhile (the primary asks each serving worker for figures) is safe.
  const rightAfter = await workersOf(gateway)
  assert.ok(!rightAfter.pids.includes(stopped), `${stopped} is still listed: ${JSON.stringify(rightAfter)}`)
  const workers = await untilRunning(gateway, 2)
  assert.equal(workers.replaced, 1)
  assert.equal(workers.running, 2)
  assert.ok(!workers.pids.includes(stopped))
  // The other worker kept the old configuration, and the new one started from it: no staging frontend anywhere.
  assert.deepEqual(await spread(gateway, 'staging.example.com', 4), [404, 404, 404, 404])
  assert.match((await send(`${gateway.adminUrl}/metrics`)).body, /^srvgate_config_last_reload_successful 0$/m)
  // With every worker answering, the same file applies everywhere.
  const applied = await send(`${gateway.adminUrl}/admin/reload`, { method: 'POST' })
  assert.equal(applied.status, 200, applied.body)
  assert.deepEqual(await spread(gateway, 'staging.example.com', 6), Array(6).fill(200))
  assert.equal(servingPids(gateway, 'staging.example.com').size, 2)
})

test('templated backends at their bound across workers: a worker refused while another holds the last one asks again on its next request', async (t) => {
  const dns = await ConsulLikeDnsServer.start(t)
  await twoInstances(t, dns)
  for (const env of ['pr-1', 'pr-2']) dns.setService(`_web._${env}.service.consul`, [{ address: '127.0.0.1', port: (await Upstream.start(t, env)).port }])
  const gateway = await SpawnedGateway.start(t, `${config(dns)}\ntemplatedBackends: { max: 1, idleTimeout: 60s }\n`, { workers: 2 })
  const [first, second] = await connectionPerWorker(t, gateway, 'www.example.com') as [Agent, Agent]
  assert.equal((await send(`${gateway.url}/`, { host: 'pr-1.preview.example.com', agent: first })).status, 200)
  const holder = (await gateway.waitForLog((line) => line.msg === 'request' && line.host === 'pr-1.preview.example.com')).pid as number
  // The primary's one templated backend is held by the first worker: the second is refused.
  const refused = await send(`${gateway.url}/`, { host: 'pr-2.preview.example.com', agent: second })
  assert.equal(refused.status, 503)
  assert.equal(refused.json().error, 'no_healthy_upstream')
  // The holder goes away (its holds with it): the next request for pr-2 gets it made, not a remembered refusal.
  process.kill(holder, 'SIGKILL')
  let status = 0
  for (let attempt = 0; attempt < 20 && status !== 200; attempt++) {
    await sleep(100)
    status = (await send(`${gateway.url}/`, { host: 'pr-2.preview.example.com', agent: second })).status
  }
  assert.equal(status, 200, 'the refused environment is asked for again, not kept as failed')
  assert.match((await send(`${gateway.url}/`, { host: 'pr-2.preview.example.com', agent: second })).body, /"instance":"pr-2"/)
})

test('readiness waits for every listener: at the first /readyz 200 (polled from spawn), the public listener and the DNS face over UDP and TCP answer, with 2 workers', async (t) => {
  const { freePort } = await import('../helpers/dns-server.js')
  const { Packet, decode, queryBytes, tcpExchange, udpExchange } = await import('../helpers/dns-client.js')
  const dns = await ConsulLikeDnsServer.start(t)
  const upstream = await Upstream.start(t, 'ready')
  dns.setService(WEB, [{ address: '127.0.0.1', port: upstream.port }])
  const facePort = await freePort()
  const gateway = await SpawnedGateway.spawn(t, config(dns, `
dns:
  listen: ["127.0.0.1:${facePort}"]
  zone: srvgate.internal
  names: { web: { backend: web-prod } }
`), { workers: 2 })
  // As a load balancer would: /readyz as often as it answers, from the moment the process starts.
  const agent = new Agent({ keepAlive: true, maxSockets: 1 })
  t.after(() => { agent.destroy() })
  const deadline = Date.now() + 20_000
  let polls = 0
  for (;;) {
    assert.ok(Date.now() < deadline && polls < 100_000, `not ready within 20 s (${polls} polls): ${gateway.stderr}`)
    polls++
    const status = await send(`${gateway.adminUrl}/readyz`, { agent, timeoutMs: 1000 }).then((response) => response.status, () => 0)
    if (status === 200) break
    if (status === 0) await sleep(2)
  }
  // Asked at once, in parallel: a query the face is not yet bound for is lost (UDP) or refused (TCP).
  const query = queryBytes('web.srvgate.internal', Packet.TYPE.A)
  const [udp, tcp, http] = await Promise.all([
    udpExchange(facePort, query, 1000),
    tcpExchange(facePort, query, 1000),
    send(`${gateway.url}/`, { host: 'www.example.com', agent: false, timeoutMs: 2000 }).then((response) => response.status, (error: Error) => error.message)
  ])
  assert.ok(udp !== undefined, `the DNS face did not answer over UDP when /readyz said ready (after ${polls} polls)`)
  assert.ok(tcp !== undefined, 'the DNS face did not answer over TCP when /readyz said ready')
  assert.deepEqual(decode(udp).answers.map((answer) => (answer as { address?: string }).address), ['127.0.0.1'])
  assert.deepEqual(decode(tcp).answers.map((answer) => (answer as { address?: string }).address), ['127.0.0.1'])
  assert.equal(http, 200, 'the public listener answers')
  // The log line operators and scripts wait for comes with readiness, not before it: every listener is named in it.
  const listening = await gateway.waitForLog((line) => line.msg === 'srvgate listening')
  assert.deepEqual(listening.dns, [{ host: '127.0.0.1', port: facePort }])
})

test('a worker that replaces one that died keeps what the others bound at start: a reload that moved listen.http (restart needed) does not open the new port', async (t) => {
  const dns = await ConsulLikeDnsServer.start(t)
  await twoInstances(t, dns)
  const gateway = await SpawnedGateway.start(t, config(dns), { workers: 2 })
  const moved = await freePort()
  writeFileSync(gateway.configPath, readFileSync(gateway.configPath, 'utf8').replace(`http: "127.0.0.1:${gateway.port}"`, `http: "127.0.0.1:${moved}"`))
  const reload = (await send(`${gateway.adminUrl}/admin/reload`, { method: 'POST' })).json() as { restartNeeded: string[] }
  assert.deepEqual(reload.restartNeeded, ['listen.http'])
  const before = (await workersOf(gateway)).pids
  const victim = before[0] as number
  process.kill(victim, 'SIGKILL')
  await gateway.waitForLog((line) => line.msg === 'worker exited: replacing it')
  const workers = await untilRunning(gateway, 2)
  assert.equal(workers.replaced, 1)
  assert.ok(!workers.pids.includes(victim))
  // The new port: nobody listens (the replacement would have bound it alone).
  const refused = await send(`http://127.0.0.1:${moved}/`, { host: 'www.example.com', agent: false, timeoutMs: 2000 }).then((answer) => `answered ${answer.status}`, (error: NodeJS.ErrnoException) => error.code)
  assert.equal(refused, 'ECONNREFUSED')
  // The port of the start: the replacement answers there with the other worker.
  const successor = workers.pids.find((pid) => !before.includes(pid))
  assert.ok(successor !== undefined)
  for (let round = 0; round < 20 && !servingPids(gateway, 'www.example.com').has(successor); round++) {
    assert.deepEqual(new Set(await spread(gateway, 'www.example.com', 10)), new Set([200]))
  }
  assert.ok(servingPids(gateway, 'www.example.com').has(successor), 'the replacement serves on the port of the start')
})
