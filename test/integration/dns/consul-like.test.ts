/**
 * The resolver against the Consul-like test server on loopback: real UDP and
 * TCP, IPv4 and IPv6, and every way an answer can be cut, forged or missing.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createSocket } from 'node:dgram'
import { Packet } from 'dns2'
import { ConsulLikeDnsServer, freePort } from '../../helpers/dns-server.js'
import { RecordingObserver, address, makeResolver, manyInstances } from '../../helpers/resolver.js'
import { ResolverCache, TargetAddressCache } from '../../../src/dns/cache.js'
import { DnsResolver } from '../../../src/dns/resolver.js'
import { DnsTransport } from '../../../src/dns/transport.js'
import { ManualClock } from '../../../src/util/clock.js'
import { DnsError } from '../../../src/errors.js'
import { systemClock } from '../../../src/util/clock.js'
import { systemRandom } from '../../../src/util/random.js'

const WEB = '_web._prod.service.consul'
const SRV = { kind: 'srv', name: WEB } as const

function addresses (resolution: { instances: ReadonlyArray<{ address: string, port: number }> }): string[] {
  return resolution.instances.map((instance) => `${instance.address}:${instance.port}`)
}

test('a 200-instance service comes back whole: Consul cut the UDP answer silently, TCP brings the rest', async (t) => {
  const server = await ConsulLikeDnsServer.start(t)
  server.setService(WEB, manyInstances(200))
  // The stand-in Consul cuts its answer by encoding it over and over (dns2): 100-500 ms on a busy
  // box the first time. The cut is what is tested here, not a nameserver's speed.
  const { resolver } = makeResolver([server.address], { timeoutMs: 3000 })
  const resolution = await resolver.resolve(SRV)
  assert.equal(resolution.instances.length, 200)
  assert.equal(resolution.transport, 'tcp')
  assert.equal(resolution.tcpReason, 'near-size-limit')
  assert.deepEqual(new Set(addresses(resolution)), new Set(manyInstances(200).map((instance) => `${instance.address}:${instance.port}`)))
  assert.deepEqual(server.queries.map((query) => query.transport), ['udp', 'tcp'])
  assert.ok(server.queries.every((query) => query.hadOpt), 'every query carries an EDNS0 OPT record')
})

test('with a small EDNS payload the silent cut is still detected', async (t) => {
  const server = await ConsulLikeDnsServer.start(t)
  server.setService(WEB, manyInstances(40))
  const { resolver } = makeResolver([server.address], { ednsPayload: 1232 })
  const resolution = await resolver.resolve(SRV)
  assert.equal(resolution.instances.length, 40)
  assert.equal(resolution.transport, 'tcp')
})

test('a small service stays on UDP: shuffled answers, TTL 0, addresses from the additional section', async (t) => {
  const server = await ConsulLikeDnsServer.start(t)
  server.setService(WEB, manyInstances(5))
  const { resolver } = makeResolver([server.address])
  const first = await resolver.resolve(SRV)
  const second = await resolver.resolve(SRV)
  assert.equal(first.transport, 'udp')
  assert.equal(first.ttlSeconds, 0)
  assert.deepEqual(addresses(first), addresses(second), 'shuffled answers give one sorted instance set')
  assert.equal(first.instances.length, 5)
  assert.ok(server.queries.every((query) => query.type === Packet.TYPE.SRV), 'no A/AAAA query: the additional section was used')
})

test('SRV priority and weight come through, lowest priority first', async (t) => {
  const server = await ConsulLikeDnsServer.start(t)
  server.setService(WEB, [
    { address: '10.0.0.3', port: 80, priority: 2, weight: 1 },
    { address: '10.0.0.1', port: 80, priority: 1, weight: 10 },
    { address: '10.0.0.2', port: 80, priority: 1, weight: 90 }
  ])
  const { resolver } = makeResolver([server.address])
  const resolution = await resolver.resolve(SRV)
  assert.deepEqual(resolution.instances.map((instance) => [instance.address, instance.priority, instance.weight]),
    [['10.0.0.2', 1, 90], ['10.0.0.1', 1, 10], ['10.0.0.3', 2, 1]])
})

test('duplicate address:port records: the best priority, then the largest weight, whatever the answer order', async (t) => {
  const server = await ConsulLikeDnsServer.start(t)
  // Two records for one instance (registered twice, or a node name and an .addr. name), Consul-shuffled.
  server.setService(WEB, [
    { address: '10.0.0.1', port: 80, priority: 5, weight: 100, node: 'a' },
    { address: '10.0.0.1', port: 80, priority: 1, weight: 10, node: 'b' },
    { address: '10.0.0.1', port: 80, priority: 1, weight: 30, node: 'c' },
    { address: '10.0.0.2', port: 80, priority: 2, weight: 1, node: 'd' }
  ])
  const { resolver } = makeResolver([server.address])
  for (let round = 0; round < 20; round++) {
    const resolution = await resolver.resolve(SRV)
    assert.deepEqual(resolution.instances.map((instance) => [instance.address, instance.priority, instance.weight]),
      [['10.0.0.1', 1, 30], ['10.0.0.2', 2, 1]], `round ${round}`)
  }
})

test('targets left out of the additional section are cached by name: refreshing the SRV name does not ask them again', async (t) => {
  const server = await ConsulLikeDnsServer.start(t, { omitAdditional: true })
  server.setService(WEB, Array.from({ length: 30 }, (_, index) => ({ address: `10.0.1.${index}`, port: 80, node: `n${index}` })))
  const clock = new ManualClock()
  const targets = new TargetAddressCache({ ttl: { minMs: 5000, maxMs: 300_000 } }, clock)
  const resolver = new DnsResolver({ nameservers: [address(server.address)], timeoutMs: 300, attempts: 1, ednsPayload: 4096 }, new DnsTransport(new RecordingObserver()), targets)
  const [first, second] = await Promise.all([resolver.resolve(SRV), resolver.resolve(SRV)])
  assert.equal(first.instances.length, 30)
  assert.equal(second.instances.length, 30)
  const countAddressQueries = (): number => server.queries.filter((query) => query.type === Packet.TYPE.A || query.type === Packet.TYPE.AAAA).length
  assert.equal(countAddressQueries(), 30, 'two refreshes at once: each target asked once (coalesced)')
  for (let round = 0; round < 5; round++) await resolver.resolve(SRV)
  assert.equal(countAddressQueries(), 30, 'within targetTtl.min: no target asked again')
  clock.advance(5001)
  await resolver.resolve(SRV)
  assert.equal(countAddressQueries(), 60, 'past the TTL: asked again')
  assert.equal(targets.size, 30)
})

test('<hex>.addr.<dc>.consul targets are decoded without a query', async (t) => {
  const server = await ConsulLikeDnsServer.start(t, { addrTargets: true, omitAdditional: true })
  server.setService(WEB, [{ address: '127.0.0.1', port: 9001 }, { address: '::1', port: 9002 }])
  const { resolver } = makeResolver([server.address])
  const resolution = await resolver.resolve(SRV)
  assert.deepEqual(addresses(resolution).sort(), ['127.0.0.1:9001', '::1:9002'])
  assert.equal(server.queries.length, 1)
})

test('a target missing from the additional section is resolved through the same nameservers', async (t) => {
  const server = await ConsulLikeDnsServer.start(t, { omitAdditional: true })
  server.setService(WEB, [{ address: '10.0.0.1', port: 80 }, { address: 'fd00::2', port: 81 }])
  const { resolver } = makeResolver([server.address])
  const resolution = await resolver.resolve(SRV)
  assert.deepEqual(addresses(resolution).sort(), ['10.0.0.1:80', 'fd00::2:81'])
  const types = server.queries.map((query) => Packet.TYPE_NAME[query.type]).sort()
  assert.deepEqual(types, ['A', 'A', 'AAAA', 'SRV'], 'A for both targets, AAAA for the one with no A record')
})

test('NXDOMAIN (no healthy instance), NOERROR with no records, and records are three outcomes', async (t) => {
  const server = await ConsulLikeDnsServer.start(t)
  server.setService(WEB, [])
  server.setAddresses('billing.legacy.internal', ['10.9.0.1', 'fd00::9'])
  const { resolver } = makeResolver([server.address])
  assert.equal((await resolver.resolve(SRV)).outcome, 'nxdomain')
  assert.equal((await resolver.resolve({ kind: 'srv', name: 'billing.legacy.internal' })).outcome, 'nodata')
  const legacy = await resolver.resolve({ kind: 'address', name: 'billing.legacy.internal', port: 8080 })
  assert.equal(legacy.outcome, 'answer')
  assert.deepEqual(addresses(legacy).sort(), ['10.9.0.1:8080', 'fd00::9:8080'])
})

test('an IPv6 nameserver works over UDP and TCP', async (t) => {
  const server = await ConsulLikeDnsServer.start(t, { host: '::1' })
  server.setService(WEB, manyInstances(200))
  server.setService('small.service.consul', manyInstances(2))
  const { resolver } = makeResolver([server.address])
  assert.equal(server.address.startsWith('[::1]:'), true)
  const small = await resolver.resolve({ kind: 'srv', name: 'small.service.consul' })
  assert.equal(small.transport, 'udp')
  const large = await resolver.resolve(SRV)
  assert.equal(large.transport, 'tcp')
  assert.equal(large.instances.length, 200)
})

test('a TC bit sends the query to TCP', async (t) => {
  const server = await ConsulLikeDnsServer.start(t, { silentTruncation: false })
  server.setService(WEB, manyInstances(3))
  server.tamper = (_request, answer, transport) => {
    if (transport === 'tcp') return undefined
    const cut = Packet.parse(answer.toBuffer())
    cut.header.tc = 1
    cut.answers = []
    cut.additionals = []
    return [cut]
  }
  const { resolver } = makeResolver([server.address])
  const resolution = await resolver.resolve(SRV)
  assert.equal(resolution.transport, 'tcp')
  assert.equal(resolution.tcpReason, 'tc-bit')
  assert.equal(resolution.instances.length, 3)
})

/** Forged answers of every kind, each sent before (or instead of) the genuine one. */
const FORGERIES: Array<[string, (answer: InstanceType<typeof Packet>) => Buffer, string]> = [
  ['spoofed ID', (answer) => { const forged = Packet.parse(answer.toBuffer()); forged.header.id = (forged.header.id + 1) & 0xffff; return poisoned(forged) }, 'id-mismatch'],
  ['wrong question', (answer) => { const forged = Packet.parse(answer.toBuffer()); (forged.questions[0] as { name: string }).name = '_web._staging.service.consul'; return poisoned(forged) }, 'question-mismatch'],
  ['QR=0', (answer) => { const forged = Packet.parse(answer.toBuffer()); forged.header.qr = 0; return poisoned(forged) }, 'not-a-response'],
  ['garbage bytes', () => Buffer.from('\u0000\u0001garbage that is no DNS message'), 'not-a-response']
]

