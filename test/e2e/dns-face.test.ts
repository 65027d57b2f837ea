/**
 * The DNS face (issue 12), through the CLI, asked with dig, Node's
 * dns.Resolver and raw packets: health-filtered answers from srvgate's own
 * view, sized for the client, stale with TTL 30 s, and robust to garbage.
 */
import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { Resolver } from 'node:dns/promises'
import { createSocket } from 'node:dgram'
import { spawnSync } from 'node:child_process'
import { readFileSync, readdirSync, readlinkSync, writeFileSync } from 'node:fs'
import { ConsulLikeDnsServer, freePort, type SrvInstance } from '../helpers/dns-server.js'
import { BindServer, ZONE } from '../helpers/bind-server.js'
import { Upstream } from '../helpers/upstream.js'
import { SpawnedGateway } from '../helpers/spawn-gateway.js'
import { keepAlive, load, send } from '../helpers/http.js'
import { canShareUdpPort } from '../../src/util/shared-udp-port.js'
import { Packet, TcpDnsConnection, decode, dig, queryBytes, tcpExchange, udpExchange } from '../helpers/dns-client.js'

const WEB = '_web._prod.service.consul'
const FACE_ZONE = 'srvgate.internal'
const sleep = async (ms: number) => { await new Promise((resolve) => setTimeout(resolve, ms)) }

async function faceGateway (t: TestContext, dnsAddress: string, srv: string, options: { workers?: number, extra?: string, resolver?: string, dns?: string } = {}) {
  const facePort = await freePort()
  const gateway = await SpawnedGateway.start(t, `
listen: { http: "127.0.0.1:\${PORT}", admin: "127.0.0.1:\${ADMIN_PORT}" }
resolvers:
  consul: { nameservers: ["${dnsAddress}"], ttl: { min: 250ms, max: 1s }, timeout: 300ms, attempts: 2, emptyGrace: 0s${options.resolver ?? ''} }
backends:
  web-prod: { discovery: { resolver: consul, srv: ${srv} }${options.extra ?? ''} }
frontends:
  - { name: web, match: {}, backend: web-prod }
dns:
  listen: ["127.0.0.1:${facePort}"]
  zone: ${FACE_ZONE}
  ttl: 5s
  names:
    web: { backend: web-prod }
    www: { gateway: true }
${options.dns ?? ''}
`, { workers: options.workers })
  const resolver = new Resolver({ timeout: 1000, tries: 1 })
  resolver.setServers([`127.0.0.1:${facePort}`])
  const addressesNow = async (): Promise<string[]> => { try { return (await resolver.resolve4(`web.${FACE_ZONE}`)).sort() } catch { return [] } }
  return { gateway, facePort, resolver, addressesNow }
}

async function until (condition: () => Promise<boolean>, withinMs: number, what: string): Promise<number> {
  const started = Date.now()
  while (!(await condition())) {
    if (Date.now() - started > withinMs) assert.fail(`${what} not within ${withinMs} ms`)
    await sleep(25)
  }
  return Date.now() - started
}

test('the DNS face answers from the gateway\'s view: A of the lowest priority group, SRV with priorities and weights, following DNS; NOERROR empty, NXDOMAIN, REFUSED where they belong (workers: 2, answered by the primary)', async (t) => {
  const dns = await ConsulLikeDnsServer.start(t)
  const upstreams = await Promise.all([2, 3, 4, 5].map(async (last) => await Upstream.start(t, `u${last}`, { host: `127.0.0.${last}` })))
  const records = (list: readonly Upstream[]): SrvInstance[] => list.map((upstream) => ({ address: upstream.host, port: upstream.port, priority: upstream.host === '127.0.0.5' ? 2 : 1, weight: 10 }))
  dns.setService(WEB, records(upstreams))
  const { gateway, facePort, resolver, addressesNow } = await faceGateway(t, dns.address, WEB, { workers: 2 })

  assert.deepEqual(await addressesNow(), ['127.0.0.2', '127.0.0.3', '127.0.0.4'], 'the backup (priority 2) is not what the gateway chooses now')
  const srv = (await resolver.resolveSrv(`_web._tcp.${FACE_ZONE}`)).sort((a, b) => a.port - b.port)
  assert.deepEqual(srv.map((record) => [record.priority, record.weight, record.port]).sort(), upstreams.map((upstream) => [upstream.host === '127.0.0.5' ? 2 : 1, 10, upstream.port]).sort())
  const target = srv.find((record) => record.port === upstreams[0]?.port)?.name as string
  assert.deepEqual(await resolver.resolve4(target), ['127.0.0.2'], 'an SRV target resolves to its address')
  const withAdditionals = dig(facePort, `_web._tcp.${FACE_ZONE}`, 'SRV')
  assert.equal(withAdditionals.status, 'NOERROR')
  assert.match(withAdditionals.flags, /\baa\b/, 'authoritative')
  assert.doesNotMatch(withAdditionals.flags, /\bra\b/, 'never recursion')
  assert.equal(withAdditionals.answers.length, 4)
  assert.ok(withAdditionals.ttls.every((ttl) => ttl === 5), `fresh answers carry dns.ttl: ${withAdditionals.ttls.join(',')}`)

  // Instances follow DNS: one leaves, one arrives.
  const added = await Upstream.start(t, 'u6', { host: '127.0.0.6' })
  dns.setService(WEB, records([...upstreams.slice(1), added]))
  await until(async () => (await addressesNow()).join() === '127.0.0.3,127.0.0.4,127.0.0.6', 3000, 'the new set in the A answer')

  // Other types of a known name, unknown names, other zones.
  for (const type of ['HTTPS', 'TXT', 'MX', 'SVCB']) {
    const answer = dig(facePort, `web.${FACE_ZONE}`, type)
    assert.equal(answer.status, 'NOERROR', type)
    assert.equal(answer.answers.length, 0, type)
    assert.match(answer.authority.join('\n'), /SOA/, `${type}: an SOA for negative caching`)
  }
  assert.equal(dig(facePort, `nope.${FACE_ZONE}`, 'A').status, 'NXDOMAIN')
  assert.equal(dig(facePort, 'example.com', 'A').status, 'REFUSED')
  assert.equal(dig(facePort, FACE_ZONE, 'SOA').answers.length, 1)
  assert.deepEqual(dig(facePort, `www.${FACE_ZONE}`, 'A', ['+short']).answers, [], 'the +short form has no sections')
  assert.deepEqual(await resolver.resolve4(`www.${FACE_ZONE}`), ['127.0.0.1'], 'gateway: true answers with srvgate\'s own listener')
  assert.deepEqual((await resolver.resolveSrv(`_www._tcp.${FACE_ZONE}`)).map((record) => record.port), [gateway.port])

  // No usable instance: NOERROR, no answer, an SOA (never NXDOMAIN for a name that comes back).
  dns.setService(WEB, [])
  await until(async () => (await addressesNow()).length === 0, 3000, 'the empty answer')
  const empty = dig(facePort, `web.${FACE_ZONE}`, 'A')
  assert.equal(empty.status, 'NOERROR')
  assert.match(empty.authority.join('\n'), /SOA/)

  const metrics = (await send(`${gateway.adminUrl}/metrics`)).body
  assert.match(metrics, /^srvgate_dns_face_queries_total\{name="web",type="A",transport="udp",rcode="noerror"\} [1-9]\d*$/m)
  assert.match(metrics, /^srvgate_dns_face_queries_total\{name="\(outside\)",type="A",transport="udp",rcode="refused"\} 1$/m)
  assert.match(metrics, /^srvgate_dns_face_queries_total\{name="\(unknown\)",type="A",transport="udp",rcode="nxdomain"\} 1$/m)
  const state = (await send(`${gateway.adminUrl}/admin/state`)).json() as { dnsFace: { zone: string, names: Array<{ name: string, answers: string, addresses: string[] }> } }
  assert.equal(state.dnsFace.zone, FACE_ZONE)
  assert.deepEqual(state.dnsFace.names.map((name) => [name.name, name.answers, name.addresses]), [[`web.${FACE_ZONE}`, 'web-prod', []], [`www.${FACE_ZONE}`, 'gateway', ['127.0.0.1']]])
})

