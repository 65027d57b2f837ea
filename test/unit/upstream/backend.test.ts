/**
 * Backend, the stateful core of a request's choice: the instance set from
 * discovery × per-instance health × the balance policy. A ControlBackend
 * decides health; a ReplicaBackend forwards outcomes and applies what was
 * decided. Driven through a real discovery source (RemoteDiscovery, fed
 * snapshots as the control plane's would be) on the ManualClock.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { parseConfigText } from '../../../src/config/load.js'
import type { BackendConfig } from '../../../src/config/types.js'
import { RemoteDiscovery } from '../../../src/cluster/control-facts.js'
import type { WireSnapshot } from '../../../src/cluster/protocol.js'
import type { Backend, Outcome } from '../../../src/upstream/backend.js'
import { ControlBackend } from '../../../src/upstream/control-backend.js'
import { ReplicaBackend } from '../../../src/upstream/replica-backend.js'
import { ForwardedOutcomes } from '../../../src/upstream/forwarded-outcomes.js'
import { ManualClock } from '../../../src/util/clock.js'
import { systemRandom } from '../../../src/util/random.js'

function options (yaml = ''): BackendConfig {
  const config = parseConfigText(`
listen: { http: 127.0.0.1:0 }
resolvers: { consul: { nameservers: ["127.0.0.1:53"] } }
backends: { web: { discovery: { resolver: consul, srv: _web._tcp.consul }, balance: round-robin ${yaml} } }
frontends: [ { name: all, match: {}, backend: web } ]
`, {})
  return config.backends.get('web') as BackendConfig
}

function snapshot (instances: Array<[port: number, priority?: number]>): WireSnapshot {
  return { status: instances.length === 0 ? 'empty' : 'answer', instances: instances.map(([port, priority]) => ({ address: '10.0.0.1', port, priority: priority ?? 1, weight: 1 })), isStale: false, lastError: undefined, refused: [] }
}

type Made<B> = { backend: B, source: RemoteDiscovery, events: string[], forwarded: Array<[string, Outcome]> }

function backend (clock: ManualClock, config: BackendConfig, parts: { name?: string, failover?: Backend[] } = {}): Made<ControlBackend> {
  const events: string[] = []
  let source: RemoteDiscovery | undefined
  const made = new ControlBackend({
    name: parts.name ?? 'web',
    options: config,
    discovery: (onChange) => (source = new RemoteDiscovery({ kind: 'srv', name: '_web._tcp.consul' }, onChange)),
    clock,
    random: systemRandom,
    failover: parts.failover,
    events: {
      instanceEjected: (name, instance) => { events.push(`ejected ${instance.key}`) },
      healthChanged: (_backend, fact) => { events.push(`health ${fact.key}`) }
    }
  })
  return { backend: made, source: source as RemoteDiscovery, events, forwarded: [] }
}

/** A data plane's copy: the same set source, outcomes forwarded, health applied. */
function replica (clock: ManualClock, config: BackendConfig): Made<ReplicaBackend> {
  const events: string[] = []
  const forwarded: Array<[string, Outcome]> = []
  let source: RemoteDiscovery | undefined
  const made = new ReplicaBackend({
    name: 'web',
    options: config,
    discovery: (onChange) => (source = new RemoteDiscovery({ kind: 'srv', name: '_web._tcp.consul' }, onChange)),
    forwardOutcomes: new ForwardedOutcomes((key, outcome) => { forwarded.push([key, outcome]) }),
    clock,
    random: systemRandom,
    events: { instanceEjected: (name, instance) => { events.push(`ejected ${instance.key}`) } }
  })
  return { backend: made, source: source as RemoteDiscovery, events, forwarded }
}

const NONE = new Set<string>()

test('pick: the lowest priority group with a usable instance, never an instance already tried', () => {
  const clock = new ManualClock()
  const { backend: web, source } = backend(clock, options())
  source.apply(snapshot([[1], [2], [3, 2]]))
  const picked = new Set([web.pick(NONE, undefined)?.port, web.pick(NONE, undefined)?.port, web.pick(NONE, undefined)?.port])
  assert.deepEqual([...picked].sort(), [1, 2], 'priority 2 is a backup: unused while priority 1 has a usable instance')
  assert.equal(web.pick(new Set(['10.0.0.1:1']), undefined)?.port, 2)
  assert.equal(web.pick(new Set(['10.0.0.1:1', '10.0.0.1:2']), undefined)?.port, 3, 'every priority-1 instance tried: the backup')
  assert.equal(web.pick(new Set(['10.0.0.1:1', '10.0.0.1:2', '10.0.0.1:3']), undefined), undefined)
})