/** The answer with its records pointed at an attacker's address. */
function poisoned (packet: InstanceType<typeof Packet>): Buffer {
  for (const record of packet.additionals) if (record.type === Packet.TYPE.A) record.address = '6.6.6.6'
  return packet.toBuffer()
}

for (const [name, forge, reason] of FORGERIES) {
  test(`${name}: a forged answer racing the genuine one is rejected, counted, and the genuine one used`, async (t) => {
    const server = await ConsulLikeDnsServer.start(t)
    server.setService(WEB, [{ address: '10.0.0.1', port: 80 }])
    server.tamper = (_request, answer) => [forge(answer), answer]
    const { resolver, observer } = makeResolver([server.address])
    const resolution = await resolver.resolve(SRV)
    assert.deepEqual(addresses(resolution), ['10.0.0.1:80'])
    assert.deepEqual(observer.rejections.map((rejection) => rejection.reason), [reason])
  })

  test(`${name}: a nameserver that only sends forgeries times out, and the next nameserver answers`, async (t) => {
    const liar = await ConsulLikeDnsServer.start(t)
    const honest = await ConsulLikeDnsServer.start(t)
    for (const server of [liar, honest]) server.setService(WEB, [{ address: '10.0.0.1', port: 80 }])
    liar.tamper = (_request, answer) => [forge(answer)]
    const { resolver, observer } = makeResolver([liar.address, honest.address], { timeoutMs: 200 })
    const resolution = await resolver.resolve(SRV)
    assert.deepEqual(addresses(resolution), ['10.0.0.1:80'])
    assert.equal(resolution.nameserver, honest.address)
    assert.deepEqual(observer.queries.map((query) => [query.nameserver, query.outcome]), [[liar.address, 'timeout'], [honest.address, 'noerror']])
    assert.equal(observer.rejections.length, 1)
  })
}