test('an instance killed under load is ejected by passive health and leaves the A and SRV answers at once; it comes back after ejectFor', async (t) => {
  const dns = await ConsulLikeDnsServer.start(t)
  const upstreams = await Promise.all([2, 3, 4].map(async (last) => await Upstream.start(t, `u${last}`, { host: `127.0.0.${last}` })))
  dns.setService(WEB, upstreams.map((upstream) => ({ address: upstream.host, port: upstream.port })))
  const { gateway, resolver, addressesNow } = await faceGateway(t, dns.address, WEB, { extra: ', outlier: { consecutiveFailures: 2, ejectFor: 3s }, retry: { attempts: 2 }' })
  assert.deepEqual(await addressesNow(), ['127.0.0.2', '127.0.0.3', '127.0.0.4'])
  let isDone = false
  const running = load(async () => await send(`${gateway.url}/`, { host: 'www.example.com', agent: keepAlive }), { concurrency: 4, until: () => isDone, maxRequests: 100_000 })
  await sleep(300)
  const victim = upstreams[1] as Upstream
  const port = victim.port
  await victim.kill()
  const ejectedAt = Date.now()
  await until(async () => !(await addressesNow()).includes('127.0.0.3'), 2000, 'the ejected instance out of the A answer')
  const srvPorts = (await resolver.resolveSrv(`_web._tcp.${FACE_ZONE}`)).map((record) => record.port)
  assert.ok(!srvPorts.includes(port), 'and out of the SRV answer')
  await Upstream.start(t, 'u3-back', { host: '127.0.0.3', port })
  const backAfter = await until(async () => (await addressesNow()).includes('127.0.0.3'), 8000, 'the instance back after ejectFor')
  isDone = true
  const result = await running
  assert.deepEqual(result.failures, [], 'retries kept the clients whole')
  assert.ok(Date.now() - ejectedAt >= 2500, `back after ejectFor (3s), not before: ${backAfter} ms after the restart`)
})

test('the DNS server behind srvgate stopped: the face keeps answering the last instances with TTL 30 (RFC 8767), counted as stale', async (t) => {
  const dns = await ConsulLikeDnsServer.start(t)
  dns.setService(WEB, [{ address: '10.0.0.7', port: 8080 }, { address: '10.0.0.8', port: 8080 }])
  const { gateway, facePort } = await faceGateway(t, dns.address, WEB, { resolver: ', staleFor: 60s' })
  assert.deepEqual(dig(facePort, `web.${FACE_ZONE}`, 'A').ttls, [5, 5])
  await dns.stop()
  await until(async () => dig(facePort, `web.${FACE_ZONE}`, 'A').ttls.join() === '30,30', 5000, 'stale answers with TTL 30')
  const stale = dig(facePort, `web.${FACE_ZONE}`, 'A')
  assert.deepEqual(stale.answers.map((line) => line.split(/\s+/).pop()).sort(), ['10.0.0.7', '10.0.0.8'])
  assert.ok(dig(facePort, `_web._tcp.${FACE_ZONE}`, 'SRV').ttls.every((ttl) => ttl === 30))
  const metrics = (await send(`${gateway.adminUrl}/metrics`)).body
  assert.match(metrics, /^srvgate_dns_face_stale_answers_total\{name="web"\} [1-9]\d*$/m)
})

