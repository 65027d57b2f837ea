/**
 * `npm run bench`: prints figures; asserts nothing (tests check behaviour,
 * benchmarks check speed). Sections grow with the product; docs/BENCHMARKS.md
 * records the figures of a run.
 *
 *   resolver  cost of a cached lookup (target: well under 1 µs) and DNS
 *             queries sent while 10,000 lookups of one name arrive at once (target: 1)
 *   routing   route() with 10 vs 10,000 frontends (target: flat)
 *   proxy     req/s, p50/p99 straight to a backend vs through srvgate; CPU µs per request
 *   flood     thousands of distinct preview hosts: templated backends and memory stay bounded
 *   peers     HAProxy, Caddy and nginx beside srvgate (1 and 2 workers), same instances, same SRV records in BIND9
 *   memory    resident memory with 1,000 backends × 10 instances, 1 and 2 workers, idle and after load
 *   soak      slow and abandoned uploads mixed with normal traffic: in-flight back to 0, pools back to idle
 *   client    srvgate/client vs plain undici to the same instance: CPU per request; DNS queries per second under load
 *   policies  per-frontend policies' cost a request (header rules, redirects, access, rate limits); none configured: not called
 *   grpc      gRPC unary calls straight and through srvgate (h2c); HTTP/1.1 clients to HTTP/1.1 vs HTTP/2 instances; listen.h2c's cost on new connections
 *   tracing   CPU a request with tracing off, on and unsampled, on and all sampled (OTLP to a real receiver)
 *   dns-face  queries per second answered by the DNS face, beside BIND9 serving the same names and a bare node:dgram floor (dnsperf; CPU a query)
 *
 * `npm run bench -- resolver routing` runs some sections only.
 */
import { Packet } from 'dns2'
import { ResolverCache } from '../src/dns/cache.js'
import type { Resolver } from '../src/dns/resolver.js'
import type { Resolution } from '../src/dns/types.js'
import { ManualClock, systemClock } from '../src/util/clock.js'
import { SeededRandom, systemRandom } from '../src/util/random.js'
import { ConsulLikeDnsServer } from '../test/helpers/dns-server.js'
import { makeResolver, manyInstances } from '../test/helpers/resolver.js'
import { routingSection } from './routing.js'
import { proxySection } from './proxy.js'
import { floodSection } from './flood.js'
import { soakSection } from './soak.js'
import { peersSection } from './peers.js'
import { memorySection } from './memory.js'
import { dnsFaceSection } from './dns-face.js'
import { clientSection } from './client.js'
import { tracingSection } from './tracing.js'
import { policiesSection } from './policies.js'
import { grpcSection } from './grpc.js'

const POLICY = { ttl: { minMs: 1000, maxMs: 30_000 }, staleForMs: 60_000, negativeTtlMs: 5000, emptyGraceMs: 2000 }
const WEB = { kind: 'srv', name: '_web._prod.service.consul' } as const

function report (name: string, value: string, target = ''): void {
  console.log(`${name.padEnd(58)} ${value.padStart(14)}${target === '' ? '' : `   target: ${target}`}`)
}

/** ns per call over `iterations`, best of 5 runs (the least disturbed by the machine). */
function nsPerCall (iterations: number, body: () => void): number {
  let best = Infinity
  for (let run = 0; run < 5; run++) {
    const started = process.hrtime.bigint()
    for (let index = 0; index < iterations; index++) body()
    best = Math.min(best, Number(process.hrtime.bigint() - started) / iterations)
  }
  return best
}

async function nsPerAsyncCall (iterations: number, body: () => Promise<unknown>): Promise<number> {
  let best = Infinity
  for (let run = 0; run < 5; run++) {
    const started = process.hrtime.bigint()
    for (let index = 0; index < iterations; index++) await body()
    best = Math.min(best, Number(process.hrtime.bigint() - started) / iterations)
  }
  return best
}

