/** Passive health, priority groups, and instances leaving DNS, through buildGateway() on real sockets. */
import { test } from 'node:test'
import { connect } from 'node:net'
import assert from 'node:assert/strict'
import { ConsulLikeDnsServer } from '../../helpers/dns-server.js'
import { Upstream, type UpstreamReply } from '../../helpers/upstream.js'
import { startInProcess, until } from '../../helpers/gateway.js'
import { ManualClock } from '../../../src/util/clock.js'
import { send } from '../../helpers/http.js'

const WEB = '_web._prod.service.consul'
const sleep = async (ms: number) => { await new Promise((resolve) => setTimeout(resolve, ms)) }

function config (dns: ConsulLikeDnsServer, backend: string): string {
  return `
listen: { http: 127.0.0.1:0 }
resolvers: { consul: { nameservers: ["${dns.address}"], ttl: { min: 200ms, max: 1s } } }
backends:
  web: { discovery: { resolver: consul, srv: ${WEB} }, ${backend} }
frontends:
  - { name: all, match: {}, backend: web }
`
}

const instanceOf = async (url: string) => {
  const response = await send(`${url}/`, { host: 'www.example.com' })
  return response.status === 200 ? (response.json() as unknown as UpstreamReply).instance : `status ${response.status}`
}

test('consecutive 5xx eject an instance; the ejection survives DNS refreshes; traffic returns after ejectFor', async (t) => {
  const dns = await ConsulLikeDnsServer.start(t)
  const bad = await Upstream.start(t, 'bad')
  const good = await Upstream.start(t, 'good')
  bad.behaviour = (_request, response) => { response.statusCode = 500; response.end('{}'); return true }
  dns.setService(WEB, [{ address: '127.0.0.1', port: bad.port }, { address: '127.0.0.1', port: good.port }])
  const clock = new ManualClock()
  const { url } = await startInProcess(t, config(dns, 'balance: round-robin, outlier: { consecutiveFailures: 3, ejectFor: 1500ms }'), { clock })
  const first = await Promise.all(Array.from({ length: 6 }, async () => await instanceOf(url)))
  assert.equal(first.filter((seen) => seen === 'status 500').length, 3, first.join(','))
  bad.requests = 0
  // Several DNS refreshes (ttl.min 200ms) later, the instance is still out: a timeline, no sleeping.
  const queries = dns.queries.length
  for (let round = 0; round < 10; round++) {
    assert.equal(await instanceOf(url), 'good')
    await clock.advanceAndSettle(100)
  }
  await until(() => dns.queries.length >= queries + 3)
  assert.equal(bad.requests, 0)
  await clock.advanceAndSettle(600)
  bad.behaviour = undefined
  const after = await Promise.all(Array.from({ length: 4 }, async () => await instanceOf(url)))
  assert.ok(after.includes('bad'), `back after ejectFor: ${after.join(',')}`)
})

test('maxEjectedPercent keeps half the instances in, even when all fail', async (t) => {
  const dns = await ConsulLikeDnsServer.start(t)
  const upstreams = await Promise.all(['a', 'b'].map(async (name) => await Upstream.start(t, name)))
  for (const upstream of upstreams) upstream.behaviour = (_request, response) => { response.statusCode = 500; response.end('{}'); return true }
  dns.setService(WEB, upstreams.map((upstream) => ({ address: '127.0.0.1', port: upstream.port })))
  const { url, gateway } = await startInProcess(t, config(dns, 'balance: round-robin, outlier: { consecutiveFailures: 1, ejectFor: 10s, maxEjectedPercent: 50 }'))
  for (let round = 0; round < 10; round++) await instanceOf(url)
  const backend = gateway.state.registry.get('web')
  assert.ok(backend !== undefined)
  assert.equal(backend.hasUsableInstance(), true)
  const now = performance.now()
  const ejected = backend.set.instances.filter((instance) => backend.health.peek(instance.key)?.isEjected(now) === true)
  assert.equal(ejected.length, 1)
})

test('RFC 2782 priority: backups take traffic only when every primary is out', async (t) => {
  const dns = await ConsulLikeDnsServer.start(t)
  const primary = await Upstream.start(t, 'primary')
  const backup = await Upstream.start(t, 'backup')
  dns.setService(WEB, [{ address: '127.0.0.1', port: primary.port, priority: 1 }, { address: '127.0.0.1', port: backup.port, priority: 2 }])
  const { url } = await startInProcess(t, config(dns, 'balance: weighted'))
  const seen = await Promise.all(Array.from({ length: 10 }, async () => await instanceOf(url)))
  assert.deepEqual([...new Set(seen)], ['primary'])
  await primary.kill()
  const failover = await Promise.all(Array.from({ length: 5 }, async () => await instanceOf(url)))
  assert.deepEqual([...new Set(failover)], ['backup'], 'connect failures fail over to the backup group')
})