test('200 instances: a plain A answer fits 512 bytes with a new weighted sample on each query; SRV over UDP is cut with TC and whole over TCP; EDNS0 gets up to its size', async (t) => {
  const dns = await ConsulLikeDnsServer.start(t)
  dns.setService(WEB, Array.from({ length: 200 }, (_, index) => ({ address: `10.1.${index >> 8}.${index & 255}`, port: 8000 + index })))
  const { facePort } = await faceGateway(t, dns.address, WEB)
  const samples: string[][] = []
  for (let round = 0; round < 5; round++) {
    const bytes = await udpExchange(facePort, queryBytes(`web.${FACE_ZONE}`, Packet.TYPE.A)) as Buffer
    assert.ok(bytes.length <= 512, `${bytes.length} bytes`)
    const answer = decode(bytes)
    assert.equal(answer.header.tc, 0, 'a sample, not a truncation: nothing more to ask for')
    assert.ok(answer.answers.length >= 20, `${answer.answers.length} addresses fit`)
    samples.push(answer.answers.map((record) => String((record as { address?: string }).address)).sort())
  }
  assert.ok(new Set(samples.map((sample) => sample.join())).size >= 4, 'a new draw for every query')
  const large = decode(await udpExchange(facePort, queryBytes(`web.${FACE_ZONE}`, Packet.TYPE.A, { edns: 1232 })) as Buffer)
  assert.ok(large.answers.length > (samples[0] as string[]).length, 'EDNS0: more addresses, up to the advertised size')
  assert.ok(large.toBuffer().length <= 1232)

  const cut = await udpExchange(facePort, queryBytes(`_web._tcp.${FACE_ZONE}`, Packet.TYPE.SRV)) as Buffer
  assert.ok(cut.length <= 512)
  assert.equal(decode(cut).header.tc, 1, 'TC: ask again over TCP')
  const whole = decode(await tcpExchange(facePort, queryBytes(`_web._tcp.${FACE_ZONE}`, Packet.TYPE.SRV)) as Buffer)
  assert.equal(whole.header.tc, 0)
  assert.equal(whole.answers.length, 200)
  assert.equal(whole.additionals.length, 200, 'every target\'s address in the additional section')
  const viaDig = dig(facePort, `_web._tcp.${FACE_ZONE}`, 'SRV', ['+noedns'])
  assert.equal(viaDig.answers.length, 200, 'dig retries over TCP on TC and gets them all')
})

test('BIND9 behind srvgate: the face follows instances added and removed with nsupdate', async (t) => {
  const srvName = `_api._tcp.${ZONE}`
  const bind = await BindServer.start(t, [`${srvName}. 0 IN SRV 1 1 8080 a1.${ZONE}.`, 'a1 0 IN A 10.3.0.1'])
  const { addressesNow } = await faceGateway(t, bind.address, srvName)
  assert.deepEqual(await addressesNow(), ['10.3.0.1'])
  bind.update([`update add a2.${ZONE} 0 IN A 10.3.0.2`, `update add ${srvName} 0 IN SRV 1 1 8080 a2.${ZONE}.`])
  await until(async () => (await addressesNow()).join() === '10.3.0.1,10.3.0.2', 3000, 'the added instance')
  bind.update([`update delete ${srvName} 0 IN SRV 1 1 8080 a1.${ZONE}.`])
  await until(async () => (await addressesNow()).join() === '10.3.0.2', 3000, 'the removed instance gone')
})

