import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { parseConfigText } from '../../../src/config/load.js'
import { loadConfigFile } from '../../../src/config/load-file.js'
import { gatewaySchema } from '../../../src/config/schema.js'
import { ConfigError } from '../../../src/errors.js'
import { validatorSource } from '../../../scripts/validator-source.js'

const MINIMAL = `
listen: { http: 127.0.0.1:8080 }
resolvers:
  consul: { nameservers: [127.0.0.1:8600] }
backends:
  web: { discovery: { resolver: consul, srv: _web._prod.service.consul } }
frontends:
  - { name: all, match: {}, backend: web }
`

function issuesOf (text: string, env: Record<string, string> = {}): string[] {
  try {
    parseConfigText(text, env)
  } catch (error) {
    assert.ok(error instanceof ConfigError, `expected ConfigError, got ${String(error)}`)
    assert.ok(error.issues.every((issue) => issue.line === undefined || issue.line > 0))
    // Lines are checked by the CLI tests; these tables are about paths and messages.
    return error.message.split('\n').map((line) => line.replace(/ \(line \d+\)$/, ''))
  }
  assert.fail('the configuration was accepted')
}

test('the annotated example config/gateway.yaml loads', async () => {
  const config = await loadConfigFile('config/gateway.yaml')
  assert.deepEqual(config.frontends.map((frontend) => frontend.name), ['staging-host', 'canary-header', 'preview', 'billing', 'api', 'canary-by-header', 'prod', 'orders-grpc'])
  assert.equal(config.backends.get('orders-grpc')?.protocol, 'h2c')
  assert.deepEqual(config.splits.get('www')?.members, [{ backend: 'web-canary', weight: 10 }, { backend: 'web-prod', weight: 90 }])
  assert.equal(config.backends.get('api')?.failover.length, 2)
  assert.deepEqual(config.frontends[0]?.match.host, { kind: 'suffix', suffix: '.staging.example.com' })
  assert.deepEqual(config.frontends[2]?.match.host, { kind: 'capture', prefix: '', suffix: '.preview.example.com' })
  assert.equal(config.frontends[2]?.backend.kind, 'template')
  assert.deepEqual(config.backends.get('billing-legacy')?.discovery, { kind: 'address', resolver: 'consul', name: 'billing.legacy.internal', port: 8080 })
})

test('defaults are documented in the schema and applied, durations compiled to milliseconds', () => {
  const config = parseConfigText(MINIMAL, {})
  const resolver = config.resolvers.get('consul')
  assert.ok(resolver !== undefined)
  assert.equal(resolver.timeoutMs, 500)
  assert.equal(resolver.attempts, 3)
  assert.deepEqual(resolver.ttl, { minMs: 1000, maxMs: 30_000 })
  assert.equal(resolver.staleForMs, 60_000)
  assert.equal(resolver.negativeTtlMs, 5000)
  assert.equal(resolver.emptyGraceMs, 2000)
  assert.equal(resolver.ednsPayload, 4096)
  assert.equal(config.listen.admin.label, '127.0.0.1:9901')
  assert.deepEqual(config.drain, { delayMs: 5000, timeoutMs: 30_000 })
  const backend = config.backends.get('web')
  assert.equal(backend?.balance, 'weighted')
  assert.deepEqual(backend?.outlier, { consecutiveFailures: 3, ejectForMs: 10_000, maxEjectedPercent: 50 })
  assert.equal(backend?.retry.attempts, 2)
  assert.deepEqual([...backend?.retry.on ?? []], ['connect-failure', 502, 503, 504])
  assert.deepEqual(backend?.timeouts, { connectMs: 1000, responseMs: 30_000 })
  assert.equal(backend?.healthCheck, undefined)
})