test('an answer from another source port is never seen (connected socket), the genuine one is used', async (t) => {
  const server = await ConsulLikeDnsServer.start(t)
  server.setService(WEB, [{ address: '10.0.0.1', port: 80 }])
  const forger = createSocket('udp4')
  await new Promise<void>((resolve) => forger.bind(0, '127.0.0.1', resolve))
  t.after(() => forger.close())
  server.tamper = (_request, answer, transport, client) => {
    if (transport === 'udp') forger.send(poisoned(Packet.parse(answer.toBuffer())), client.port, client.address)
    return [answer]
  }
  const { resolver } = makeResolver([server.address])
  for (let round = 0; round < 20; round++) assert.deepEqual(addresses(await resolver.resolve(SRV)), ['10.0.0.1:80'])
})

test('a UDP answer cut short is rejected, counted, and the query asked over TCP', async (t) => {
  const server = await ConsulLikeDnsServer.start(t)
  server.setService(WEB, manyInstances(3))
  server.tamper = (_request, answer, transport) => transport === 'udp' ? [answer.toBuffer().subarray(0, 80)] : undefined
  const { resolver, observer } = makeResolver([server.address])
  const resolution = await resolver.resolve(SRV)
  assert.equal(resolution.transport, 'tcp')
  assert.equal(resolution.tcpReason, 'udp-answer-malformed')
  assert.equal(resolution.instances.length, 3)
  assert.deepEqual(observer.rejections.map((rejection) => rejection.reason), ['truncated-packet'])
})