test('garbage never crashes the face: random bytes, cut queries, pointer loops, responses, two questions, other opcodes, and a 10,000-query burst; the per-source rate limit drops the excess', async (t) => {
  const dns = await ConsulLikeDnsServer.start(t)
  dns.setService(WEB, [{ address: '10.0.0.7', port: 8080 }])
  const { gateway, facePort } = await faceGateway(t, dns.address, WEB)
  const good = queryBytes(`web.${FACE_ZONE}`, Packet.TYPE.A, { id: 7 })

  // A response (QR=1) is never answered: answering responses makes loops.
  const response = Buffer.from(good)
  response[2] = (response[2] as number) | 0x80
  assert.equal(await udpExchange(facePort, response, 300), undefined)
  // Two questions: FORMERR. Opcode 2 (STATUS): NOTIMP. A question cut short: FORMERR.
  const two = new Packet()
  two.header.id = 9
  two.questions.push(new Packet.Question(`web.${FACE_ZONE}`, Packet.TYPE.A, Packet.CLASS.IN), new Packet.Question(`www.${FACE_ZONE}`, Packet.TYPE.A, Packet.CLASS.IN))
  assert.equal(decode(await udpExchange(facePort, two.toBuffer() as Buffer) as Buffer).header.rcode, Packet.RCODE.FORMERR)
  const status = Buffer.from(good)
  status[2] = ((status[2] as number) & 0x87) | (2 << 3)
  assert.equal(decode(await udpExchange(facePort, status) as Buffer).header.rcode, Packet.RCODE.NOTIMP)
  const cut = await udpExchange(facePort, good.subarray(0, good.length - 3)) as Buffer
  assert.equal(cut.length, 12, 'a header-only FORMERR')
  assert.equal(cut.readUInt16BE(0), 7, 'with the query\'s ID')
  assert.equal((cut[3] as number) & 0x0f, Packet.RCODE.FORMERR)
  // A name made of a compression pointer to itself.
  const loop = Buffer.concat([good.subarray(0, 12), Buffer.from([0xc0, 12, 0, 1, 0, 1])])
  assert.equal(((await udpExchange(facePort, loop) as Buffer)[3] as number) & 0x0f, Packet.RCODE.FORMERR)
  assert.equal(((await tcpExchange(facePort, loop) as Buffer)[3] as number) & 0x0f, Packet.RCODE.FORMERR, 'over TCP too')

  // Random bytes: 2,000 datagrams, never a crash.
  const socket = createSocket('udp4')
  t.after(() => { socket.close() })
  let seed = 42
  const next = (): number => { seed = (seed * 1103515245 + 12345) & 0x7fffffff; return seed }
  for (let index = 0; index < 2000; index++) {
    const bytes = Buffer.from(Array.from({ length: 1 + next() % 300 }, () => next() & 0xff))
    // Half of them start like a query, to reach the name parser.
    if (index % 2 === 0 && bytes.length > 12) { bytes[2] = 0x01; bytes[3] = 0; bytes[4] = 0; bytes[5] = 1 }
    socket.send(bytes, facePort, '127.0.0.1')
    if (index % 200 === 0) await sleep(5)
  }
  // A burst of 10,000 good queries from one source: the rate limit (burst 1000) answers some, drops the rest
  // (one source port lands on one worker, whose share of the limit, half with 2 workers, the junk above spent too).
  let answered = 0
  socket.on('message', () => { answered++ })
  for (let index = 0; index < 10_000; index++) {
    socket.send(good, facePort, '127.0.0.1')
    if (index % 500 === 0) await sleep(1)
  }
  await sleep(1500)
  // How many get through depends on how fast the burst is sent (the share refills meanwhile: 17 on a fast
  // run of CI, 2026-12-06); what matters is some answered, most dropped, and the face alive.
  assert.ok(answered > 0 && answered < 5000, `the rate limit let ${answered} of 10,000 through`)
  assert.equal(gateway.process.exitCode, null, 'still running')
  const after = dig(facePort, `web.${FACE_ZONE}`, 'A')
  assert.equal(after.status, 'NOERROR', 'and answering')
  const metrics = (await send(`${gateway.adminUrl}/metrics`)).body
  assert.match(metrics, /^srvgate_dns_face_rate_limited_total\{transport="udp",limit="source"\} [1-9]\d*$/m)
  assert.match(metrics, /^srvgate_dns_face_queries_total\{name="\(none\)",type="-",transport="udp",rcode="formerr"\} [1-9]\d*$/m)
  assert.equal(gateway.logs.filter((line) => line.msg === 'DNS face: a query could not be answered').length, 0, 'no query was a bug')
})

test('the DNS face on IPv4 and IPv6 at once; the zone\'s NS is the face\'s own name with both addresses; a reload changes its names and TTL at once, a changed dns.listen says restart; EDNS version 1 gets BADVERS', async (t) => {
  const dns = await ConsulLikeDnsServer.start(t)
  dns.setService(WEB, [{ address: '10.0.0.7', port: 8080 }])
  dns.setService('_api._prod.service.consul', [{ address: '10.0.0.9', port: 9090 }])
  const facePort = await freePort()
  const gateway = await SpawnedGateway.start(t, `
listen: { http: "127.0.0.1:\${PORT}", admin: "127.0.0.1:\${ADMIN_PORT}" }
resolvers: { consul: { nameservers: ["${dns.address}"] } }
backends:
  web-prod: { discovery: { resolver: consul, srv: ${WEB} } }
  api: { discovery: { resolver: consul, srv: _api._prod.service.consul } }
frontends: [ { name: web, match: {}, backend: web-prod } ]
dns:
  listen: ["127.0.0.1:${facePort}", "[::1]:${facePort}"]
  zone: ${FACE_ZONE}
  names: { web: { backend: web-prod } }
`, { workers: 1 })
  const v6 = spawnSync('dig', ['@::1', '-p', String(facePort), '+short', `web.${FACE_ZONE}`, 'A'], { encoding: 'utf8', timeout: 10_000 })
  assert.equal(v6.stdout.trim(), '10.0.0.7', 'answered over IPv6')
  const v6tcp = spawnSync('dig', ['@::1', '-p', String(facePort), '+tcp', '+short', `web.${FACE_ZONE}`, 'A'], { encoding: 'utf8', timeout: 10_000 })
  assert.equal(v6tcp.stdout.trim(), '10.0.0.7', 'and over TCP on IPv6')
  assert.equal(dig(facePort, `api.${FACE_ZONE}`, 'A').status, 'NXDOMAIN')
  // An EDNS version the face does not implement (RFC 6891 §6.1.3): BADVERS, as BIND answers it.
  const future = dig(facePort, `web.${FACE_ZONE}`, 'A', ['+edns=1', '+noednsnegotiation'])
  assert.deepEqual([future.status, future.answers.length], ['BADVERS', 0])

  // The zone's NS is the face's own name, resolving to the addresses it listens on; the SOA names it.
  const ns = dig(facePort, FACE_ZONE, 'NS', [], '::1')
  assert.deepEqual([ns.status, ns.answers.map((line) => line.split(/\s+/).slice(3).join(' '))], ['NOERROR', [`NS ns.${FACE_ZONE}.`]])
  assert.deepEqual(ns.additional.filter((line) => !line.startsWith(';')).map((line) => line.split(/\s+/).filter((_, index) => index !== 1).join(' ')).sort(), [`ns.${FACE_ZONE}. IN A 127.0.0.1`, `ns.${FACE_ZONE}. IN AAAA ::1`], 'its addresses beside it')
  const nsA = spawnSync('dig', ['@127.0.0.1', '-p', String(facePort), '+short', `ns.${FACE_ZONE}`, 'A'], { encoding: 'utf8', timeout: 10_000 })
  const nsAaaa = spawnSync('dig', ['@127.0.0.1', '-p', String(facePort), '+tcp', '+short', `ns.${FACE_ZONE}`, 'AAAA'], { encoding: 'utf8', timeout: 10_000 })
  assert.deepEqual([nsA.stdout.trim(), nsAaaa.stdout.trim()], ['127.0.0.1', '::1'])
  assert.match(dig(facePort, FACE_ZONE, 'SOA').answers.join(), /SOA\s+ns\.srvgate\.internal\. hostmaster\.srvgate\.internal\./, 'the SOA names the face itself')
  const { dnsFace } = (await send(`${gateway.adminUrl}/admin/state`)).json() as { dnsFace: { nameserver: unknown } }
  assert.deepEqual(dnsFace.nameserver, { name: `ns.${FACE_ZONE}`, addresses: ['127.0.0.1', '::1'] })

  const original = readFileSync(gateway.configPath, 'utf8')
  writeFileSync(gateway.configPath, original.replace('names: { web: { backend: web-prod } }', 'ttl: 42s\n  names: { api: { backend: api } }'))
  assert.equal((await send(`${gateway.adminUrl}/admin/reload`, { method: 'POST' })).status, 200)
  const api = dig(facePort, `api.${FACE_ZONE}`, 'A')
  assert.deepEqual([api.status, api.ttls], ['NOERROR', [42]], 'the new name, with the new TTL')
  assert.equal(dig(facePort, `web.${FACE_ZONE}`, 'A').status, 'NXDOMAIN', 'the removed name is gone')

  writeFileSync(gateway.configPath, original.replace(`"[::1]:${facePort}"`, `"[::1]:${await freePort()}"`))
  const moved = (await send(`${gateway.adminUrl}/admin/reload`, { method: 'POST' })).json()
  assert.match(String(moved.summary), /restart to apply dns\.listen/)
})