test('compound durations (1h30m, 1m30s) are accepted wherever a duration is; a malformed one is named by path with the reason', () => {
  const config = parseConfigText(MINIMAL.replace('{ nameservers: [127.0.0.1:8600] }', '{ nameservers: [127.0.0.1:8600], staleFor: 1h30m, timeout: 1s500ms }') + 'drain: { timeout: 1m30s }\n', {})
  assert.equal(config.resolvers.get('consul')?.staleForMs, 5_400_000)
  assert.equal(config.resolvers.get('consul')?.timeoutMs, 1500)
  assert.equal(config.drain.timeoutMs, 90_000)
  assert.deepEqual(issuesOf(MINIMAL + 'drain: { delay: 1h1h, timeout: 30m1h }\n'), [
    'drain.delay: must be a duration such as 250ms, 1s or 5m; 1h1h has h twice (each unit once, largest first: 1h30m)',
    'drain.timeout: must be a duration such as 250ms, 1s or 5m; 30m1h has h after a smaller unit (largest first: 1h30m, not 30m1h)'
  ])
})

test('the compiled configuration is frozen', () => {
  const config = parseConfigText(MINIMAL, {})
  assert.ok(Object.isFrozen(config))
  assert.ok(Object.isFrozen(config.frontends))
  assert.ok(Object.isFrozen(config.resolvers.get('consul')?.ttl))
  assert.throws(() => { (config.listen as { http: unknown }).http = null })
})

test('JSON with the same shape is read too', () => {
  const config = parseConfigText(JSON.stringify({
    listen: { http: '[::1]:8080' },
    resolvers: { c: { nameservers: ['[::1]:8600', '127.0.0.1:8600'], ttl: { min: '250ms', max: '5s' } } },
    backends: { b: { discovery: { resolver: 'c', srv: '_b._tcp.service.consul' } } }
  }), {})
  assert.equal(config.listen.http?.family, 6)
  assert.deepEqual(config.resolvers.get('c')?.nameservers.map((address) => address.label), ['[::1]:8600', '127.0.0.1:8600'])
})

test('${NAME} is replaced from the environment; an unset one is an error with its path', () => {
  const text = 'listen: { http: "${HOST}:8080" }\nadmin:\n  token: "${TOKEN}"\n'
  const config = parseConfigText(text, { HOST: '127.0.0.1', TOKEN: 's3cret' })
  assert.equal(config.listen.http?.label, '127.0.0.1:8080')
  assert.equal(config.adminToken, 's3cret')
  assert.deepEqual(issuesOf(text, { HOST: '127.0.0.1' }), ['admin.token: environment variable TOKEN is not set'])
})

test('a templated backend written under backends says where it goes', () => {
  assert.deepEqual(issuesOf(`
listen: { http: 127.0.0.1:8080 }
resolvers: { consul: { nameservers: [127.0.0.1:8600] } }
backends:
  web: { template: "web-{env}", discovery: { resolver: consul, srv: "_web._{env}.service.consul" } }
frontends:
  - { name: all, match: {}, backend: web }
`).filter((issue) => issue.includes('template')), ['backends.web.template: is not a known field of a backend: a templated backend is written where a frontend names its backend: frontends[].backend: { template: "web-{env}", discovery: { … } }'])
})

test('every error is reported at once, each with its path', () => {
  const issues = issuesOf(`
listen: { http: nope }
resolvers:
  consul: { nameservers: [], timeout: 5x, attempts: 0 }
backends:
  web-prod:
    discovery: { resolver: consul, srv: a, a: b }
    retry: { attempts: -1 }
    balance: fastest
    colour: blue
frontends:
  - name: preview
    match: { method: get }
    backend: { template: web, discovery: { resolver: consul } }
  - match: {}
    backend: web-prod
`)
  assert.deepEqual(issues.sort(), [
    'backends.web-prod.balance: must be one of: weighted, round-robin, least-request, random, hash',
    'backends.web-prod.colour: is not a known field',
    'backends.web-prod.discovery: takes srv or a, not both',
    'backends.web-prod.discovery.port: is required when a is set',
    'backends.web-prod.retry.attempts: must be an integer >= 0',
    'frontends[0].backend.discovery: needs one of: srv, a',
    'frontends[0].backend.template: must contain {env}',
    'frontends[0].match.method: must be an upper-case HTTP method such as GET',
    'frontends[1].name: is required',
    'listen.http: must be host:port, such as 127.0.0.1:8600 or [::1]:8600',
    'resolvers.consul.attempts: must be an integer >= 1',
    'resolvers.consul.nameservers: must have at least 1 item(s)',
    'resolvers.consul.timeout: must be a duration such as 250ms, 1s or 5m; "x" is not a unit (d, h, m, s, ms)'
  ].sort())
})