async function resolverSection (): Promise<void> {
  console.log('\n## resolver')
  const resolution: Resolution = {
    outcome: 'answer',
    instances: manyInstances(20).map((instance) => ({ ...instance, priority: 1, weight: 1, target: instance.address })),
    ttlSeconds: 0, nameserver: '127.0.0.1:8600', transport: 'udp', tcpReason: undefined
  }
  const resolver: Resolver = { resolve: async () => resolution }
  const clock = new ManualClock()
  const cache = new ResolverCache({ resolver, policy: POLICY, clock, random: new SeededRandom(1) })
  await cache.lookup(WEB)
  report('cached lookup, peek() (sync, the hot path)', `${nsPerCall(1_000_000, () => cache.peek(WEB)).toFixed(0)} ns`, '< 1000 ns')
  report('cached lookup, await lookup()', `${(await nsPerAsyncCall(200_000, async () => await cache.lookup(WEB))).toFixed(0)} ns`)
  const realClockCache = new ResolverCache({ resolver, policy: { ...POLICY, ttl: { minMs: 30_000, maxMs: 30_000 } }, clock: systemClock, random: systemRandom })
  await realClockCache.lookup(WEB)
  report('cached lookup, peek() with the system clock', `${nsPerCall(100_000, () => realClockCache.peek(WEB)).toFixed(0)} ns`, '< 1000 ns')

  const server = await ConsulLikeDnsServer.start(undefined)
  try {
    server.setService(WEB.name, manyInstances(3))
    const { resolver: real } = makeResolver([server.address], { timeoutMs: 3000 })
    const coalescing = new ResolverCache({ resolver: real, policy: POLICY, clock: systemClock, random: systemRandom })
    const started = performance.now()
    await Promise.all(Array.from({ length: 10_000 }, async () => await coalescing.lookup(WEB)))
    report('DNS queries sent for 10,000 concurrent lookups of one name', `${server.queries.length}`, '1')
    report('  time until all 10,000 were answered', `${(performance.now() - started).toFixed(1)} ms`)

    server.setService('_big._prod.service.consul', manyInstances(200))
    const big = { kind: 'srv', name: '_big._prod.service.consul' } as const
    const before = performance.now()
    const rounds = 50
    for (let round = 0; round < rounds; round++) await real.resolve(big)
    report('resolve 200 instances (UDP cut silently, then TCP)*', `${((performance.now() - before) / rounds).toFixed(2)} ms`)
    const small = performance.now()
    for (let round = 0; round < 500; round++) await real.resolve(WEB)
    report('resolve 3 instances over UDP*', `${((performance.now() - small) / 500 * 1000).toFixed(0)} µs`)
  } finally {
    await server.stop()
  }
  const answer = new Packet()
  answer.header.qr = 1
  answer.questions.push(new Packet.Question(WEB.name, Packet.TYPE.SRV, Packet.CLASS.IN))
  for (let index = 0; index < 3; index++) {
    answer.answers.push({ name: WEB.name, type: Packet.TYPE.SRV, class: Packet.CLASS.IN, ttl: 0, priority: 1, weight: 1, port: 8000 + index, target: `n${index}.node.dc1.consul` } as never)
    answer.additionals.push({ name: `n${index}.node.dc1.consul`, type: Packet.TYPE.A, class: Packet.CLASS.IN, ttl: 0, address: `10.0.0.${index}` } as never)
  }
  const bytes = answer.toBuffer()
  report(`decode a ${bytes.length}-byte SRV×3 + A×3 answer (dns2 codec)`, `${(nsPerCall(20_000, () => Packet.parse(bytes)) / 1000).toFixed(1)} µs`)
}

console.log(`srvgate bench: node ${process.version}, ${new Date().toISOString()}`)
const sections = process.argv.slice(2)
const wanted = (name: string) => sections.length === 0 || sections.includes(name)
if (wanted('resolver')) {
  await resolverSection()
  console.log('* round trips to the in-process test DNS server: its encoding and trimming are counted too')
}
if (wanted('routing')) routingSection(report)
if (wanted('policies')) await policiesSection(report, nsPerCall, nsPerAsyncCall)
if (wanted('proxy')) await proxySection(report)
if (wanted('flood')) await floodSection(report)
if (wanted('soak')) await soakSection(report)
if (wanted('memory')) await memorySection(report)
if (wanted('dns-face')) await dnsFaceSection(report)
if (wanted('tracing')) await tracingSection(report)
if (wanted('grpc')) await grpcSection(report)
if (wanted('client')) await clientSection(report)
if (wanted('peers')) await peersSection(report)
