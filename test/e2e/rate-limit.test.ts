/**
 * A frontend's rateLimit through the CLI with two workers (issue 24): the
 * limit is the gateway's, not each worker's. 100 quick requests on new
 * connections (spread by the kernel over both workers) let about burst +
 * rate × elapsed through, not twice that; the rest get 429 with
 * Retry-After, are never forwarded, and are logged. header:NAME keys are
 * apart; a frontend without rateLimit is untouched.
 */
import { test } from 'node:test'
import { execFileSync } from 'node:child_process'
import assert from 'node:assert/strict'
import { ConsulLikeDnsServer } from '../helpers/dns-server.js'
import { Upstream } from '../helpers/upstream.js'
import { SpawnedGateway } from '../helpers/spawn-gateway.js'
import { webBehindDns } from '../helpers/web-behind-dns.js'
import { send } from '../helpers/http.js'
import { RedisServer } from '../helpers/redis-server.js'

test('rateLimit holds for the whole gateway across 2 workers: 10/s burst 10 lets ~10 of 100 quick requests through, the rest 429 with Retry-After; header keys apart', async (t) => {
  const { upstream, config } = await webBehindDns(t)
  const gateway = await SpawnedGateway.start(t, config(`
frontends:
  - { name: api, match: { host: api.example.com }, backend: web, rateLimit: { requestsPerSecond: 10, burst: 10 } }
  - { name: keyed, match: { host: keyed.example.com }, backend: web, rateLimit: { requestsPerSecond: 1, burst: 2, key: "header:X-Api-Key" } }
  - { name: open, match: {}, backend: web }
`), { workers: 2 })
  const started = performance.now()
  const statuses: number[] = []
  const retryAfters = new Set<string>()
  // Ten at a time, each on a new connection: both workers take some.
  for (let round = 0; round < 10; round++) {
    const answers = await Promise.all(Array.from({ length: 10 }, async () => await send(`${gateway.url}/x`, { host: 'api.example.com', agent: false })))
    for (const answer of answers) {
      statuses.push(answer.status)
      if (answer.status === 429) {
        retryAfters.add(String(answer.headers['retry-after']))
        assert.deepEqual(answer.json(), { error: 'rate_limited' })
      }
    }
  }
  const elapsedS = (performance.now() - started) / 1000
  const through = statuses.filter((status) => status === 200).length
  assert.equal(through + statuses.filter((status) => status === 429).length, 100)
  assert.ok(through >= 10 && through <= 10 + Math.ceil(10 * elapsedS) + 1, `${through} through in ${elapsedS.toFixed(2)} s: the limit is the gateway's, not per worker (20+)`)
  assert.deepEqual([...retryAfters], ['1'])
  assert.equal(upstream.requests, through, 'a refused request is never forwarded')
  const line = await gateway.waitForLog((entry) => entry.msg === 'request' && entry.status === 429)
  assert.deepEqual([line.frontend, line.error, line.errorDetail], ['api', 'SG_ERR_RATE_LIMITED', 'api: rateLimit spent'])

  const keyed = async (key: string | undefined): Promise<number> => (await send(`${gateway.url}/`, { host: 'keyed.example.com', agent: false, headers: key === undefined ? {} : { 'x-api-key': key } })).status
  assert.deepEqual([await keyed('a'), await keyed('a'), await keyed('a')], [200, 200, 429])
  assert.deepEqual([await keyed('b'), await keyed('b'), await keyed('b')], [200, 200, 429], 'another key, its own bucket')
  assert.deepEqual([await keyed(undefined), await keyed(undefined), await keyed(undefined)], [200, 200, 429], 'no header: one bucket for all such requests')
  assert.equal((await send(`${gateway.url}/`, { host: 'other.example.com' })).status, 200, 'no rateLimit: untouched')
})