test('an SRV record naming the DNS face\'s own address is refused like srvgate\'s other listeners: not an instance, shown in /admin/state, and requests answer 503 at once instead of waiting for timeouts.response', async (t) => {
  const dns = await ConsulLikeDnsServer.start(t)
  const upstream = await Upstream.start(t, 'u2', { host: '127.0.0.2' })
  dns.setService(WEB, [{ address: upstream.host, port: upstream.port }])
  const { gateway, facePort } = await faceGateway(t, dns.address, WEB, { extra: ', timeouts: { response: 5s }', workers: 1 })
  dns.setService(WEB, [{ address: '127.0.0.1', port: facePort }])
  type Refusal = { key: string, reason: string }
  const refusals = async (): Promise<Refusal[]> => {
    const state = (await send(`${gateway.adminUrl}/admin/state`)).json() as { backends: Array<{ name: string, refused: Refusal[], instances: unknown[] }> }
    return state.backends.find((backend) => backend.name === 'web-prod')?.refused ?? []
  }
  await until(async () => (await refusals()).length > 0 || (await send(`${gateway.url}/`, { host: 'www.example.com', timeoutMs: 8000 })).status !== 200, 5000, 'the new answer applied')
  assert.deepEqual(await refusals(), [{ key: `127.0.0.1:${facePort}`, reason: 'srvgate\'s own dns.listen listener' }])
  const started = Date.now()
  const response = await send(`${gateway.url}/`, { host: 'www.example.com', timeoutMs: 8000 })
  assert.equal(response.status, 503, `answered ${response.status} after ${Date.now() - started} ms`)
  assert.deepEqual(response.json(), { error: 'no_healthy_upstream', backend: 'web-prod' })
  assert.ok(Date.now() - started < 1000, `at once, not after timeouts.response: ${Date.now() - started} ms`)
})

/**
 * Trickling clients, as in the attack: each connects from `localAddress`,
 * sends one byte of a length prefix (a 32-byte message), then one byte
 * every `everyMs`, never finishing the message within the test.
 */
async function trickle (t: TestContext, port: number, sources: readonly string[], everyMs: number): Promise<TcpDnsConnection[]> {
  const opened = await Promise.all(sources.map(async (source) => await TcpDnsConnection.open(t, port, source)))
  const connections = opened.filter((connection): connection is TcpDnsConnection => connection !== undefined)
  assert.equal(connections.length, sources.length, 'every connect succeeded (refusals are closes after accept)')
  for (const connection of connections) connection.write(Buffer.from([0]))
  let sent = 1
  const timer = setInterval(() => {
    // Bounded: 33 bytes at most, and never a whole message (0x00 0x20 + 32 bytes would be 34).
    if (++sent > 33) { clearInterval(timer); return }
    for (const connection of connections) connection.write(Buffer.from([sent === 2 ? 0x20 : 0x41]))
  }, everyMs)
  t.after(() => { clearInterval(timer) })
  return connections
}

const metricValue = (metrics: string, series: string): number => Number(new RegExp(`^${series.replace(/[{}"]/g, (c) => `\\${c}`)} (\\d+)$`, 'm').exec(metrics)?.[1] ?? 0)