test('passive health: consecutiveFailures in a row eject for ejectFor on the clock; a success in between resets the run', () => {
  const clock = new ManualClock()
  const { backend: web, source, events } = backend(clock, options(', outlier: { consecutiveFailures: 2, ejectFor: 10s, maxEjectedPercent: 100 }'))
  source.apply(snapshot([[1], [2]]))
  const one = web.set.get('10.0.0.1:1')
  assert.ok(one !== undefined)
  web.report(one, 'reset')
  web.report(one, 'success')
  web.report(one, 'reset')
  assert.deepEqual(events, [], 'a success broke the run')
  web.report(one, 'status-5xx')
  assert.deepEqual(events, ['ejected 10.0.0.1:1', 'health 10.0.0.1:1'])
  for (let index = 0; index < 5; index++) assert.equal(web.pick(NONE, undefined)?.port, 2, 'ejected: never picked')
  assert.equal(web.healthFacts().length, 1)
  assert.equal(web.healthFacts()[0]?.ejectedForMs, 10_000)
  clock.advance(10_000)
  assert.deepEqual(new Set([web.pick(NONE, undefined)?.port, web.pick(NONE, undefined)?.port]), new Set([1, 2]), 'back after ejectFor')
  assert.deepEqual(web.healthFacts(), [])
})

test('maxEjectedPercent holds the last instance back: the backend never ejects itself empty', () => {
  const clock = new ManualClock()
  const { backend: web, source, events } = backend(clock, options(', outlier: { consecutiveFailures: 1, ejectFor: 10s, maxEjectedPercent: 50 }'))
  source.apply(snapshot([[1], [2]]))
  web.report(web.set.get('10.0.0.1:1') as never, 'connect-failure')
  web.report(web.set.get('10.0.0.1:2') as never, 'connect-failure')
  assert.deepEqual(events, ['ejected 10.0.0.1:1', 'health 10.0.0.1:1'], 'the second ejection would pass 50 %')
  assert.equal(web.pick(NONE, undefined)?.port, 2)
})

test('a ReplicaBackend forwards its outcomes instead of judging them: failures, and only the success that ends a run', () => {
  const clock = new ManualClock()
  const { backend: web, source, events, forwarded } = replica(clock, options(', outlier: { consecutiveFailures: 1 }'))
  source.apply(snapshot([[1], [2]]))
  const one = web.set.get('10.0.0.1:1')
  assert.ok(one !== undefined)
  web.report(one, 'success')
  web.report(one, 'timeout')
  web.report(one, 'timeout')
  web.report(one, 'success')
  web.report(one, 'success')
  assert.deepEqual(forwarded, [['10.0.0.1:1', 'timeout'], ['10.0.0.1:1', 'timeout'], ['10.0.0.1:1', 'success']])
  assert.deepEqual(events, [], 'nothing is judged here: the primary decides')
  // The control plane's decision arrives as a health fact.
  web.applyHealth({ key: '10.0.0.1:1', ejectedForMs: 5000, ejections: 1, isFailingActiveCheck: false })
  for (let index = 0; index < 4; index++) assert.equal(web.pick(NONE, undefined)?.port, 2)
  // Let back in early by the primary.
  web.applyHealth({ key: '10.0.0.1:1', ejectedForMs: 0, ejections: 1, isFailingActiveCheck: false })
  assert.deepEqual(new Set([web.pick(NONE, undefined)?.port, web.pick(NONE, undefined)?.port]), new Set([1, 2]))
})

test('failover: the first target with a usable instance serves while the head has none; traffic returns to the head', () => {
  const clock = new ManualClock()
  const config = options()
  const target = backend(clock, config, { name: 'web~failover-1' })
  const head = backend(clock, config, { failover: [target.backend] })
  head.source.apply(snapshot([]))
  target.source.apply(snapshot([[9]]))
  assert.equal(head.backend.serving(NONE), target.backend)
  assert.equal(head.backend.hasUsableInstance(), true, 'usable through the chain')
  head.source.apply(snapshot([[1]]))
  assert.equal(head.backend.serving(NONE), head.backend)
  assert.equal(head.backend.serving(new Set(['10.0.0.1:1'])), target.backend, 'the head tried already: the next attempt fails over')
})

test('in-flight counts: begin and end per instance; a backend with requests in flight is busy', () => {
  const clock = new ManualClock()
  const { backend: web, source } = backend(clock, options())
  source.apply(snapshot([[1]]))
  const one = web.set.get('10.0.0.1:1')
  assert.ok(one !== undefined)
  assert.equal(web.isBusy, false)
  web.begin(one)
  web.begin(one)
  assert.equal(web.inFlight, 2)
  assert.equal(web.isBusy, true)
  web.end(one)
  web.end(one)
  web.end(one)
  assert.equal(web.inFlight, 0, 'never below zero')
  web.hold()
  assert.equal(web.isBusy, true, 'held by another process')
  web.release()
  assert.equal(web.isBusy, false)
})