test('cross-references and cross-field rules are checked once the shape is right', () => {
  const issues = issuesOf(`
listen: { http: 127.0.0.1:8080 }
resolvers:
  consul: { nameservers: [127.0.0.1:8600], ttl: { min: 10s, max: 1s } }
backends:
  web: { discovery: { resolver: dns, srv: _web._prod.service.consul }, balance: hash }
  env: { discovery: { resolver: consul, srv: "_web._{env}.service.consul" } }
  checked: { discovery: { resolver: consul, srv: x.consul }, healthCheck: { interval: 1s, timeout: 2s } }
frontends:
  - { name: a, match: { host: "{env}.preview.example.com" }, backend: web }
  - { name: a, match: { host: "*.x.{env}.com" }, env: { pattern: "(" }, backend: nope }
  - { name: c, match: { host: www.example.com }, backend: { template: "web-{env}", discovery: { resolver: consul, srv: "_web._{env}.service.consul" } } }
  - { name: d, match: { host: "a.*.example.com" }, backend: web }
`)
  assert.deepEqual(issues.sort(), [
    'backends.checked.healthCheck.timeout: must not be longer than interval',
    'backends.env.discovery.srv: {env} is only allowed in a frontend backend template',
    'backends.web.discovery.resolver: unknown resolver "dns" (known: consul)',
    'backends.web.hashOn: is required when balance is hash',
    'frontends[0].env.pattern: is required when match.host captures {env}',
    'frontends[1].backend: unknown backend "nope" (known: web, env, checked)',
    'frontends[1].env: needs a match.host that captures {env}',
    'frontends[1].env.pattern: is not a valid regular expression: Invalid regular expression: /^(?:()$/: Unterminated group',
    'frontends[1].match.host: * is only allowed as the first label (*.example.com)',
    'frontends[1].name: duplicates the frontend name "a"',
    'frontends[2].backend.template: needs a match.host that captures {env}',
    'frontends[3].match.host: * is only allowed as the first label (*.example.com)',
    'resolvers.consul.ttl: min must not be greater than max'
  ].sort())
})

test('env patterns match whole values', () => {
  const config = parseConfigText(`
listen: { http: 127.0.0.1:8080 }
resolvers: { consul: { nameservers: [127.0.0.1:8600] } }
frontends:
  - name: preview
    match: { host: "{env}.preview.example.com" }
    env: { pattern: "pr-[0-9]{1,6}" }
    backend: { template: "web-{env}", discovery: { resolver: consul, srv: "_web._{env}.service.consul" } }
`, {})
  const pattern = config.frontends[0]?.envPattern
  assert.equal(pattern?.test('pr-12'), true)
  assert.equal(pattern?.test('xpr-12'), false)
  assert.equal(pattern?.test('pr-12.evil'), false)
})

test('YAML syntax errors and duplicate keys are parse errors', () => {
  assert.throws(() => parseConfigText('listen: [', {}), (error: unknown) => error instanceof ConfigError && error.code === 'SG_ERR_CONFIG_PARSE')
  assert.throws(() => parseConfigText('listen: {http: 1.1.1.1:1}\nlisten: {}', {}), (error: unknown) => error instanceof ConfigError && error.code === 'SG_ERR_CONFIG_PARSE')
})

test('a missing file is a read error naming the file', async () => {
  await assert.rejects(loadConfigFile('does/not/exist.yaml'), (error: unknown) =>
    error instanceof ConfigError && error.code === 'SG_ERR_CONFIG_READ' && error.message.includes('does/not/exist.yaml'))
})

test('config/gateway.schema.json (for editors) is the schema the loader uses', () => {
  const file = JSON.parse(readFileSync('config/gateway.schema.json', 'utf8')) as unknown
  assert.deepEqual(file, JSON.parse(JSON.stringify(gatewaySchema)), 'run `npm run schema` to rewrite it')
})