test('300 trickling TCP connections from one source: it holds dns.tcp.maxConnectionsPerSource (16), the rest are refused at once, dig +tcp from another source is answered at once, and every trickled message is cut 2 s (messageTimeout) after its first byte', async (t) => {
  const dns = await ConsulLikeDnsServer.start(t)
  dns.setService(WEB, [{ address: '10.0.0.7', port: 8080 }])
  const { gateway, facePort } = await faceGateway(t, dns.address, WEB, { workers: 1 })
  const flood = await trickle(t, facePort, Array.from({ length: 300 }, () => '127.0.0.2'), 400)
  await sleep(700)
  const started = Date.now()
  const answer = dig(facePort, `web.${FACE_ZONE}`, 'A', ['+tcp'])
  assert.deepEqual([answer.status, answer.answers.length], ['NOERROR', 1], 'dig +tcp from 127.0.0.1 answered while the trickles hold')
  assert.ok(Date.now() - started < 1500, `at once: ${Date.now() - started} ms`)
  const held = flood.filter((connection) => !connection.isClosed)
  assert.equal(held.length, 16, `the source holds maxConnectionsPerSource; ${300 - held.length} refused`)

  const cuts = await Promise.all(held.map(async (connection) => (await connection.closed) - connection.openedAt))
  assert.ok(cuts.every((ms) => ms >= 1800 && ms < 3000), `each trickled message cut at messageTimeout after its first byte: ${cuts.join(', ')} ms`)
  const metrics = (await send(`${gateway.adminUrl}/metrics`)).body
  assert.equal(metricValue(metrics, 'srvgate_dns_face_tcp_refused_total{reason="max-connections-per-source"}'), 284)
  assert.equal(metricValue(metrics, 'srvgate_dns_face_tcp_timeouts_total{timeout="message"}'), 16)
  assert.equal(metricValue(metrics, 'srvgate_dns_face_tcp_connections'), 0, 'every connection gone')
})

test('trickles from many sources fill dns.tcp.maxConnections: new connections are refused, never the oldest; a client connected before keeps being answered, and a new one is answered once the trickles meet messageTimeout', async (t) => {
  const dns = await ConsulLikeDnsServer.start(t)
  dns.setService(WEB, [{ address: '10.0.0.7', port: 8080 }])
  const { gateway, facePort } = await faceGateway(t, dns.address, WEB, { workers: 1, dns: '  tcp: { maxConnections: 40, maxConnectionsPerSource: 8 }' })
  const query = queryBytes(`web.${FACE_ZONE}`, Packet.TYPE.A)
  const early = await TcpDnsConnection.open(t, facePort) as TcpDnsConnection
  early.query(query)
  assert.ok(await early.answer() !== undefined, 'the early client is answered')

  const floodStarted = Date.now()
  const sources = Array.from({ length: 10 }, (_, index) => `127.0.0.${index + 2}`).flatMap((source) => Array.from({ length: 8 }, () => source))
  const flood = await trickle(t, facePort, sources, 400)
  await sleep(500)
  assert.equal(flood.filter((connection) => !connection.isClosed).length, 39, 'the budget is full: 40 with the early client')
  early.query(query)
  assert.ok(await early.answer() !== undefined, 'the early client is still answered: never cut to make room')
  assert.equal(await tcpExchange(facePort, query, 1000), undefined, 'a new connection is refused while the budget is full')

  let answered: Buffer | undefined
  while (answered === undefined && Date.now() - floodStarted < 5000) answered = await tcpExchange(facePort, query, 500)
  const after = Date.now() - floodStarted
  assert.ok(answered !== undefined && decode(answered).answers.length === 1, 'a new client answered once the trickles are cut')
  assert.ok(after < 3000, `within messageTimeout of the flood: ${after} ms`)
  early.query(query)
  assert.ok(await early.answer() !== undefined, 'and the early client all along')
  const metrics = (await send(`${gateway.adminUrl}/metrics`)).body
  assert.ok(metricValue(metrics, 'srvgate_dns_face_tcp_refused_total{reason="max-connections"}') >= 42, 'the 41 trickles over the budget and the new client, counted')
  assert.equal(metricValue(metrics, 'srvgate_dns_face_tcp_refused_total{reason="max-connections-per-source"}'), 0)
})

test('dns.tcp deadlines: a silent connection closes at messageTimeout, an idle one idleTimeout after its answer; whole queries keep a connection answered past both; a message split within messageTimeout is answered, one split beyond it is not', async (t) => {
  const dns = await ConsulLikeDnsServer.start(t)
  dns.setService(WEB, [{ address: '10.0.0.7', port: 8080 }])
  const { gateway, facePort } = await faceGateway(t, dns.address, WEB, { workers: 1, dns: '  tcp: { messageTimeout: 500ms, idleTimeout: 1s }' })
  const query = queryBytes(`web.${FACE_ZONE}`, Packet.TYPE.A)
  const framed = Buffer.concat([Buffer.from([0, query.length]), query])
  const [silent, idle, busy, split, late] = await Promise.all([1, 2, 3, 4, 5].map(async () => await TcpDnsConnection.open(t, facePort) as TcpDnsConnection))
  idle?.query(query)
  const idleAnswered = (await idle?.answer()) === undefined ? undefined : Date.now()
  assert.ok(idleAnswered !== undefined)
  split?.write(framed.subarray(0, 10))
  late?.write(framed.subarray(0, 10))
  const answers: Array<Buffer | undefined> = []
  for (let round = 0; round < 6; round++) {
    busy?.query(query)
    answers.push(await busy?.answer(400))
    if (round === 0) split?.write(framed.subarray(10))
    await sleep(300)
  }
  late?.write(framed.subarray(10))
  assert.ok(answers.every((answer) => answer !== undefined), 'a query every 300 ms: every one answered, for longer than both deadlines')
  assert.equal(busy?.isClosed, false)
  assert.ok(await split?.answer(100) !== undefined, 'the two halves within messageTimeout: answered')
  assert.equal(await late?.answer(100), undefined, 'the second half after messageTimeout: never answered')

  const silentFor = (await (silent as TcpDnsConnection).closed) - (silent as TcpDnsConnection).openedAt
  assert.ok(silentFor >= 400 && silentFor < 1200, `silent: closed after ${silentFor} ms (messageTimeout 500ms)`)
  const idleFor = (await (idle as TcpDnsConnection).closed) - idleAnswered
  assert.ok(idleFor >= 850 && idleFor < 1800, `idle: closed ${idleFor} ms after its answer (idleTimeout 1s)`)
  const metrics = (await send(`${gateway.adminUrl}/metrics`)).body
  assert.ok(metricValue(metrics, 'srvgate_dns_face_tcp_timeouts_total{timeout="message"}') >= 2, 'silent and late')
  assert.ok(metricValue(metrics, 'srvgate_dns_face_tcp_timeouts_total{timeout="idle"}') >= 1, 'idle (and split, after its answer)')
})