test('an oversized UDP answer (more than the advertised payload) is rejected, counted, and asked over TCP', async (t) => {
  const server = await ConsulLikeDnsServer.start(t, { silentTruncation: false })
  server.setService(WEB, manyInstances(60))
  server.tamper = (_request, answer, transport, client) => {
    if (transport === 'tcp') return undefined
    server.sendRawUdp(answer.toBuffer(), client)
    return []
  }
  const { resolver, observer } = makeResolver([server.address], { ednsPayload: 1232 })
  const resolution = await resolver.resolve(SRV)
  assert.equal(resolution.transport, 'tcp')
  assert.equal(resolution.instances.length, 60)
  assert.deepEqual(observer.rejections.map((rejection) => rejection.reason), ['oversized'])
})

test('a TCP answer with a wrong ID is rejected: the next nameserver is asked', async (t) => {
  const liar = await ConsulLikeDnsServer.start(t)
  const honest = await ConsulLikeDnsServer.start(t)
  for (const server of [liar, honest]) server.setService(WEB, manyInstances(200))
  liar.tamper = (_request, answer, transport) => {
    if (transport === 'udp') return undefined
    answer.header.id = (answer.header.id + 1) & 0xffff
    return [answer]
  }
  const { resolver, observer } = makeResolver([liar.address, honest.address])
  const resolution = await resolver.resolve(SRV)
  assert.equal(resolution.nameserver, honest.address)
  assert.equal(resolution.instances.length, 200)
  assert.deepEqual(observer.rejections.map((rejection) => [rejection.transport, rejection.reason]), [['tcp', 'id-mismatch']])
})

