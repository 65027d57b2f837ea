/**
 * The resolver against BIND9 `named`, an SRV source that is not ours: large
 * answers (BIND sets TC, unlike Consul), IPv4 and IPv6, and records changed
 * live with nsupdate while a cache keeps resolving.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { BindServer, ZONE, srvRecords } from '../../helpers/bind-server.js'
import { makeResolver } from '../../helpers/resolver.js'
import { ResolverCache } from '../../../src/dns/cache.js'
import { systemClock } from '../../../src/util/clock.js'
import { systemRandom } from '../../../src/util/random.js'

const WEB = `_web._tcp.${ZONE}`

test('BIND: a 200-instance SRV answer has TC set and comes whole over TCP, IPv4 and IPv6', async (t) => {
  const bind = await BindServer.start(t, srvRecords('_web._tcp', 200))
  for (const nameserver of [bind.address, bind.address6]) {
    const { resolver } = makeResolver([nameserver], { timeoutMs: 1000 })
    const resolution = await resolver.resolve({ kind: 'srv', name: WEB })
    assert.equal(resolution.instances.length, 200, nameserver)
    assert.equal(resolution.transport, 'tcp')
    assert.equal(resolution.tcpReason, 'tc-bit')
    assert.ok(resolution.instances.every((instance) => instance.address.startsWith('10.2.')))
  }
})

test('BIND: NXDOMAIN, NOERROR with no records, and an A/AAAA+port lookup', async (t) => {
  const bind = await BindServer.start(t, ['legacy 0 IN A 10.3.0.1', 'legacy 0 IN AAAA fd00::3'])
  const { resolver } = makeResolver([bind.address], { timeoutMs: 1000 })
  assert.equal((await resolver.resolve({ kind: 'srv', name: `_none._tcp.${ZONE}` })).outcome, 'nxdomain')
  assert.equal((await resolver.resolve({ kind: 'srv', name: `legacy.${ZONE}` })).outcome, 'nodata')
  const legacy = await resolver.resolve({ kind: 'address', name: `legacy.${ZONE}`, port: 8080 })
  assert.deepEqual(legacy.instances.map((instance) => `${instance.address}:${instance.port}`).sort(), ['10.3.0.1:8080', 'fd00::3:8080'])
})

test('BIND + nsupdate: records changed while the cache runs are followed within the clamped TTL', async (t) => {
  const bind = await BindServer.start(t, srvRecords('_web._tcp', 2))
  const { resolver } = makeResolver([bind.address], { timeoutMs: 1000 })
  const cache = new ResolverCache({
    resolver, clock: systemClock, random: systemRandom,
    policy: { ttl: { minMs: 200, maxMs: 1000 }, staleForMs: 10_000, negativeTtlMs: 200, emptyGraceMs: 0 }
  })
  const ports = async () => (await cache.lookup({ kind: 'srv', name: WEB })).instances.map((instance) => instance.port).sort()
  assert.deepEqual(await ports(), [8000, 8001])

  bind.update([`update add ${WEB} 0 IN SRV 1 1 9000 new.${ZONE}.`, `update add new.${ZONE} 0 IN A 10.2.9.9`])
  assert.deepEqual(await ports(), [8000, 8001], 'still the cached answer inside ttl.min')
  await waitFor(async () => (await ports()).includes(9000), 2000)

  bind.update([`update delete ${WEB} IN SRV 1 1 8000 i0.${ZONE}.`])
  await waitFor(async () => !(await ports()).includes(8000), 2000)
  assert.deepEqual(await ports(), [8001, 9000])
})

async function waitFor (condition: () => Promise<boolean>, withinMs: number): Promise<void> {
  const deadline = Date.now() + withinMs
  while (Date.now() < deadline) {
    if (await condition()) return
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  assert.fail(`condition not met within ${withinMs} ms`)
}