test('the rate limit counts 127.0.0.2-5 as one /24 source; a sender cycling through /24s meets dns.rateLimit.globalPerSecond; TCP stays outside the global ceiling', async (t) => {
  const dns = await ConsulLikeDnsServer.start(t)
  dns.setService(WEB, [{ address: '10.0.0.7', port: 8080 }])
  const { gateway, facePort } = await faceGateway(t, dns.address, WEB, { workers: 1, dns: '  rateLimit: { perSecond: 1, burst: 10, globalPerSecond: 30 }' })
  const query = queryBytes(`web.${FACE_ZONE}`, Packet.TYPE.A)
  const ask = async (sources: readonly string[]): Promise<number> =>
    (await Promise.all(sources.map(async (source) => await udpExchange(facePort, query, 700, '127.0.0.1', source)))).filter((answer) => answer !== undefined).length
  const oneBlock = Array.from({ length: 4 }, (_, index) => `127.0.0.${index + 2}`).flatMap((source) => Array.from({ length: 5 }, () => source))
  const sameBlock = await ask(oneBlock)
  assert.ok(sameBlock >= 10 && sameBlock <= 12, `20 queries from four addresses of 127.0.0.0/24: one burst of 10 answered, not four (${sameBlock})`)

  const started = Date.now()
  const manyBlocks = await ask(Array.from({ length: 100 }, (_, index) => `127.1.${index}.1`))
  const ceiling = 30 + Math.ceil((Date.now() - started) * 30 / 1000)
  assert.ok(manyBlocks >= 15 && manyBlocks <= ceiling, `100 queries from 100 /24s, each with a fresh burst: ${manyBlocks} answered, at most ${ceiling} (globalPerSecond 30)`)
  assert.ok(await tcpExchange(facePort, query, 1000, '127.2.0.1') !== undefined, 'over TCP, answered despite the spent global ceiling')
  const metrics = (await send(`${gateway.adminUrl}/metrics`)).body
  assert.ok(metricValue(metrics, 'srvgate_dns_face_rate_limited_total{transport="udp",limit="source"}') >= 8)
  assert.ok(metricValue(metrics, 'srvgate_dns_face_rate_limited_total{transport="udp",limit="global"}') >= 100 - ceiling)
})

test('TCP has rate-limit buckets of its own: a UDP flood from a client\'s /24 (spoofable) never spends its TCP queries; pipelined queries in one write are all answered, in order, a few per turn', async (t) => {
  const dns = await ConsulLikeDnsServer.start(t)
  dns.setService(WEB, [{ address: '10.0.0.7', port: 8080 }])
  const { facePort } = await faceGateway(t, dns.address, WEB, { workers: 1, dns: '  rateLimit: { perSecond: 1, burst: 5 }' })
  const query = queryBytes(`web.${FACE_ZONE}`, Packet.TYPE.A)
  // Spend 127.0.0.0/24's UDP bucket from 127.0.0.9.
  const flood = await Promise.all(Array.from({ length: 20 }, async () => await udpExchange(facePort, query, 500, '127.0.0.1', '127.0.0.9')))
  assert.ok(flood.filter((answer) => answer !== undefined).length <= 6, 'the UDP bucket is spent')
  assert.ok(await tcpExchange(facePort, query, 1000, '127.0.0.1') !== undefined, 'TCP from the same /24 is still answered')

  // One write of 200 queries, ids 1..200: 200 answers in order (within the TCP bucket: a source of their own, 127.3.0.1).
  const { gateway: pipelined, facePort: port } = await faceGateway(t, dns.address, WEB, { workers: 1, dns: '  rateLimit: { perSecond: 1000, burst: 1000 }' })
  t.after(async () => { await pipelined.stop() })
  const connection = await TcpDnsConnection.open(t, port, '127.3.0.1')
  assert.ok(connection !== undefined)
  const frames = Array.from({ length: 200 }, (_, index) => {
    const bytes = queryBytes(`web.${FACE_ZONE}`, Packet.TYPE.A, { id: index + 1 })
    const framed = Buffer.alloc(2 + bytes.length)
    framed.writeUInt16BE(bytes.length, 0)
    bytes.copy(framed, 2)
    return framed
  })
  connection.write(Buffer.concat(frames))
  const ids: number[] = []
  for (let index = 0; index < 200; index++) {
    const answer = await connection.answer(3000)
    if (answer === undefined) break
    ids.push(answer.readUInt16BE(0))
  }
  assert.deepEqual(ids, Array.from({ length: 200 }, (_, index) => index + 1))
})

/** The inode numbers of the UDP sockets bound to `port` (IPv4), from /proc/net/udp. */
function udpInodes (port: number): Set<string> {
  const hex = port.toString(16).toUpperCase().padStart(4, '0')
  const lines = readFileSync('/proc/net/udp', 'utf8').split('\n').slice(1)
  return new Set(lines.map((line) => line.trim().split(/\s+/)).filter((fields) => fields[1]?.endsWith(`:${hex}`) === true).map((fields) => fields[9] as string))
}

