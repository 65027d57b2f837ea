/**
 * The cache's rules as timelines on a manual clock (CoreDNS cache-test style):
 * each step moves time, reads, and states what the nameserver was asked and
 * what was served. The resolver under the cache is scripted; the real one is
 * exercised in test/integration/dns.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { ResolverCache, type CachePolicy } from '../../../src/dns/cache.js'
import type { Lookup, Resolver } from '../../../src/dns/resolver.js'
import type { Resolution } from '../../../src/dns/types.js'
import { DnsError, ErrorCode } from '../../../src/errors.js'
import { ManualClock } from '../../../src/util/clock.js'
import { SeededRandom } from '../../../src/util/random.js'

const POLICY: CachePolicy = { ttl: { minMs: 1000, maxMs: 30_000 }, staleForMs: 60_000, negativeTtlMs: 5000, emptyGraceMs: 2000 }
const WEB: Lookup = { kind: 'srv', name: '_web._prod.service.consul' }

type Script = Resolution | DnsError
/** A resolver that answers from a script and counts what it was asked. */
class ScriptedResolver implements Resolver {
  calls = 0
  next: Script = answer(['10.0.0.1'], 0)
  pending: Array<() => void> = []
  isHeld = false
  async resolve (): Promise<Resolution> {
    this.calls++
    if (this.isHeld) await new Promise<void>((resolve) => this.pending.push(resolve))
    const reply = this.next
    if (reply instanceof DnsError) throw reply
    return reply
  }
  release (): void { for (const resolve of this.pending.splice(0)) resolve() }
}

function answer (addresses: string[], ttlSeconds: number): Resolution {
  return {
    outcome: 'answer',
    instances: addresses.map((address) => ({ address, port: 8080, priority: 1, weight: 1, target: `${address}.addr` })),
    ttlSeconds, nameserver: '127.0.0.1:8600', transport: 'udp', tcpReason: undefined
  }
}
const NXDOMAIN: Resolution = { outcome: 'nxdomain', instances: [], ttlSeconds: undefined, nameserver: '127.0.0.1:8600', transport: 'udp', tcpReason: undefined }
const NODATA: Resolution = { ...NXDOMAIN, outcome: 'nodata' }
const SERVFAIL = new DnsError(ErrorCode.DNS_SERVFAIL, 'SERVFAIL', { nameserver: '127.0.0.1:8600', rcode: 2 })
const TIMEOUT = new DnsError(ErrorCode.DNS_TIMEOUT, 'timeout', { nameserver: '127.0.0.1:8600' })

function setup (policy: CachePolicy = POLICY, maxEntries?: number) {
  const clock = new ManualClock()
  const resolver = new ScriptedResolver()
  const cache = new ResolverCache({ resolver, policy, clock, random: new SeededRandom(1), maxEntries })
  const addresses = async (lookup: Lookup = WEB) => (await cache.lookup(lookup)).instances.map((instance) => instance.address)
  return { clock, resolver, cache, addresses }
}

/** Let background refreshes (promises) settle. */
const settle = async () => { for (let round = 0; round < 5; round++) await new Promise((resolve) => setImmediate(resolve)) }

test('TTL 0 (Consul) is clamped up to ttl.min: not a query per read', async () => {
  const { clock, resolver, cache } = setup()
  for (let read = 0; read < 100; read++) await cache.lookup(WEB)
  assert.equal(resolver.calls, 1)
  const first = await cache.lookup(WEB)
  assert.equal(first.ttlReceivedSeconds, 0)
  assert.equal(first.ttlClampedMs, 1000)
  clock.advance(1000)
  await cache.lookup(WEB)
  assert.equal(resolver.calls, 2, 'expired at ttl.min and asked again')
})

test('a long TTL is clamped down to ttl.max: not cached forever', async () => {
  const { clock, resolver, cache } = setup()
  resolver.next = answer(['10.0.0.1'], 86_400)
  assert.equal((await cache.lookup(WEB)).ttlClampedMs, 30_000)
  clock.advance(30_000)
  await cache.lookup(WEB)
  assert.equal(resolver.calls, 2)
})

test('refresh ahead: a read in the last 20-30% of the TTL refreshes in the background and is served at once', async () => {
  const { clock, resolver, cache, addresses } = setup()
  resolver.next = answer(['10.0.0.1'], 10)
  await cache.lookup(WEB)
  clock.advance(6900)
  await cache.lookup(WEB)
  assert.equal(resolver.calls, 1, 'no refresh before 70% of the TTL')
  clock.advance(1100)
  resolver.next = answer(['10.0.0.2'], 10)
  resolver.isHeld = true
  assert.deepEqual(await addresses(), ['10.0.0.1'], 'served from the cache while refreshing')
  assert.deepEqual(await addresses(), ['10.0.0.1'])
  assert.equal(resolver.calls, 2, 'one refresh in flight, however many reads')
  resolver.release()
  await settle()
  assert.deepEqual(await addresses(), ['10.0.0.2'])
  assert.equal(resolver.calls, 2)
})