test('src/config/generated-validate.ts is ajv\'s code for that schema, as `npm run schema` writes it', () => {
  const onDisk = readFileSync('src/config/generated-validate.ts', 'utf8')
  assert.ok(onDisk === validatorSource(JSON.parse(readFileSync('config/gateway.schema.json', 'utf8')) as object), 'stale: run `npm run schema`')
})

test('the compiled configuration is read-only for real: Maps and Sets refuse changes, objects are frozen', () => {
  const config = parseConfigText(MINIMAL, {})
  assert.throws(() => { (config.backends as Map<string, unknown>).set('x', {}) }, /read-only/)
  assert.throws(() => { (config.resolvers as Map<string, unknown>).delete('consul') }, /read-only/)
  assert.throws(() => { (config.frontends[0]?.match.methods as Set<string>).add('GET') }, /read-only/)
  assert.equal(Object.isFrozen(config.frontends), true)
  assert.equal(config.backends.size, 1)
})

test('traffic management: a split of backends, failover targets and slowStart compile; what is wrong is named by path', () => {
  const config = parseConfigText(`
listen: { http: 127.0.0.1:8080 }
resolvers:
  consul: { nameservers: [127.0.0.1:8600] }
backends:
  web-v1: { discovery: { resolver: consul, srv: _web._v1.service.consul } }
  web-v2: { discovery: { resolver: consul, srv: _web._v2.service.consul }, slowStart: 30s }
  web-prod:
    split: [ { backend: web-v2, weight: 10 }, { backend: web-v1, weight: 90 } ]
    stickyOn: cookie:session
  api:
    discovery: { resolver: consul, srv: _api._prod.service.dc1.consul }
    failover: [ { resolver: consul, srv: _api._prod.service.dc2.consul } ]
frontends:
  - { name: www, match: { host: www.example.com }, backend: web-prod }
  - { name: api, match: {}, backend: api }
`, {})
  assert.deepEqual(config.splits.get('web-prod'), { name: 'web-prod', members: [{ backend: 'web-v2', weight: 10 }, { backend: 'web-v1', weight: 90 }], stickyOn: { kind: 'cookie', name: 'session' } })
  assert.equal(config.backends.has('web-prod'), false, 'a split is not a backend with discovery')
  assert.deepEqual(config.frontends[0]?.backend, { kind: 'split', name: 'web-prod' })
  assert.deepEqual(config.backends.get('api')?.failover, [{ kind: 'srv', resolver: 'consul', name: '_api._prod.service.dc2.consul' }])
  assert.equal(config.backends.get('web-v2')?.slowStartMs, 30_000)
  assert.equal(config.backends.get('web-v1')?.slowStartMs, undefined)

  // Shape and references first (one report), then what only the compiler sees.
  assert.deepEqual(issuesOf(`
listen: { http: 127.0.0.1:8080 }
resolvers:
  consul: { nameservers: [127.0.0.1:8600] }
backends:
  web: { discovery: { resolver: consul, srv: _web.service.consul }, failover: [ { resolver: dc9, srv: _web.service.dc9.consul } ] }
  outer: { split: [ { backend: web, weight: 1 }, { backend: nowhere, weight: 1 } ] }
  mixed: { split: [ { backend: web, weight: 1 } ], balance: random }
frontends:
  - { name: all, match: {}, backend: outer }
`), [
    'backends.mixed.balance: is not a known field',
    'backends.web.failover[0].resolver: unknown resolver "dc9" (known: consul)',
    'backends.outer.split[1].backend: unknown backend "nowhere" (known: web, outer, mixed)'
  ])
  assert.deepEqual(issuesOf(`
listen: { http: 127.0.0.1:8080 }
resolvers:
  consul: { nameservers: [127.0.0.1:8600] }
backends:
  web: { discovery: { resolver: consul, srv: _web.service.consul } }
  inner: { split: [ { backend: web, weight: 1 } ] }
  outer: { split: [ { backend: inner, weight: 1 }, { backend: web, weight: 0 }, { backend: web, weight: 2 } ] }
  zero: { split: [ { backend: web, weight: 0 } ] }
frontends:
  - { name: all, match: {}, backend: outer }
`), [
    'backends.outer.split[0].backend: "inner" is a split: a split\'s members are backends with discovery (splits do not nest)',
    'backends.outer.split[2].backend: names "web" twice',
    'backends.zero.split: needs a member with a weight above 0'
  ])
})

