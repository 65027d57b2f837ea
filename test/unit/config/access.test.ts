/** frontends[].access and rateLimit as the configuration compiles them (config/compile-policies.ts): defaults, and each mistake refused with its path. */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { parseConfigText } from '../../../src/config/load.js'

const BASE = `
listen: { http: "127.0.0.1:8080" }
resolvers: { consul: { nameservers: [127.0.0.1:8600] } }
backends: { web: { discovery: { resolver: consul, srv: _web._tcp.service.consul } } }
`
const frontend = (extra: string, match = '{}') => `${BASE}frontends: [ { name: site, match: ${match}, env: ${match.includes('{env}') ? '{ pattern: "pr-[0-9]+" }' : 'null'}, backend: ${match.includes('{env}') ? '{ template: "web-{env}", discovery: { resolver: consul, srv: "_web._{env}.service.consul" } }' : 'web'}, ${extra} } ]\n`.replace('env: null, ', '')

test('access: allow/deny as CIDR sets, basicAuth\'s realm defaulted, forwardAuth\'s copyHeaders lower case and timeout 5s; rateLimit\'s defaults', () => {
  const config = parseConfigText(frontend('access: { allow: [10.0.0.0/8], deny: [10.9.9.9], basicAuth: { usersFile: /etc/u }, forwardAuth: { url: "http://auth:9000/check", copyHeaders: [X-User, x-user] } }, rateLimit: { requestsPerSecond: 10 }'), {})
  const access = config.frontends[0]?.access
  assert.ok(access?.addresses?.allow?.matches('10.1.2.3'))
  assert.ok(access?.addresses?.deny.matches('10.9.9.9'))
  assert.deepEqual(access?.basicAuth, { realm: 'srvgate', usersFile: '/etc/u' })
  assert.deepEqual(access?.forwardAuth, { url: 'http://auth:9000/check', copyHeaders: ['x-user'], timeoutMs: 5000 })
  assert.deepEqual(config.frontends[0]?.rateLimit, { requestsPerSecond: 10, burst: 10, key: { kind: 'client-ip' }, maxKeys: 100000, redis: undefined })
  const keyed = parseConfigText(frontend('rateLimit: { requestsPerSecond: 0.5, burst: 3, key: "header:X-Api-Key", store: { redis: { url: "redis://127.0.0.1:6379" } } }'), {})
  assert.deepEqual(keyed.frontends[0]?.rateLimit, { requestsPerSecond: 0.5, burst: 3, key: { kind: 'header', name: 'x-api-key' }, maxKeys: 100000, redis: { url: 'redis://127.0.0.1:6379', prefix: 'srvgate:ratelimit:', timeoutMs: 50 } })
  const templated = parseConfigText(frontend('access: { basicAuth: { realm: "preview {env}", usersFile: /etc/u }, forwardAuth: { url: "http://auth/{env}" } }', '{ host: "{env}.preview.example.com" }'), {})
  assert.equal(templated.frontends[0]?.access?.basicAuth?.realm, 'preview {env}')
  assert.equal(parseConfigText(frontend(''), {}).frontends[0]?.access, undefined, 'no access: nothing to apply')
})

test('access and rateLimit mistakes are refused with their path', () => {
  const cases: Array<[string, string]> = [
    ['access: {}', 'frontends[0].access: names nothing to check'],
    ['access: { allow: [10.0.0.0/33] }', 'frontends[0].access.allow[0]'],
    ['access: { basicAuth: { realm: "a\\"b", usersFile: /u } }', 'frontends[0].access.basicAuth.realm'],
    ['access: { basicAuth: { realm: "{env}", usersFile: /u } }', 'frontends[0].access.basicAuth.realm: {env} needs a match.host that captures {env}'],
    ['access: { basicAuth: { realm: r } }', 'frontends[0].access.basicAuth'],
    ['access: { basicAuth: { userFile: /u } }', 'frontends[0].access.basicAuth.userFile: is not a known field (did you mean usersFile?)'],
    ['access: { basicauth: { usersFile: /u } }', 'frontends[0].access.basicauth: is not a known field (did you mean basicAuth?)'],
    ['access: { forwardAuth: { url: "http://a/", copyHeader: [X-User] } }', 'frontends[0].access.forwardAuth.copyHeader: is not a known field (did you mean copyHeaders?)'],
    ['rateLimit: { requestsPerSecond: 1, brust: 3 }', 'frontends[0].rateLimit.brust: is not a known field (did you mean burst?)'],
    ['access: { basicAuth: { realm: "{envv}", usersFile: /u } }', 'frontends[0].access.basicAuth.realm: {envv} is not a placeholder'],
    ['access: { basicAuth: { usersFile: "/etc/{env}.htpasswd" } }', 'frontends[0].access.basicAuth.usersFile: no placeholder is filled in a file name'],
    ['access: { forwardAuth: { url: "http://auth/?env={envv}" } }', 'frontends[0].access.forwardAuth.url: {envv} is not a placeholder'],
    ['access: { forwardAuth: { url: "ftp://auth/" } }', 'frontends[0].access.forwardAuth.url'],
    ['access: { forwardAuth: { url: "http://:80/" } }', 'frontends[0].access.forwardAuth.url: is not an http:// or https:// URL with a host'],
    ['access: { forwardAuth: { url: "http://auth/", copyHeaders: [X-Forwarded-For] } }', 'frontends[0].access.forwardAuth.copyHeaders[0]: srvgate writes x-forwarded-for itself'],
    ['access: { forwardAuth: { url: "http://auth/", copyHeaders: [Connection] } }', 'frontends[0].access.forwardAuth.copyHeaders[0]: connection is hop-by-hop'],
    ['rateLimit: { requestsPerSecond: 0 }', 'frontends[0].rateLimit.requestsPerSecond'],
    ['rateLimit: { requestsPerSecond: 1, key: "cookie:a" }', 'frontends[0].rateLimit.key'],
    ['rateLimit: { requestsPerSecond: 1, store: { redis: { url: "http://r" } } }', 'frontends[0].rateLimit.store.redis.url']
  ]
  for (const [extra, message] of cases) {
    assert.throws(() => parseConfigText(frontend(extra), {}), (error: Error) => error.message.includes(message), `${extra}\n→ ${message}`)
  }
})