test('concurrent lookups of one name are coalesced into one query', async () => {
  const { resolver, cache } = setup()
  resolver.isHeld = true
  const reads = Array.from({ length: 10_000 }, async () => await cache.lookup(WEB))
  await settle()
  resolver.release()
  const results = await Promise.all(reads)
  assert.equal(resolver.calls, 1)
  assert.equal(results.length, 10_000)
  assert.ok(results.every((result) => result.instances[0]?.address === '10.0.0.1'))
})

test('NXDOMAIN and empty answers are cached for negativeTtl', async () => {
  for (const negative of [NXDOMAIN, NODATA]) {
    const { clock, resolver, cache } = setup()
    resolver.next = negative
    assert.equal((await cache.lookup(WEB)).outcome, negative.outcome)
    clock.advance(4999)
    await cache.lookup(WEB)
    assert.equal(resolver.calls, 1)
    clock.advance(1)
    await cache.lookup(WEB)
    assert.equal(resolver.calls, 2)
  }
})

test('a brief NXDOMAIN does not empty a known set before emptyGrace', async () => {
  const { clock, resolver, cache, addresses } = setup()
  await cache.lookup(WEB)
  clock.advance(1000)
  resolver.next = NXDOMAIN
  const during = await cache.lookup(WEB)
  assert.deepEqual(during.instances.map((instance) => instance.address), ['10.0.0.1'])
  assert.equal(during.isInEmptyGrace, true)
  clock.advance(1000)
  assert.deepEqual(await addresses(), ['10.0.0.1'], 'still within the 2 s grace')
  assert.equal(resolver.calls, 3, 're-asked every ttl.min during the grace')
  clock.advance(1000)
  const after = await cache.lookup(WEB)
  assert.equal(after.outcome, 'nxdomain', 'emptied once the grace is over')
  assert.deepEqual(after.instances, [])
})

test('an NXDOMAIN blip inside the grace leaves the set as it was', async () => {
  const { clock, resolver, cache } = setup()
  await cache.lookup(WEB)
  clock.advance(1000)
  resolver.next = NXDOMAIN
  await cache.lookup(WEB)
  clock.advance(1000)
  resolver.next = answer(['10.0.0.1', '10.0.0.2'], 0)
  const back = await cache.lookup(WEB)
  assert.equal(back.isInEmptyGrace, false)
  assert.equal(back.instances.length, 2)
  clock.advance(1000)
  resolver.next = NXDOMAIN
  assert.equal((await cache.lookup(WEB)).isInEmptyGrace, true, 'a new blip starts a new grace')
})

test('on SERVFAIL or timeout the last good answer is served, marked stale, for staleFor', async () => {
  for (const failure of [SERVFAIL, TIMEOUT]) {
    const { clock, resolver, cache } = setup()
    await cache.lookup(WEB)
    resolver.next = failure
    clock.advance(1000)
    const stale = await cache.lookup(WEB)
    assert.equal(stale.isStale, true)
    assert.equal(stale.lastError, failure)
    assert.deepEqual(stale.instances.map((instance) => instance.address), ['10.0.0.1'])
    // Good until t=1 s; stale until 1 s + 60 s.
    clock.advance(59_000)
    assert.equal((await cache.lookup(WEB)).isStale, true)
    clock.advance(999)
    assert.equal((await cache.lookup(WEB)).isStale, true)
    clock.advance(1)
    await assert.rejects(cache.lookup(WEB), (error: unknown) => error === failure, 'nothing served past staleFor')
  }
})

test('while DNS fails it is asked again no more often than ttl.min', async () => {
  const { clock, resolver, cache } = setup()
  await cache.lookup(WEB)
  resolver.next = SERVFAIL
  clock.advance(1000)
  for (let read = 0; read < 50; read++) await cache.lookup(WEB)
  assert.equal(resolver.calls, 2)
  clock.advance(999)
  for (let read = 0; read < 50; read++) await cache.lookup(WEB)
  assert.equal(resolver.calls, 2)
  clock.advance(1)
  await cache.lookup(WEB)
  assert.equal(resolver.calls, 3)
  resolver.next = answer(['10.0.0.9'], 0)
  clock.advance(1000)
  const recovered = await cache.lookup(WEB)
  assert.equal(recovered.isStale, false)
  assert.equal(recovered.lastError, undefined)
  assert.deepEqual(recovered.instances.map((instance) => instance.address), ['10.0.0.9'])
})