test('the DNS face: names compile, with the rate limit\'s and dns.tcp\'s defaults; a split, an unknown backend, both or neither of backend and gateway, a TTL under 1s and a 0 TCP deadline are named by path', () => {
  const config = parseConfigText(`${MINIMAL}
dns:
  listen: [127.0.0.1:8653, "[::1]:8653"]
  zone: SrvGate.Internal.
  names: { web: { backend: web }, www: { gateway: true } }
`, {})
  assert.equal(config.dns?.zone, 'srvgate.internal')
  assert.equal(config.dns?.nameserver, 'ns.srvgate.internal')
  assert.equal(config.dns?.ttlSeconds, 5)
  assert.deepEqual([...config.dns?.names ?? []], [['web', { kind: 'backend', backend: 'web' }], ['www', { kind: 'gateway' }]])
  assert.deepEqual(config.dns?.rateLimit, { perSecond: 500, burst: 1000, globalPerSecond: 20_000 })
  assert.deepEqual(config.dns?.tcp, { messageTimeoutMs: 2000, idleTimeoutMs: 10_000, maxConnections: 256, maxConnectionsPerSource: 16 })
  assert.deepEqual(config.dns?.listen.map((address) => address.label), ['127.0.0.1:8653', '[::1]:8653'])
  assert.deepEqual(issuesOf(`
listen: { http: 127.0.0.1:8080 }
resolvers:
  consul: { nameservers: [127.0.0.1:8600] }
backends:
  web: { discovery: { resolver: consul, srv: _web._prod.service.consul } }
  both: { split: [ { backend: web, weight: 1 } ] }
frontends:
  - { name: all, match: {}, backend: web }
dns:
  listen: [127.0.0.1:8653]
  zone: srvgate.internal
  ttl: 500ms
  names: { a: { backend: both }, b: { backend: nowhere }, c: { backend: web, gateway: true }, d: {}, ns: { backend: web } }
  tcp: { messageTimeout: 0s, idleTimeout: 0ms }
`), [
    'dns.ttl: must be at least 1s (DNS TTLs are whole seconds; 0 would defeat caching)',
    'dns.names.a.backend: "both" is a split: a DNS name answers for a backend with discovery',
    'dns.names.b.backend: unknown backend "nowhere" (known: web)',
    'dns.names.c: needs one of backend or gateway: true',
    'dns.names.d: needs one of backend or gateway: true',
    'dns.names.ns: "ns" is the DNS face\'s own name (ns.srvgate.internal: the zone\'s NS, answering with dns.listen\'s addresses); choose another label',
    'dns.tcp.messageTimeout: must be more than 0s',
    'dns.tcp.idleTimeout: must be more than 0s'
  ])
})