test('rateLimit.store.redis: two gateways spend from one bucket in Debian\'s redis-server; with Redis down each falls back to its own limit (fail open), logged and counted', async (t) => {
  const redis = await RedisServer.start(t)
  const dns = await ConsulLikeDnsServer.start(t)
  const upstream = await Upstream.start(t, 'web')
  dns.setService('_web._tcp.service.consul', [{ address: '127.0.0.1', port: upstream.port }])
  const config = `
listen: { http: "127.0.0.1:\${PORT}", admin: "127.0.0.1:\${ADMIN_PORT}" }
resolvers: { consul: { nameservers: ["${dns.address}"] } }
backends: { web: { discovery: { resolver: consul, srv: _web._tcp.service.consul } } }
frontends:
  - { name: api, match: {}, backend: web, rateLimit: { requestsPerSecond: 0.5, burst: 4, store: { redis: { url: "${redis.url}", timeout: 200ms } } } }
`
  const gateways = [await SpawnedGateway.start(t, config, { workers: 1 }), await SpawnedGateway.start(t, config, { workers: 1 })]
  const statuses = async (count: number): Promise<number[]> => {
    const seen: number[] = []
    for (let index = 0; index < count; index++) seen.push((await send(`${(gateways[index % 2] as SpawnedGateway).url}/`, { agent: false })).status)
    return seen
  }
  const shared = await statuses(12)
  assert.equal(shared.filter((status) => status === 200).length, 4, `one bucket of 4 for both replicas: ${shared.join(' ')}`)
  assert.equal(shared.filter((status) => status === 429).length, 8)

  redis.stop()
  // Each gateway's own limit now: burst 4 each (their own buckets are untouched so far).
  const alone = await statuses(12)
  assert.equal(alone.filter((status) => status === 200).length, 8, `fail open to each replica's own limit: ${alone.join(' ')}`)
  for (const gateway of gateways) {
    await gateway.waitForLog((line) => typeof line.msg === 'string' && line.msg.startsWith('rateLimit: Redis could not decide'))
    const metrics = await send(`${gateway.adminUrl}/metrics`)
    const failures = Number(/^srvgate_rate_limit_store_failures_total (\d+)/m.exec(metrics.body)?.[1])
    assert.ok(failures >= 6, `counted: ${failures}`)
  }
})

test('rateLimit.store.redis stalled (SIGSTOP): requests are decided here without waiting on it each, and none piles up for Redis to replay when it wakes', async (t) => {
  const redis = await RedisServer.start(t)
  const { config } = await webBehindDns(t)
  const gateway = await SpawnedGateway.start(t, config(`
frontends:
  - { name: api, match: {}, backend: web, rateLimit: { requestsPerSecond: 1000, burst: 1000, store: { redis: { url: "${redis.url}", timeout: 50ms } } } }
`), { workers: 1 })
  assert.equal((await send(`${gateway.url}/`)).status, 200)
  const scripts = (): number => Number(/cmdstat_(?:evalsha|eval):calls=(\d+)/.exec(execFileSync('redis-cli', ['-p', String(redis.port), 'INFO', 'commandstats'], { encoding: 'utf8' }))?.[1] ?? 0)
  const before = scripts()
  redis.pause()
  const started = performance.now()
  const answers = await Promise.all(Array.from({ length: 300 }, async (_, index) => await send(`${gateway.url}/?n=${index}`)))
  const elapsedMs = performance.now() - started
  redis.resume()
  assert.ok(answers.every((answer) => answer.status === 200), 'fail open: the local limit (1000 burst) lets them through')
  assert.ok(elapsedMs < 5000, `300 requests in ${elapsedMs.toFixed(0)} ms: not 50 ms each in a row`)
  await new Promise((resolve) => setTimeout(resolve, 300))
  const replayed = scripts() - before
  // At most MAX_IN_FLIGHT (64) were sent before the first timeout; after it, none for a second.
  assert.ok(replayed <= 64, `Redis ran ${replayed} scripts after it woke, not one per request of the stall`)
})