test('a failure with nothing to fall back on is an error, itself cached for ttl.min', async () => {
  const { clock, resolver, cache } = setup()
  resolver.next = TIMEOUT
  await assert.rejects(cache.lookup(WEB), (error: unknown) => error === TIMEOUT)
  await assert.rejects(cache.lookup(WEB), (error: unknown) => error === TIMEOUT)
  assert.throws(() => cache.peek(WEB), (error: unknown) => error === TIMEOUT)
  assert.equal(resolver.calls, 1)
  clock.advance(1000)
  resolver.next = answer(['10.0.0.1'], 0)
  assert.equal((await cache.lookup(WEB)).outcome, 'answer')
})

test('peek is a map lookup: undefined before the first answer and after expiry', async () => {
  const { clock, resolver, cache } = setup()
  assert.equal(cache.peek(WEB), undefined)
  await cache.lookup(WEB)
  assert.equal(cache.peek(WEB)?.instances.length, 1)
  clock.advance(1000)
  assert.equal(cache.peek(WEB), undefined)
  assert.equal(resolver.calls, 1, 'peek never waits on DNS')
})

test('the cache is bounded: the least recently read names go first', async () => {
  const { cache } = setup(POLICY, 100)
  for (let index = 0; index < 1000; index++) await cache.lookup({ kind: 'srv', name: `_web._pr-${index}.service.consul` })
  assert.equal(cache.size, 100)
  assert.equal(cache.peek({ kind: 'srv', name: '_web._pr-0.service.consul' }), undefined)
  assert.notEqual(cache.peek({ kind: 'srv', name: '_web._pr-999.service.consul' }), undefined)
})

test('entries() shows TTL as received and clamped, age and staleness', async () => {
  const { clock, resolver, cache } = setup()
  await cache.lookup(WEB)
  clock.advance(400)
  const [entry] = cache.entries()
  assert.equal(entry?.key, 'SRV _web._prod.service.consul')
  assert.equal(entry?.ttlReceivedSeconds, 0)
  assert.equal(entry?.ttlClampedMs, 1000)
  assert.equal(entry?.ageMs, 400)
  assert.equal(entry?.isStale, false)
  resolver.next = SERVFAIL
  clock.advance(600)
  await cache.lookup(WEB)
  assert.equal(cache.entries()[0]?.isStale, true)
})

test('entries() keeps a name while its refresh is in flight (the admin state never loses it for a round trip)', async () => {
  const { clock, resolver, cache } = setup()
  await cache.lookup(WEB)
  resolver.isHeld = true
  clock.advance(1000)
  // The discovery watcher's tick: a refresh the resolver holds.
  const refreshed = cache.refresh(WEB)
  await settle()
  assert.equal(resolver.pending.length, 1, 'a refresh is in flight')
  assert.deepEqual(cache.entries().map((entry) => entry.key), ['SRV _web._prod.service.consul'])
  resolver.release()
  await refreshed
  assert.deepEqual(cache.entries().map((entry) => entry.key), ['SRV _web._prod.service.consul'])
})

test('SRV and A/AAAA+port lookups of one name are separate entries', async () => {
  const { resolver, cache } = setup()
  await cache.lookup({ kind: 'srv', name: 'billing.legacy.internal' })
  await cache.lookup({ kind: 'address', name: 'billing.legacy.internal', port: 8080 })
  assert.equal(resolver.calls, 2)
  assert.equal(cache.size, 2)
})

test('negative answers outlive a forgotten name (a reclaimed templated backend) and cannot be evicted by positive ones', async () => {
  const { clock, resolver, cache } = setup(POLICY, 3)
  resolver.next = NXDOMAIN
  const names = Array.from({ length: 10 }, (_, index): Lookup => ({ kind: 'srv', name: `_web._pr-${index}.service.consul` }))
  for (const round of [1, 2, 3]) {
    for (const lookup of names) {
      assert.equal((await cache.lookup(lookup)).outcome, 'nxdomain', `round ${round}`)
      cache.delete(lookup)
    }
  }
  assert.equal(resolver.calls, 10, 'one query per name while negativeTtl lasts, not one per read')
  clock.advance(5000)
  await cache.lookup(names[0] as Lookup)
  assert.equal(resolver.calls, 11, 'asked again once negativeTtl has passed')
  resolver.next = answer(['10.0.0.9'], 0)
  clock.advance(5000)
  assert.equal((await cache.lookup(names[0] as Lookup)).outcome, 'answer', 'a positive answer replaces the negative one')
})
