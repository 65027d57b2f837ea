/** The routes view's policies (admin/routes-view.ts): every policy a frontend has, in the order they apply, and no secret. */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { parseConfigText } from '../../../src/config/load.js'
import { policiesOf } from '../../../src/admin/routes-view.js'

test('routes view: policies in the order they apply (access, rateLimit, redirect, rewrite, headers, compress); a URL\'s userinfo left out', () => {
  const config = parseConfigText(`
listen: { http: "127.0.0.1:8080" }
resolvers: { consul: { nameservers: [127.0.0.1:8600] } }
backends: { web: { discovery: { resolver: consul, srv: _web._tcp.service.consul } } }
frontends:
  - name: all
    match: {}
    backend: web
    compress: { types: [text/*], minBytes: 100 }
    headers: { request: { remove: [Cookie], set: { X-Team: web } } }
    rewrite: { stripPrefix: /api }
    rateLimit: { requestsPerSecond: 5, burst: 10, key: "header:X-Api-Key" }
    access: { allow: [10.0.0.0/8], deny: [10.6.6.6], basicAuth: { realm: team, usersFile: /etc/u }, forwardAuth: { url: "http://svc:secret@auth:9000/verify", copyHeaders: [X-User] } }
  - { name: plain, match: {}, backend: web }
`, {})
  const [all, plain] = config.frontends
  assert.ok(all !== undefined && plain !== undefined)
  assert.deepEqual(policiesOf(all), [
    { policy: 'access.addresses', detail: 'allow 10.0.0.0/8; deny 10.6.6.6/32' },
    { policy: 'access.basicAuth', detail: 'realm "team", users from /etc/u' },
    { policy: 'access.forwardAuth', detail: 'http://auth:9000/verify, copies x-user' },
    { policy: 'rateLimit', detail: '5/s, burst 10, per header x-api-key' },
    { policy: 'rewrite', detail: 'strip /api' },
    { policy: 'headers.request', detail: 'remove cookie; set x-team' },
    { policy: 'compress', detail: '≥ 100 B' }
  ])
  assert.deepEqual(policiesOf(plain), [])
})