test('an instance leaving DNS gets no new request; its in-flight request finishes', async (t) => {
  const dns = await ConsulLikeDnsServer.start(t)
  const leaving = await Upstream.start(t, 'leaving')
  const staying = await Upstream.start(t, 'staying')
  leaving.behaviour = (request, response) => {
    if (request.url !== '/slow') return false
    setTimeout(() => { response.end(JSON.stringify({ instance: 'leaving', slow: true })) }, 1200)
    return true
  }
  dns.setService(WEB, [{ address: '127.0.0.1', port: leaving.port, weight: 100 }, { address: '127.0.0.1', port: staying.port, weight: 1 }])
  const clock = new ManualClock()
  const { url, gateway } = await startInProcess(t, config(dns, 'balance: weighted'), { clock })
  const inFlight = send(`${url}/slow`, { host: 'www.example.com' })
  await until(() => leaving.requests > 0 || gateway.state.registry.get('web')?.inFlight === 1)
  dns.setService(WEB, [{ address: '127.0.0.1', port: staying.port }])
  // The watcher's next reads (ttl.min 200ms) ask DNS again; then the answer lands.
  await clock.advanceAndSettle(600)
  await until(() => gateway.state.registry.get('web')?.set.instances.length === 1)
  leaving.requests = 0
  const after = await Promise.all(Array.from({ length: 10 }, async () => await instanceOf(url)))
  assert.deepEqual([...new Set(after)], ['staying'])
  const slow = await inFlight
  assert.equal(slow.status, 200)
  assert.equal(slow.json().instance, 'leaving')
})

test('balance: hash keeps a user on one instance', async (t) => {
  const dns = await ConsulLikeDnsServer.start(t)
  const upstreams = await Promise.all(['h1', 'h2', 'h3'].map(async (name) => await Upstream.start(t, name)))
  dns.setService(WEB, upstreams.map((upstream) => ({ address: '127.0.0.1', port: upstream.port })))
  const { url } = await startInProcess(t, config(dns, 'balance: hash, hashOn: "header:x-user-id"'))
  const spread = new Set<string>()
  // The instances' ports differ run to run, and with them the ring: with 6 users, all six fell on one
  // instance in a CI run. With 24 users, the chance that all of them share one instance is negligible.
  for (const user of Array.from({ length: 24 }, (_, index) => `user-${index}`)) {
    const seen = new Set<string>()
    for (let round = 0; round < 5; round++) {
      const response = await send(`${url}/`, { host: 'www.example.com', headers: { 'x-user-id': user } })
      seen.add(String(response.json().instance))
    }
    assert.equal(seen.size, 1, user)
    spread.add([...seen][0] as string)
  }
  assert.ok(spread.size >= 2, 'users spread over instances')
})

test('a client that breaks off its upload does not get the instance ejected', async (t) => {
  const dns = await ConsulLikeDnsServer.start(t)
  const target = await Upstream.start(t, 'target')
  dns.setService(WEB, [{ address: '127.0.0.1', port: target.port }, { address: '127.0.0.1', port: (await Upstream.start(t, 'other')).port }])
  const { url, gateway } = await startInProcess(t, config(dns, 'balance: round-robin, outlier: { consecutiveFailures: 1, ejectFor: 30s, maxEjectedPercent: 100 }'))
  const { port } = new URL(url)
  for (let round = 0; round < 4; round++) {
    await new Promise<void>((resolve) => {
      const socket = connect(Number(port), '127.0.0.1', () => {
        socket.write('POST /upload HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\nContent-Length: 1000000\r\n\r\n')
        socket.write(Buffer.alloc(64 * 1024, 1))
        setTimeout(() => { socket.destroy(); resolve() }, 150)
      })
      socket.on('error', () => resolve())
    })
  }
  await sleep(200)
  const backend = gateway.state.registry.get('web')
  const now = performance.now()
  const hurt = backend?.set.instances.filter((instance) => (backend.health.peek(instance.key)?.consecutiveFailures ?? 0) > 0 || backend.health.peek(instance.key)?.isEjected(now) === true)
  assert.deepEqual(hurt?.map((instance) => instance.key), [])
})
