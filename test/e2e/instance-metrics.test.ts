/**
 * metrics.perInstance (issue 24's "seeing per instance", as HAProxy's
 * per-server stats): with 2 workers, attempts and latency per instance in
 * /metrics, summed over the workers; an instance that leaves DNS loses its
 * series; a reload that turns it off removes them all. Off by default.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { writeFileSync, readFileSync } from 'node:fs'
import { ConsulLikeDnsServer } from '../helpers/dns-server.js'
import { Upstream } from '../helpers/upstream.js'
import { SpawnedGateway } from '../helpers/spawn-gateway.js'
import { send } from '../helpers/http.js'
import { sleep, systemClock } from '../../src/util/clock.js'

const ATTEMPTS = /^srvgate_upstream_instance_attempts_total\{backend="web",instance="127\.0\.0\.1:(\d+)",outcome="success"\} (\d+)$/gm

test('metrics.perInstance: attempts per instance summed over 2 workers; a departed instance loses its series; a reload turning it off removes them', async (t) => {
  const dns = await ConsulLikeDnsServer.start(t)
  const [a, b] = [await Upstream.start(t, 'a'), await Upstream.start(t, 'b')]
  dns.setService('_web._tcp.service.consul', [{ address: '127.0.0.1', port: a.port }, { address: '127.0.0.1', port: b.port }])
  const gateway = await SpawnedGateway.start(t, `
listen: { http: "127.0.0.1:\${PORT}", admin: "127.0.0.1:\${ADMIN_PORT}" }
metrics: { perInstance: true }
resolvers: { consul: { nameservers: ["${dns.address}"], ttl: { min: 250ms, max: 500ms } } }
backends: { web: { discovery: { resolver: consul, srv: _web._tcp.service.consul }, balance: round-robin } }
frontends: [ { name: all, match: {}, backend: web } ]
`, { workers: 2 })
  for (let index = 0; index < 20; index++) assert.equal((await send(`${gateway.url}/`, { agent: false })).status, 200)
  const counted = async (): Promise<Map<number, number>> => new Map([...(await send(`${gateway.adminUrl}/metrics`)).body.matchAll(ATTEMPTS)].map((match) => [Number(match[1]), Number(match[2])]))
  const both = await counted()
  assert.deepEqual([...both.keys()].sort(), [a.port, b.port].sort())
  assert.equal((both.get(a.port) ?? 0) + (both.get(b.port) ?? 0), 20)
  assert.equal(both.get(a.port), a.requests)
  assert.match((await send(`${gateway.adminUrl}/metrics`)).body, new RegExp(`^srvgate_upstream_instance_latency_seconds_count\\{backend="web",instance="127\\.0\\.0\\.1:${a.port}"\\} ${a.requests}$`, 'm'))

  dns.setService('_web._tcp.service.consul', [{ address: '127.0.0.1', port: a.port }])
  const deadline = systemClock.now() + 5000
  while ((await counted()).has(b.port) && systemClock.now() < deadline) await sleep(systemClock, 100)
  assert.deepEqual([...(await counted()).keys()], [a.port], 'b left DNS: its series went with it')

  writeFileSync(gateway.configPath, readFileSync(gateway.configPath, 'utf8').replace('metrics: { perInstance: true }', 'metrics: { perInstance: false }'))
  assert.equal((await send(`${gateway.adminUrl}/admin/reload`, { method: 'POST' })).status, 200)
  await send(`${gateway.url}/`)
  assert.equal((await counted()).size, 0, 'turned off: no series')
})