/** Whether process `pid` holds one of `inodes` among its descriptors. */
function holdsSocket (pid: number, inodes: Set<string>): boolean {
  const dir = `/proc/${pid}/fd`
  return readdirSync(dir).some((fd) => {
    try { return inodes.has(/^socket:\[(\d+)\]$/.exec(readlinkSync(`${dir}/${fd}`))?.[1] ?? '') } catch { return false }
  })
}

/** `count` A queries for `name`, each from a socket (a source port) of its own: the kernel spreads them over the workers. The addresses of each answer ('NXDOMAIN', 'none' when unanswered). */
async function fromManyPorts (port: number, name: string, count: number): Promise<string[]> {
  return await Promise.all(Array.from({ length: count }, async () => {
    const answer = await udpExchange(port, queryBytes(name, Packet.TYPE.A), 1500)
    if (answer === undefined) return 'none'
    const packet = decode(answer)
    if (packet.header.rcode === 3) return 'NXDOMAIN'
    return packet.answers.map((record) => (record as { address?: string }).address ?? '').sort().join(',')
  }))
}

const SHARED_PORT = canShareUdpPort() ? false : 'the face answers from every worker with Node 22.12+ on Linux (SO_REUSEPORT); here the primary answers'

test('every worker answers the DNS face on its own socket (SO_REUSEPORT); answers from all of them follow an ejection and a reload within one IPC hop', { skip: SHARED_PORT }, async (t) => {
  const dns = await ConsulLikeDnsServer.start(t)
  const upstreams = await Promise.all([2, 3].map(async (last) => await Upstream.start(t, `u${last}`, { host: `127.0.0.${last}` })))
  dns.setService(WEB, upstreams.map((upstream) => ({ address: upstream.host, port: upstream.port, priority: 1, weight: 10 })))
  const { gateway, facePort, addressesNow } = await faceGateway(t, dns.address, WEB, { workers: 2, extra: ', healthCheck: { interval: 100ms, timeout: 100ms, fall: 1, rise: 1 }' })
  await until(async () => (await addressesNow()).length === 2, 3000, 'both instances answered')
  const listening = gateway.logs.find((line) => line.msg === 'srvgate listening')
  assert.equal(listening?.dnsAnsweredBy, 'every worker')
  // Each worker holds a UDP socket on the face's port; the primary holds none.
  const state = (await send(`${gateway.adminUrl}/admin/state`)).json() as { workers: { pids: number[] } }
  const inodes = udpInodes(facePort)
  assert.equal(inodes.size, 2, 'two sockets on the port')
  assert.deepEqual(state.workers.pids.map((pid) => holdsSocket(pid, inodes)), [true, true])
  assert.equal(holdsSocket(gateway.process.pid as number, inodes), false, 'the primary answers nothing')
  assert.deepEqual(new Set(await fromManyPorts(facePort, `web.${FACE_ZONE}`, 64)), new Set(['127.0.0.2,127.0.0.3']))

  // An ejection: the primary decides (active check failing), each worker hears it once; past that hop no worker names the instance.
  const hopMs = 300
  upstreams[1]!.behaviour = (request, response) => {
    if (request.url !== '/healthz') return false
    response.writeHead(503).end()
    return true
  }
  await until(async () => {
    const backends = (await send(`${gateway.adminUrl}/admin/state`)).json() as { backends: Array<{ name: string, instances: Array<{ address: string, state: string }> }> }
    return backends.backends.find((backend) => backend.name === 'web-prod')?.instances.find((instance) => instance.address === '127.0.0.3')?.state === 'failing-check'
  }, 3000, 'the primary takes 127.0.0.3 out')
  await sleep(hopMs)
  assert.deepEqual(new Set(await fromManyPorts(facePort, `web.${FACE_ZONE}`, 64)), new Set(['127.0.0.2']), 'no worker answers with the instance taken out')

  // A reload: a new name, answered by every worker once the reload has applied (two phases: every worker prepared, then commit).
  writeFileSync(gateway.configPath, readFileSync(gateway.configPath, 'utf8').replace('    www: { gateway: true }', '    www: { gateway: true }\n    api: { backend: web-prod }'))
  assert.deepEqual(new Set(await fromManyPorts(facePort, `api.${FACE_ZONE}`, 16)), new Set(['NXDOMAIN']))
  assert.equal((await send(`${gateway.adminUrl}/admin/reload`, { method: 'POST' })).status, 200)
  await sleep(hopMs)
  assert.deepEqual(new Set(await fromManyPorts(facePort, `api.${FACE_ZONE}`, 64)), new Set(['127.0.0.2']), 'every worker knows the new name')
})

test('dns.rateLimit holds for the whole gateway with 2 workers: each has its share, so a burst from many source ports gets about `burst` answers, not one burst per worker', { skip: SHARED_PORT }, async (t) => {
  const dns = await ConsulLikeDnsServer.start(t)
  const upstream = await Upstream.start(t, 'u2', { host: '127.0.0.2' })
  dns.setService(WEB, [{ address: upstream.host, port: upstream.port, priority: 1, weight: 10 }])
  const { facePort, addressesNow } = await faceGateway(t, dns.address, WEB, { workers: 2, dns: '  rateLimit: { perSecond: 1, burst: 60 }' })
  await until(async () => (await addressesNow()).length === 1, 3000, 'the instance answered')
  await sleep(2500)
  // 200 queries from 200 source ports within well under a second: each worker's bucket holds 30.
  const answers = await fromManyPorts(facePort, `web.${FACE_ZONE}`, 200)
  const answered = answers.filter((answer) => answer !== 'none').length
  assert.ok(answered >= 55 && answered <= 66, `${answered} of 200 answered (burst 60 for the gateway; one bucket per worker would answer 120)`)
})
