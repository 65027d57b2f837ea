/** Templated backends: made on demand, bounded in number, reclaimed when idle. */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { ConsulLikeDnsServer } from '../../helpers/dns-server.js'
import { parseConfigText } from '../../../src/config/load.js'
import { BackendRegistry } from '../../../src/upstream/registry.js'
import { Backend } from '../../../src/upstream/backend.js'
import { TemplateRefusal } from '../../../src/upstream/templated-backends.js'
import { ManualClock } from '../../../src/util/clock.js'
import { SeededRandom } from '../../../src/util/random.js'
import type { BackendTemplateConfig } from '../../../src/config/types.js'

async function setup (t: import('node:test').TestContext, options: { maxTemplated?: number, templateIdleMs?: number, wasAlive?: (name: string) => boolean }, extra = '') {
  const dns = await ConsulLikeDnsServer.start(t)
  const config = parseConfigText(`
listen: { http: 127.0.0.1:0 }
resolvers: { consul: { nameservers: ["${dns.address}"], ttl: { min: 200ms, max: 1s } } }
frontends:
  - name: preview
    match: { host: "{env}.preview.example.com" }
    env: { pattern: "pr-[0-9]+" }
    backend: { template: "web-{env}", discovery: { resolver: consul, srv: "_web._{env}.service.consul" } }
${extra}`, {})
  // The sweeper and discovery run on a ManualClock: reclaiming is a timeline, not a sleep.
  const clock = new ManualClock()
  const registry = BackendRegistry.control(config, { clock, random: new SeededRandom(1), ...options })
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
  assert.ok(backend instanceof Backend)
  assert.equal(backend.name, 'web-pr-1')
  await backend.watcher.start()
  assert.deepEqual(backend.set.instances.map((instance) => instance.key), ['127.0.0.1:9001'])
  assert.equal(registry.template(template, 'pr-1'), backend, 'the same backend on the next request')
  assert.deepEqual(dns.queries.map((query) => query.name), ['_web._pr-1.service.consul'])
})

test('the number of templated backends is bounded: the least recently used idle one gives way', async (t) => {
  const { registry, template, clock } = await setup(t, { maxTemplated: 3 })
  for (let index = 0; index < 50; index++) {
    const backend = registry.template(template, `pr-${index}`)
    assert.ok(backend instanceof Backend)
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
    assert.ok(backend instanceof Backend)
    backend.health.get('127.0.0.1:1').inFlight++
  }
  const refusal = registry.template(template, 'pr-3')
  assert.ok(refusal instanceof TemplateRefusal)
  assert.equal(refusal.reason, 'bound')
})

test('an idle templated backend is reclaimed', async (t) => {
  const { registry, template, clock } = await setup(t, { templateIdleMs: 100 })
  await (registry.template(template, 'pr-9') as Backend).ready()
  assert.equal(registry.all().length, 1)
  clock.advance(99)
  assert.equal(registry.all().length, 1, 'not idle long enough yet')
  clock.advance(150)
  assert.equal(registry.all().length, 0)
  assert.equal(registry.caches.get('consul')?.size, 0, 'its cache entry went too')
})

test('templatedBackends.newPerSecond: past the bucket a new env is refused (rate, with the wait) and DNS is asked nothing; alive envs and envs alive before a reload are not limited', async (t) => {
  const { dns, registry, template, clock } = await setup(t, { wasAlive: (name) => name === 'web-pr-90' }, 'templatedBackends: { newPerSecond: 2 }')
  const made = ['pr-1', 'pr-2'].map((env) => registry.template(template, env))
  assert.ok(made.every((backend) => backend instanceof Backend), 'the burst: newPerSecond at once')
  await Promise.all(made.map(async (backend) => { await (backend as Backend).ready() }))
  const asked = dns.queries.length
  const refused = registry.template(template, 'pr-3')
  assert.ok(refused instanceof TemplateRefusal)
  assert.equal(refused.reason, 'rate')
  assert.equal(refused.retryAfterMs, 500, 'one token every 500 ms at 2 a second')
  assert.equal(registry.template(template, 'pr-1'), made[0], 'an env alive is served whatever the bucket')
  assert.ok(registry.template(template, 'pr-90') instanceof Backend, 'an env alive before the reload is made again without a token')
  clock.advance(499)
  assert.ok(registry.template(template, 'pr-4') instanceof TemplateRefusal)
  clock.advance(1)
  assert.ok(registry.template(template, 'pr-4') instanceof Backend, 'a token half a second later')
  assert.deepEqual(dns.queries.slice(asked).map((query) => query.name).filter((name) => name.includes('pr-3')), [], 'nothing asked for the refused env')
})

test('a templated split member\'s only instance may be ejected while its sibling of the same env has a usable one (the cap holds for a lone templated backend)', async (t) => {
  const dns = await ConsulLikeDnsServer.start(t)
  dns.setService('_web-pr-1._v1.service.consul', [{ address: '127.0.0.1', port: 9001 }])
  dns.setService('_web-pr-1._v2.service.consul', [{ address: '127.0.0.1', port: 9002 }])
  const config = parseConfigText(`
listen: { http: 127.0.0.1:0 }
resolvers: { consul: { nameservers: ["${dns.address}"], ttl: { min: 200ms, max: 1s } } }
frontends:
  - name: preview
    match: { host: "{env}.preview.example.com" }
    env: { pattern: "pr-[0-9]+" }
    backend:
      template: web-{env}
      split:
        - { template: "web-{env}-v2", weight: 10, discovery: { resolver: consul, srv: "_web-{env}._v2.service.consul" } }
        - { template: "web-{env}-v1", weight: 90, discovery: { resolver: consul, srv: "_web-{env}._v1.service.consul" } }
`, {})
  const registry = BackendRegistry.control(config, { clock: new ManualClock(), random: new SeededRandom(1) })
  await registry.start()
  t.after(() => registry.stop())
  const target = config.frontends[0]?.backend
  assert.equal(target?.kind, 'template-split')
  const split = registry.templateSplit((target as { split: import('../../../src/config/types.js').TemplateSplitConfig }).split, 'pr-1')
  assert.ok(!(split instanceof TemplateRefusal))
  await Promise.all(split.members.map(async ({ backend }) => { await backend.ready() }))
  const [v2, v1] = split.members.map(({ backend }) => backend) as [Backend, Backend]
  const dead = v1.set.instances[0]
  assert.ok(dead !== undefined)
  for (let index = 0; index < 3; index++) v1.report(dead, 'connect-failure')
  assert.equal(v1.hasUsableInstance(), false, 'web-pr-1-v1\'s only instance ejected: web-pr-1-v2 takes its share')
  assert.equal(split.choose(undefined), v2)
  // v2's only instance now has no alternative (v1 is all ejected): the cap keeps it.
  const last = v2.set.instances[0]
  assert.ok(last !== undefined)
  for (let index = 0; index < 5; index++) v2.report(last, 'connect-failure')
  assert.equal(v2.hasUsableInstance(), true)
})
