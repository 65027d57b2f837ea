/** Templated backends: made on demand, bounded in number, reclaimed when idle. */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { ConsulLikeDnsServer } from '../../helpers/dns-server.js'
import { parseConfigText } from '../../../src/config/load.js'
import { BackendRegistry } from '../../../src/upstream/registry.js'
import { ManualClock } from '../../../src/util/clock.js'
import { SeededRandom } from '../../../src/util/random.js'
import type { BackendTemplateConfig } from '../../../src/config/types.js'

async function setup (t: import('node:test').TestContext, options: { maxTemplated?: number, templateIdleMs?: number }) {
  const dns = await ConsulLikeDnsServer.start(t)
  const config = parseConfigText(`
listen: { http: 127.0.0.1:0 }
resolvers: { consul: { nameservers: ["${dns.address}"], ttl: { min: 200ms, max: 1s } } }
frontends:
  - name: preview
    match: { host: "{env}.preview.example.com" }
    env: { pattern: "pr-[0-9]+" }
    backend: { template: "web-{env}", discovery: { resolver: consul, srv: "_web._{env}.service.consul" } }
`, {})
  // The sweeper and discovery run on a ManualClock: reclaiming is a timeline, not a sleep.
  const clock = new ManualClock()
  const registry = new BackendRegistry(config, { clock, random: new SeededRandom(1), ...options })
  await registry.start()
  t.after(() => registry.stop())
  const frontend = config.frontends[0]
  const template = (frontend?.backend as { template: BackendTemplateConfig }).template
  return { dns, registry, template, clock }
}

test('a template makes one backend per env, resolving its own name', async (t) => {
  const { dns, registry, template } = await setup(t, {})
  dns.setService('_web._pr-1.service.consul', [{ address: '127.0.0.1', port: 9001 }])
  const backend = registry.template(template, 'pr-1')
  assert.equal(backend?.name, 'web-pr-1')
  await backend?.watcher.start()
  assert.deepEqual(backend?.set.instances.map((instance) => instance.key), ['127.0.0.1:9001'])
  assert.equal(registry.template(template, 'pr-1'), backend, 'the same backend on the next request')
  assert.deepEqual(dns.queries.map((query) => query.name), ['_web._pr-1.service.consul'])
})

test('the number of templated backends is bounded: the least recently used idle one gives way', async (t) => {
  const { registry, template, clock } = await setup(t, { maxTemplated: 3 })
  for (let index = 0; index < 50; index++) {
    const backend = registry.template(template, `pr-${index}`)
    assert.ok(backend !== undefined)
    backend.pick(new Set(), undefined)
    clock.advance(1)
  }
  assert.equal(registry.all().length, 3)
  assert.deepEqual(registry.all().map((backend) => backend.name), ['web-pr-47', 'web-pr-48', 'web-pr-49'])
})

test('when every templated backend is busy, a new env gets none (503), never unbounded memory', async (t) => {
  const { registry, template } = await setup(t, { maxTemplated: 2 })
  for (const env of ['pr-1', 'pr-2']) {
    const backend = registry.template(template, env)
    assert.ok(backend !== undefined)
    backend.health.get('127.0.0.1:1').inFlight++
  }
  assert.equal(registry.template(template, 'pr-3'), undefined)
})

test('an idle templated backend is reclaimed', async (t) => {
  const { registry, template, clock } = await setup(t, { templateIdleMs: 100 })
  await registry.template(template, 'pr-9')?.ready()
  assert.equal(registry.all().length, 1)
  clock.advance(99)
  assert.equal(registry.all().length, 1, 'not idle long enough yet')
  clock.advance(150)
  assert.equal(registry.all().length, 0)
  assert.equal(registry.caches.get('consul')?.size, 0, 'its cache entry went too')
})
