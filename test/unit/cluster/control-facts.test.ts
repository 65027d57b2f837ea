/**
 * A worker's side of one configuration generation, joined to a scripted
 * primary by the in-memory channel: a real BackendRegistry builds its
 * backends on the GenerationFacts; the primary's sets, health and template
 * refusals arrive as messages (checked on receipt) and are applied the way a
 * worker applies them (applyFromPrimary, found by generation with
 * stateOfGeneration); passive outcomes and template requests go back. The
 * refusals are then answered as route-request.ts answers them.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { inProcessChannel } from '../../../src/cluster/channel.js'
import { GenerationFacts, applyFromPrimary } from '../../../src/cluster/control-facts.js'
import { stateOfGeneration } from '../../../src/cluster/generations.js'
import type { MessageOf, ToPrimary, ToWorker, WireSnapshot } from '../../../src/cluster/protocol.js'
import { parseConfigText } from '../../../src/config/load.js'
import type { BackendTemplateConfig } from '../../../src/config/types.js'
import { ErrorCode, ProxyError } from '../../../src/errors.js'
import { routeRequest, type RoutingState } from '../../../src/proxy/route-request.js'
import { errorReply } from '../../../src/proxy/error-reply.js'
import { Router } from '../../../src/routing/router.js'
import { Backend } from '../../../src/upstream/backend.js'
import { BackendRegistry } from '../../../src/upstream/registry.js'
import { ManualClock } from '../../../src/util/clock.js'
import { SeededRandom } from '../../../src/util/random.js'

// Nothing listens there: a worker never asks DNS, and this test would hang if it did.
const CONFIG = `
listen: { http: 127.0.0.1:0 }
resolvers: { consul: { nameservers: ["127.0.0.1:23553"] } }
frontends:
  - { name: www, match: { host: www.example.com }, backend: web }
  - name: preview
    match: { host: "{env}.preview.example.com" }
    env: { pattern: "pr-[0-9]+" }
    backend: { template: "web-{env}", discovery: { resolver: consul, srv: "_web._{env}.service.consul" } }
backends:
  web: { discovery: { resolver: consul, srv: _web._tcp.service.consul } }
templatedBackends: { newPerSecond: 2 }
`

function answer (...ports: number[]): WireSnapshot {
  return { status: 'answer', instances: ports.map((port) => ({ address: '127.0.0.1', port, priority: 0, weight: 1 })), isStale: false, refused: [] }
}

type Generational = MessageOf<ToWorker, 'srvgate:set' | 'srvgate:health' | 'srvgate:template-refused'>

async function worker (t: import('node:test').TestContext) {
  const clock = new ManualClock()
  const config = parseConfigText(CONFIG, {})
  const { primary, worker: end } = inProcessChannel({ error: (fields) => { throw new Error(`invalid message: ${JSON.stringify(fields)}`) } })
  const atPrimary: ToPrimary[] = []
  primary.onMessage((message) => { atPrimary.push(message) })
  const view = new GenerationFacts(1, [{ name: 'web', snapshot: answer(23501, 23502), health: [] }], (message) => { end.send(message) })
  const registry = BackendRegistry.replica(config, { clock, random: new SeededRandom(1) }, view)
  const running = { generation: 1, view, registry }
  end.onMessage((message) => {
    if (message.type !== 'srvgate:set' && message.type !== 'srvgate:health' && message.type !== 'srvgate:template-refused') return
    const state = stateOfGeneration(message.generation, running, undefined)
    applyFromPrimary(message satisfies Generational, state?.view, state?.registry)
  })
  await registry.start()
  t.after(() => { registry.stop() })
  const template = (config.frontends[1]?.backend as { template: BackendTemplateConfig }).template
  const routing: RoutingState = { config, generation: 1, router: new Router(config.frontends), registry }
  return { clock, primary, atPrimary, registry, template, routing }
}

const ports = (backend: Backend): number[] => backend.usableGroups().flat().map(({ port }) => port).sort()

test('the set sent with the configuration serves at once; a changed set replaces it; the same set keeps its object', async (t) => {
  const { primary, registry } = await worker(t)
  const web = registry.get('web') as Backend
  assert.ok(web.isReady, 'no wait on a first resolution the primary already had')
  assert.deepEqual(ports(web), [23501, 23502])
  primary.send({ type: 'srvgate:set', generation: 1, name: 'web', snapshot: answer(23503) })
  assert.deepEqual(ports(web), [23503])
  const set = web.set
  primary.send({ type: 'srvgate:set', generation: 1, name: 'web', snapshot: answer(23503) })
  assert.equal(web.set, set, 'readers compare sets by identity')
  // A generation this worker does not run (late, or not yet prepared): dropped.
  primary.send({ type: 'srvgate:set', generation: 2, name: 'web', snapshot: answer(23504) })
  assert.deepEqual(ports(web), [23503])
})

test('health as the primary decided it: ejected for a duration on this process\'s clock, let back early', async (t) => {
  const { clock, primary, registry } = await worker(t)
  const web = registry.get('web') as Backend
  primary.send({ type: 'srvgate:health', generation: 1, name: 'web', health: { key: '127.0.0.1:23501', ejectedForMs: 5_000, ejections: 1, isFailingActiveCheck: false } })
  assert.deepEqual(ports(web), [23502])
  clock.advance(4_999)
  assert.deepEqual(ports(web), [23502])
  clock.advance(1)
  assert.deepEqual(ports(web), [23501, 23502])
  primary.send({ type: 'srvgate:health', generation: 1, name: 'web', health: { key: '127.0.0.1:23502', ejectedForMs: 60_000, ejections: 2, isFailingActiveCheck: false } })
  assert.deepEqual(ports(web), [23501])
  primary.send({ type: 'srvgate:health', generation: 1, name: 'web', health: { key: '127.0.0.1:23502', ejectedForMs: 0, ejections: 2, isFailingActiveCheck: false } })
  assert.deepEqual(ports(web), [23501, 23502])
  primary.send({ type: 'srvgate:health', generation: 1, name: 'web', health: { key: '127.0.0.1:23502', ejectedForMs: 0, ejections: 2, isFailingActiveCheck: true } })
  assert.deepEqual(ports(web), [23501])
})

test('passive outcomes go to the primary as they happen: every failure, and the success that ends a run', async (t) => {
  const { atPrimary, registry } = await worker(t)
  const web = registry.get('web') as Backend
  const instance = web.set.get('127.0.0.1:23501')
  assert.ok(instance !== undefined)
  web.report(instance, 'success')
  web.report(instance, 'connect-failure')
  web.report(instance, 'status-5xx')
  web.report(instance, 'success')
  web.report(instance, 'success')
  assert.deepEqual(atPrimary.filter(({ type }) => type === 'srvgate:report'), [
    { type: 'srvgate:report', generation: 1, name: 'web', key: '127.0.0.1:23501', outcome: 'connect-failure' },
    { type: 'srvgate:report', generation: 1, name: 'web', key: '127.0.0.1:23501', outcome: 'status-5xx' },
    { type: 'srvgate:report', generation: 1, name: 'web', key: '127.0.0.1:23501', outcome: 'success' }
  ])
})

test('a templated backend is asked of the primary on first use, serves its set, and is released when it goes', async (t) => {
  const { primary, atPrimary, registry, template } = await worker(t)
  const backend = registry.template(template, 'pr-1')
  assert.ok(backend instanceof Backend)
  assert.deepEqual(atPrimary.at(-1), { type: 'srvgate:template', generation: 1, name: 'web-pr-1', template: 'web-{env}', env: 'pr-1' })
  assert.equal(backend.isReady, false)
  primary.send({ type: 'srvgate:set', generation: 1, name: 'web-pr-1', snapshot: answer(23511) })
  await backend.ready()
  assert.deepEqual(ports(backend), [23511])
  registry.stop()
  assert.deepEqual(atPrimary.at(-1), { type: 'srvgate:release', generation: 1, name: 'web-pr-1' })
})

/** The primary refuses every template request the way it is told to, at once (before the worker's send returns). */
function refuseAll (primary: Awaited<ReturnType<typeof worker>>['primary'], reason: 'rate' | 'bound', retryAfterMs: number): void {
  primary.onMessage((message) => {
    if (message.type === 'srvgate:template') primary.send({ type: 'srvgate:template-refused', generation: message.generation, name: message.name, reason, retryAfterMs })
  })
}

