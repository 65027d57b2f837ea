/**
 * A frontend's policies (issue 24), through the CLI. Headers: request rules
 * reach the instance (with {env} from a templated frontend), answer rules
 * reach the client, srvgate's own headers stay its own, a frontend without
 * rules forwards as before, and `srvgate check` refuses a rule on a header
 * srvgate writes itself. Redirects: answered before any backend is asked
 * (no DNS query for a templated one), placeholders filled, WebSocket
 * handshakes too; addPrefix reaches the instance.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { writeFileSync, mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ConsulLikeDnsServer } from '../helpers/dns-server.js'
import { Upstream, type UpstreamReply } from '../helpers/upstream.js'
import { SpawnedGateway } from '../helpers/spawn-gateway.js'
import { rawHandshake, send } from '../helpers/http.js'
import { srvgate } from '../helpers/cli.js'

test('headers: request rules reach the instance ({env} filled), answer rules reach the client, srvgate\'s own headers stay; a frontend without rules is untouched', async (t) => {
  const dns = await ConsulLikeDnsServer.start(t)
  const upstream = await Upstream.start(t, 'web')
  upstream.behaviour = (request, response) => {
    const reply: UpstreamReply = { instance: 'web', method: request.method ?? '', url: request.url ?? '', headers: request.headers, bodyBytes: 0 }
    response.setHeader('content-type', 'application/json')
    response.setHeader('server', 'upstream/1.0')
    response.setHeader('x-powered-by', 'php')
    response.setHeader('set-cookie', ['a=1', 'b=2'])
    response.setHeader('cache-control', 'max-age=60')
    response.end(JSON.stringify(reply))
    return true
  }
  const record = [{ address: '127.0.0.1', port: upstream.port }]
  dns.setService('_web._tcp.service.consul', record)
  dns.setService('_web._pr-7.service.consul', record)
  const gateway = await SpawnedGateway.start(t, `
listen: { http: "127.0.0.1:\${PORT}", admin: "127.0.0.1:\${ADMIN_PORT}" }
resolvers: { consul: { nameservers: ["${dns.address}"], ttl: { min: 250ms, max: 1s } } }
backends: { web: { discovery: { resolver: consul, srv: _web._tcp.service.consul } } }
frontends:
  - name: preview
    match: { host: "{env}.preview.example.com" }
    env: { pattern: "pr-[0-9]+" }
    backend: { template: "web-{env}", discovery: { resolver: consul, srv: "_web._{env}.service.consul" } }
    headers:
      request: { set: { X-Env: "preview-{env}", X-Team: web }, remove: [Cookie] }
      response: { set: { Cache-Control: no-store, X-Preview: "{env}" }, remove: [Server, X-Powered-By] }
  - { name: plain, match: {}, backend: web }
`, { workers: 1 })
  const ruled = await send(`${gateway.url}/x`, { host: 'pr-7.preview.example.com', headers: { cookie: 'session=secret', 'x-team': 'spoofed', 'x-forwarded-for': '6.6.6.6' } })
  assert.equal(ruled.status, 200)
  const seen = (ruled.json() as unknown as UpstreamReply).headers
  assert.deepEqual([seen['x-env'], seen['x-team'], seen.cookie], ['preview-pr-7', 'web', undefined])
  assert.equal(seen['x-forwarded-for'], '127.0.0.1', 'srvgate\'s own forwarding headers, untouched by rules')
  assert.ok(typeof seen['x-request-id'] === 'string')
  assert.deepEqual([ruled.headers['cache-control'], ruled.headers['x-preview'], ruled.headers.server, ruled.headers['x-powered-by']], ['no-store', 'pr-7', undefined, undefined])
  assert.deepEqual(ruled.headers['set-cookie'], ['a=1', 'b=2'], 'repeated answer headers stay apart')
  assert.ok(typeof ruled.headers['x-request-id'] === 'string')

  const plain = await send(`${gateway.url}/y`, { headers: { cookie: 'session=1' } })
  assert.equal((plain.json() as unknown as UpstreamReply).headers.cookie, 'session=1')
  assert.deepEqual([plain.headers.server, plain.headers['cache-control'], plain.headers['x-preview']], ['upstream/1.0', 'max-age=60', undefined])
})

test('headers: srvgate check refuses a rule on a header srvgate writes itself, with its path (exit 1)', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'srvgate-headers-'))
  const file = join(dir, 'gateway.yaml')
  writeFileSync(file, `
listen: { http: "127.0.0.1:8080" }
resolvers: { consul: { nameservers: ["127.0.0.1:8600"] } }
backends: { web: { discovery: { resolver: consul, srv: _web._tcp.service.consul } } }
frontends:
  - name: all
    match: {}
    backend: web
    headers: { request: { set: { X-Forwarded-For: 1.2.3.4 } } }
`)
  const result = await srvgate(['check', '-c', file])
  assert.equal(result.code, 1)
  assert.match(result.stderr, /frontends\[0\]\.headers\.request\.set\.X-Forwarded-For: srvgate writes x-forwarded-for itself on every request/)
})

test('redirect: answered before any backend is asked (no DNS for a templated one), with {host}, {path}, {query} and {env}; a handshake is answered too; addPrefix reaches the instance', async (t) => {
  const dns = await ConsulLikeDnsServer.start(t)
  const upstream = await Upstream.start(t, 'web')
  dns.setService('_web._tcp.service.consul', [{ address: '127.0.0.1', port: upstream.port }])
  const gateway = await SpawnedGateway.start(t, `
listen: { http: "127.0.0.1:\${PORT}", admin: "127.0.0.1:\${ADMIN_PORT}" }
resolvers: { consul: { nameservers: ["${dns.address}"], ttl: { min: 250ms, max: 1s } } }
backends: { web: { discovery: { resolver: consul, srv: _web._tcp.service.consul } } }
frontends:
  - { name: moved, match: { host: old.example.com }, backend: web, redirect: { to: "https://new.example.com{path}?{query}", status: 301 } }
  - name: preview-moved
    match: { host: "{env}.old-preview.example.com" }
    env: { pattern: "pr-[0-9]+" }
    backend: { template: "web-{env}", discovery: { resolver: consul, srv: "_web._{env}.service.consul" } }
    redirect: { to: "https://{env}.preview.example.com{path}", status: 308 }
  - { name: api, match: { pathPrefix: /api/ }, backend: web, rewrite: { stripPrefix: /api, addPrefix: /v2 } }
`, { workers: 1 })
  const moved = await send(`${gateway.url}/a/b?x=1`, { host: 'old.example.com' })
  assert.deepEqual([moved.status, moved.headers.location], [301, 'https://new.example.com/a/b?x=1'])
  const bare = await send(`${gateway.url}/a`, { host: 'old.example.com' })
  assert.equal(bare.headers.location, 'https://new.example.com/a', 'no query: no ?')
  const queriesBefore = dns.queries.length
  const preview = await send(`${gateway.url}/x`, { host: 'pr-42.old-preview.example.com', method: 'POST', body: 'data' })
  assert.deepEqual([preview.status, preview.headers.location], [308, 'https://pr-42.preview.example.com/x'])
  assert.equal(dns.queries.length, queriesBefore, 'no DNS asked for a redirecting templated frontend')
  assert.equal(upstream.requests, 0, 'nothing forwarded')
  const line = await gateway.waitForLog((entry) => entry.msg === 'request' && entry.status === 308)
  assert.equal(line.frontend, 'preview-moved')
  const handshake = await rawHandshake(gateway.port, 'old.example.com')
  assert.match(handshake, /^HTTP\/1\.1 301 Moved Permanently\r\n/)
  assert.match(handshake, /\r\nlocation: https:\/\/new\.example\.com\/chat\r\n/)
  const api = await send(`${gateway.url}/api/users?id=1`)
  assert.equal((api.json() as unknown as UpstreamReply).url, '/v2/users?id=1')
})