test('a TCP nameserver that accepts and never answers is cut off at the timeout', async (t) => {
  const server = await ConsulLikeDnsServer.start(t)
  server.setService(WEB, manyInstances(200))
  server.tamper = (_request, answer, transport) => transport === 'tcp' ? [] : [answer]
  const { resolver } = makeResolver([server.address], { timeoutMs: 300, attempts: 1 })
  const started = performance.now()
  await assert.rejects(resolver.resolve(SRV), (error: unknown) => error instanceof DnsError && error.code === 'SG_ERR_DNS_TIMEOUT')
  assert.ok(performance.now() - started < 1500)
})

test('a nameserver that never answers: timeout, then failover to the second', async (t) => {
  const silent = await ConsulLikeDnsServer.start(t)
  const second = await ConsulLikeDnsServer.start(t)
  second.setService(WEB, [{ address: '10.0.0.2', port: 80 }])
  silent.tamper = () => []
  const { resolver, observer } = makeResolver([silent.address, second.address], { timeoutMs: 200 })
  const resolution = await resolver.resolve(SRV)
  assert.deepEqual(addresses(resolution), ['10.0.0.2:80'])
  assert.equal(observer.queries[0]?.outcome, 'timeout')
})

test('a nameserver that is down (port closed) fails over at once, not at the timeout', async (t) => {
  const down = `127.0.0.1:${await freePort()}`
  const up = await ConsulLikeDnsServer.start(t)
  up.setService(WEB, [{ address: '10.0.0.2', port: 80 }])
  const { resolver, observer } = makeResolver([down, up.address], { timeoutMs: 2000 })
  const started = performance.now()
  const resolution = await resolver.resolve(SRV)
  assert.ok(performance.now() - started < 1000, 'ICMP port unreachable is seen by the connected socket')
  assert.equal(resolution.nameserver, up.address)
  assert.equal(observer.queries[0]?.outcome, 'unreachable')
})

test('SERVFAIL fails over; when every attempt fails the last error is thrown', async (t) => {
  const failing = await ConsulLikeDnsServer.start(t)
  const good = await ConsulLikeDnsServer.start(t)
  good.setService(WEB, [{ address: '10.0.0.2', port: 80 }])
  failing.isFailing = true
  const { resolver } = makeResolver([failing.address, good.address])
  assert.equal((await resolver.resolve(SRV)).nameserver, good.address)
  good.isFailing = true
  await assert.rejects(resolver.resolve(SRV), (error: unknown) => error instanceof DnsError && error.code === 'SG_ERR_DNS_SERVFAIL' && error.rcode === 2)
})

test('attempts bound the queries, in nameserver order, never all at once', async (t) => {
  const first = await ConsulLikeDnsServer.start(t)
  const second = await ConsulLikeDnsServer.start(t)
  first.tamper = () => []
  second.tamper = () => []
  const { resolver, observer } = makeResolver([first.address, second.address], { timeoutMs: 100, attempts: 3 })
  await assert.rejects(resolver.resolve(SRV), (error: unknown) => error instanceof DnsError && error.code === 'SG_ERR_DNS_TIMEOUT')
  assert.deepEqual(observer.queries.map((query) => query.nameserver), [first.address, second.address, first.address])
  assert.equal(first.queries.length + second.queries.length, 3)
})

test('10,000 concurrent cached lookups of one name send one query', async (t) => {
  const server = await ConsulLikeDnsServer.start(t)
  server.setService(WEB, manyInstances(3))
  // Making 10,000 lookups keeps this process (and the in-process server) busy: a roomy timeout.
  const { resolver } = makeResolver([server.address], { timeoutMs: 3000 })
  const cache = new ResolverCache({ resolver, clock: systemClock, random: systemRandom, policy: { ttl: { minMs: 5000, maxMs: 30_000 }, staleForMs: 60_000, negativeTtlMs: 5000, emptyGraceMs: 2000 } })
  const results = await Promise.all(Array.from({ length: 10_000 }, async () => await cache.lookup(SRV)))
  assert.ok(results.every((result) => result.instances.length === 3))
  assert.equal(server.queries.length, 1)
})