test('a refusal past newPerSecond: the waiting request is answered 503 with Retry-After, the backend forgotten, the next request asks again', async (t) => {
  const { primary, atPrimary, registry, routing } = await worker(t)
  refuseAll(primary, 'rate', 2400)
  const request = { method: 'GET', url: '/', headers: { host: 'pr-2.preview.example.com' }, rawHeaders: ['Host', 'pr-2.preview.example.com'] }
  const routed = await routeRequest(routing, request)
  assert.ok(routed instanceof ProxyError)
  assert.equal(routed.code, ErrorCode.TEMPLATE_RATE_LIMITED)
  assert.deepEqual(errorReply(routed), { ...errorReply(routed), status: 503, retryAfterS: 3 }, 'the control plane\'s wait, rounded up to seconds')
  assert.equal(registry.named('web-pr-2'), undefined, 'forgotten: the next request asks again')
  assert.deepEqual(atPrimary.map(({ type }) => type), ['srvgate:template', 'srvgate:release'])
  await routeRequest(routing, request)
  assert.deepEqual(atPrimary.map(({ type }) => type), ['srvgate:template', 'srvgate:release', 'srvgate:template', 'srvgate:release'])
})

test('a refusal at the bound: the waiting request is answered no_healthy_upstream, the backend forgotten', async (t) => {
  const { primary, registry, routing, template } = await worker(t)
  refuseAll(primary, 'bound', 0)
  const request = { method: 'GET', url: '/', headers: { host: 'pr-3.preview.example.com' }, rawHeaders: ['Host', 'pr-3.preview.example.com'] }
  const routed = await routeRequest(routing, request)
  assert.ok(routed instanceof ProxyError)
  assert.equal(routed.code, ErrorCode.NO_HEALTHY_INSTANCE)
  assert.equal(errorReply(routed).retryAfterS, undefined)
  assert.equal(registry.named('web-pr-3'), undefined)
  // Refused as it starts, before anyone waits: ready at once, no instance, no error to pass for DNS's.
  const backend = registry.template(template, 'pr-4')
  assert.ok(backend instanceof Backend)
  await backend.ready()
  assert.equal(backend.snapshot.status, 'failed')
  assert.equal(backend.snapshot.lastError, undefined)
  assert.deepEqual({ ...backend.refusal }, { reason: 'bound', retryAfterMs: 0 }, 'the refusal is the backend\'s, not a DNS error in its snapshot')
})