test('listeners that would share a socket are an error naming both fields: same address, a wildcard over its family, localhost, the DNS face (UDP and TCP) over a TCP listener', () => {
  const clash = (listen: string, dns?: string): string[] => issuesOf(`${MINIMAL.replace('listen: { http: 127.0.0.1:8080 }', `listen: ${listen}`)}${dns === undefined ? '' : `\ndns: { listen: ${dns}, zone: srvgate.internal, names: {} }\n`}`)
  const cases: Array<{ name: string, listen: string, dns?: string, issues: string[] }> = [
    { name: 'same address', listen: '{ http: 127.0.0.1:8080, admin: 127.0.0.1:8080 }', issues: ['listen.admin: same address as listen.http (127.0.0.1:8080)'] },
    { name: '0.0.0.0 takes every IPv4 address', listen: '{ http: 0.0.0.0:8080, admin: 127.0.0.1:8080 }', issues: ['listen.admin: 127.0.0.1:8080 overlaps listen.http (0.0.0.0:8080): 0.0.0.0 listens on every IPv4 address of port 8080'] },
    { name: ':: takes IPv4 too (dual-stack)', listen: '{ http: "[::]:8443", admin: 10.0.0.5:8443 }', issues: ['listen.admin: 10.0.0.5:8443 overlaps listen.http ([::]:8443): :: listens on every address of port 8443, IPv4 included (dual-stack)'] },
    { name: 'the DNS face binds :: IPv6-only', listen: '{ http: "[::1]:8653", admin: 127.0.0.1:9901 }', dns: '["[::]:8653"]', issues: ['dns.listen[0]: [::]:8653 overlaps listen.http ([::1]:8653): :: listens on every IPv6 address of port 8653'] },
    { name: 'localhost is loopback', listen: '{ http: "[::1]:8080", admin: localhost:8080 }', issues: ['listen.admin: localhost:8080 overlaps listen.http ([::1]:8080): localhost is 127.0.0.1 or ::1 on port 8080'] },
    { name: 'IPv6 written two ways', listen: '{ http: "[::1]:8080", admin: "[0:0:0:0:0:0:0:1]:8080" }', issues: ['listen.admin: same address as listen.http ([::1]:8080)'] },
    { name: 'the DNS face on a TCP listener\'s port', listen: '{ http: 127.0.0.1:8080, admin: 127.0.0.1:9901 }', dns: '[127.0.0.1:8653, 0.0.0.0:9901]', issues: ['dns.listen[1]: 0.0.0.0:9901 overlaps listen.admin (127.0.0.1:9901): 0.0.0.0 listens on every IPv4 address of port 9901'] },
    { name: 'two DNS face entries', listen: '{ http: 127.0.0.1:8080 }', dns: '[127.0.0.1:8653, 127.0.0.1:8653]', issues: ['dns.listen[1]: same address as dns.listen[0] (127.0.0.1:8653)'] }
  ]
  for (const row of cases) assert.deepEqual(clash(row.listen, row.dns), row.issues, row.name)
  // Different ports, different addresses of one family, different families, and port 0 (the kernel picks) are fine.
  for (const listen of ['{ http: 0.0.0.0:8080, admin: 127.0.0.1:9901 }', '{ http: 10.0.0.5:8080, admin: 127.0.0.1:8080 }', '{ http: 0.0.0.0:8080, admin: "[::1]:8080" }', '{ http: 127.0.0.1:0, admin: 127.0.0.1:0 }']) {
    assert.doesNotThrow(() => parseConfigText(MINIMAL.replace('listen: { http: 127.0.0.1:8080 }', `listen: ${listen}`), {}), listen)
  }
})

test('admin.allowedHosts: host names, compiled to lower case without a trailing dot; a port is refused by path', () => {
  assert.deepEqual([...parseConfigText(`${MINIMAL}\nadmin: { allowedHosts: [Srvgate, prometheus-target.monitoring.svc.] }\n`, {}).adminAllowedHosts], ['srvgate', 'prometheus-target.monitoring.svc'])
  assert.deepEqual([...parseConfigText(MINIMAL, {}).adminAllowedHosts], [])
  assert.deepEqual(issuesOf(`${MINIMAL}\nadmin: { allowedHosts: ["srvgate:9901"] }\n`), ['admin.allowedHosts[0]: must be a host name without a port, such as srvgate or srvgate.monitoring.svc'])
})

test('accessLog.query: false by default; true; a list compiled to a set of keys; anything else named by path', () => {
  assert.equal(parseConfigText(MINIMAL).accessLog.query, false)
  assert.equal(parseConfigText(`${MINIMAL}\naccessLog: { query: true }`).accessLog.query, true)
  assert.deepEqual(parseConfigText(`${MINIMAL}\naccessLog: { format: common, query: [page, q] }`).accessLog, { format: 'common', query: new Set(['page', 'q']) })
  assert.deepEqual(issuesOf(`${MINIMAL}\naccessLog: { query: page }`), ['accessLog.query: must be a boolean or an array'])
  assert.deepEqual(issuesOf(`${MINIMAL}\naccessLog: { query: [page, ""] }`), ['accessLog.query[1]: must not be empty'])
})