test('the cache serves the last good answer while the DNS server is stopped, and follows it when back', async (t) => {
  const server = await ConsulLikeDnsServer.start(t)
  server.setService(WEB, [{ address: '10.0.0.1', port: 80 }])
  const { resolver } = makeResolver([server.address], { timeoutMs: 100, attempts: 1 })
  const cache = new ResolverCache({ resolver, clock: systemClock, random: systemRandom, policy: { ttl: { minMs: 100, maxMs: 1000 }, staleForMs: 5000, negativeTtlMs: 100, emptyGraceMs: 100 } })
  assert.equal((await cache.lookup(SRV)).isStale, false)
  const port = server.port
  await server.stop()
  await new Promise((resolve) => setTimeout(resolve, 150))
  const stale = await cache.lookup(SRV)
  assert.equal(stale.isStale, true)
  assert.deepEqual(addresses(stale), ['10.0.0.1:80'])
  await server.listen(port)
  server.setService(WEB, [{ address: '10.0.0.7', port: 80 }])
  await new Promise((resolve) => setTimeout(resolve, 150))
  const fresh = await cache.lookup(SRV)
  assert.equal(fresh.isStale, false)
  assert.deepEqual(addresses(fresh), ['10.0.0.7:80'])
})

test('random bytes from the network never crash the resolver: every failure is a DnsError', async (t) => {
  const server = await ConsulLikeDnsServer.start(t)
  server.setService(WEB, manyInstances(3))
  let state = 12345
  const next = (): number => { state = (state * 1103515245 + 12345) & 0x7fffffff; return state }
  server.tamper = (request, answer) => {
    const bytes = next() % 3 === 0 ? answer.toBuffer() : Buffer.from(Array.from({ length: next() % 400 }, () => next() & 0xff))
    // Keep the ID right half the time, so the bytes get past the first check.
    if (bytes.length >= 2 && next() % 2 === 0) bytes.writeUInt16BE(request.header.id, 0)
    for (let flip = 0; flip < next() % 4; flip++) {
      if (bytes.length === 0) break
      const at = next() % bytes.length
      bytes[at] = (bytes[at] as number) ^ (1 << (next() % 8))
    }
    return [bytes]
  }
  const { resolver, observer } = makeResolver([server.address], { timeoutMs: 50, attempts: 1 })
  let answers = 0
  for (let round = 0; round < 150; round++) {
    try {
      await resolver.resolve(SRV)
      answers++
    } catch (error) {
      assert.ok(error instanceof DnsError, `not a DnsError: ${String(error)}`)
    }
  }
  assert.ok(observer.rejections.length > 0, 'forgeries were counted')
  assert.ok(answers > 0, 'genuine answers still got through')
})

test('RFC 2782: an SRV target of "." (not available) and port 0 are not instances', async (t) => {
  const server = await ConsulLikeDnsServer.start(t)
  server.setService(WEB, [{ address: '10.0.0.1', port: 80 }])
  server.tamper = (_request, answer) => {
    const edited = Packet.parse(answer.toBuffer())
    edited.answers.push({ name: WEB, type: Packet.TYPE.SRV, class: Packet.CLASS.IN, ttl: 0, priority: 1, weight: 1, port: 81, target: '' } as never)
    edited.answers.push({ name: WEB, type: Packet.TYPE.SRV, class: Packet.CLASS.IN, ttl: 0, priority: 1, weight: 1, port: 0, target: 'zero.node.dc1.consul' } as never)
    return [edited]
  }
  const { resolver } = makeResolver([server.address])
  assert.deepEqual(addresses(await resolver.resolve(SRV)), ['10.0.0.1:80'])
  assert.deepEqual(server.queries.map((query) => Packet.TYPE_NAME[query.type]), ['SRV'], 'no lookup of "." or of the port-0 target')
  server.tamper = (_request, answer) => {
    const edited = Packet.parse(answer.toBuffer())
    edited.answers = [{ name: WEB, type: Packet.TYPE.SRV, class: Packet.CLASS.IN, ttl: 0, priority: 0, weight: 0, port: 0, target: '' } as never]
    edited.additionals = edited.additionals.filter((record) => record.type === Packet.TYPE.EDNS)
    return [edited]
  }
  assert.equal((await resolver.resolve(SRV)).outcome, 'nodata')
})
