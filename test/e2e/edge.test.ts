/**
 * Spec §3, row by row, and the @fastify/http-proxy pitfalls of
 * ../shared/PACKAGES.md, against srvgate started through its CLI, real
 * upstream servers and the Consul-like DNS server.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { connect } from 'node:net'
import { ConsulLikeDnsServer, freePort } from '../helpers/dns-server.js'
import { Upstream, type UpstreamReply } from '../helpers/upstream.js'
import { SpawnedGateway } from '../helpers/spawn-gateway.js'
import { send } from '../helpers/http.js'

test('the edge, row by row', async (t) => {
  const dns = await ConsulLikeDnsServer.start(t)
  const prodA = await Upstream.start(t, 'prod-a')
  const prodB = await Upstream.start(t, 'prod-b')
  const flaky = await Upstream.start(t, 'flaky')
  const steady = await Upstream.start(t, 'steady')
  const slow = await Upstream.start(t, 'slow')
  const live = await Upstream.start(t, 'live')
  const deadPort = await freePort()
  const deadPort2 = await freePort()
  flaky.behaviour = (_request, response) => { response.statusCode = 503; response.end('{"busy":true}'); return true }
  slow.behaviour = (_request, response) => { setTimeout(() => { if (!response.destroyed) response.end('late') }, 2000); return true }
  dns.setService('_web._prod.service.consul', [{ address: '127.0.0.1', port: prodA.port }, { address: '127.0.0.1', port: prodB.port }])
  dns.setService('_web._staging.service.consul', [])
  dns.setService('_dead.service.consul', [{ address: '127.0.0.1', port: deadPort }, { address: '127.0.0.1', port: deadPort2 }])
  dns.setService('_flaky.service.consul', [{ address: '127.0.0.1', port: flaky.port, weight: 100 }, { address: '127.0.0.1', port: steady.port, weight: 1 }])
  dns.setService('_slow.service.consul', [{ address: '127.0.0.1', port: slow.port }])
  dns.setService('_upload.service.consul', [{ address: '127.0.0.1', port: deadPort, weight: 100 }, { address: '127.0.0.1', port: live.port, weight: 1 }])

  const gateway = await SpawnedGateway.start(t, `
listen: { http: "127.0.0.1:\${PORT}", admin: "127.0.0.1:\${ADMIN_PORT}" }
resolvers:
  consul: { nameservers: ["${dns.address}"], ttl: { min: 200ms, max: 1s }, timeout: 300ms }
backends:
  web-prod: { discovery: { resolver: consul, srv: _web._prod.service.consul }, balance: round-robin }
  web-staging: { discovery: { resolver: consul, srv: _web._staging.service.consul } }
  dead: { discovery: { resolver: consul, srv: _dead.service.consul }, timeouts: { connect: 300ms } }
  flaky: { discovery: { resolver: consul, srv: _flaky.service.consul }, outlier: { consecutiveFailures: 1000 } }
  slow: { discovery: { resolver: consul, srv: _slow.service.consul }, timeouts: { response: 300ms } }
  upload: { discovery: { resolver: consul, srv: _upload.service.consul }, outlier: { consecutiveFailures: 1000 } }
frontends:
  - { name: staging, match: { host: staging.example.com }, backend: web-staging }
  - { name: dead, match: { host: dead.example.com }, backend: dead }
  - { name: flaky, match: { host: flaky.example.com }, backend: flaky }
  - { name: slow, match: { host: slow.example.com }, backend: slow }
  - { name: upload, match: { host: upload.example.com }, backend: upload }
  - name: preview
    match: { host: "{env}.preview.example.com" }
    env: { pattern: "pr-[0-9]{1,6}" }
    backend: { template: "web-{env}", discovery: { resolver: consul, srv: "_web._{env}.service.consul" } }
  - { name: api, match: { host: www.example.com, pathPrefix: /api/ }, backend: web-prod, rewrite: { stripPrefix: /api } }
  - { name: prod, match: { host: www.example.com }, backend: web-prod }
`)
  const url = gateway.url

  await t.test('no frontend matches → 404 {"error":"no_route"}', async () => {
    const response = await send(`${url}/`, { host: 'unknown.example.org' })
    assert.equal(response.status, 404)
    assert.deepEqual(response.json(), { error: 'no_route' })
  })

  await t.test('backend has no healthy instance → 503 no_healthy_upstream naming the backend', async () => {
    const response = await send(`${url}/`, { host: 'staging.example.com' })
    assert.equal(response.status, 503)
    assert.deepEqual(response.json(), { error: 'no_healthy_upstream', backend: 'web-staging' })
  })

  await t.test('upstream failed after retries → 502 upstream_error, no internal address in the body', async () => {
    const response = await send(`${url}/`, { host: 'dead.example.com' })
    assert.equal(response.status, 502)
    assert.deepEqual(response.json(), { error: 'upstream_error' })
    assert.doesNotMatch(response.body + JSON.stringify(response.headers), /127\.0\.0\.1|ECONNREFUSED/)
  })

  await t.test('upstream too slow → 504 upstream_timeout', async () => {
    const started = Date.now()
    const response = await send(`${url}/`, { host: 'slow.example.com' })
    assert.equal(response.status, 504)
    assert.deepEqual(response.json(), { error: 'upstream_timeout' })
    assert.ok(Date.now() - started < 1500)
  })

  await t.test('malformed request (bad Host) → 400, never forwarded', async () => {
    const before = prodA.requests + prodB.requests
    const response = await send(`${url}/`, { host: 'www.exa mple.com' })
    assert.equal(response.status, 400)
    const raw = await rawRequest(gateway.port, 'GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n')
    assert.match(raw, /^HTTP\/1\.1 400/)
    const garbage = await rawRequest(gateway.port, 'NOT HTTP AT ALL\r\n\r\n')
    assert.match(garbage, /^HTTP\/1\.1 400/)
    assert.match(garbage, /x-request-id: [0-9a-f-]{36}\r\n/)
    assert.match(garbage, /\{"error":"bad_request"\}$/)
    const huge = await rawRequest(gateway.port, `GET / HTTP/1.1\r\nHost: www.example.com\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`)
    assert.match(huge, /^HTTP\/1\.1 431/)
    assert.equal(prodA.requests + prodB.requests, before)
  })

  await t.test('a matching frontend proxies, with x-forwarded-* and the original Host', async () => {
    const response = await send(`${url}/hello?x=1`, { host: 'www.example.com', headers: { 'x-forwarded-for': '203.0.113.9', 'x-real-ip': '203.0.113.9', forwarded: 'for=203.0.113.9' } })
    assert.equal(response.status, 200)
    const reply = response.json() as unknown as UpstreamReply
    assert.match(reply.instance, /^prod-[ab]$/)
    assert.equal(reply.url, '/hello?x=1')
    assert.equal(reply.headers.host, 'www.example.com')
    // trustedProxies is empty: what the client claims is replaced, never appended to.
    assert.equal(reply.headers['x-forwarded-for'], '127.0.0.1')
    assert.equal(reply.headers['x-real-ip'], '127.0.0.1')
    assert.equal(reply.headers.forwarded, 'for=127.0.0.1;host="www.example.com";proto=http')
    assert.equal(reply.headers['x-forwarded-proto'], 'http')
    assert.equal(reply.headers['x-forwarded-host'], 'www.example.com')
  })

  await t.test('rewrite.stripPrefix', async () => {
    const reply = (await send(`${url}/api/orders/7?q=2`, { host: 'www.example.com' })).json() as unknown as UpstreamReply
    assert.equal(reply.url, '/orders/7?q=2')
  })

  await t.test('x-request-id on every response: kept when valid, generated otherwise, forwarded', async () => {
    const kept = await send(`${url}/`, { host: 'www.example.com', headers: { 'x-request-id': 'trace-123' } })
    assert.equal(kept.headers['x-request-id'], 'trace-123')
    assert.equal((kept.json() as unknown as UpstreamReply).headers['x-request-id'], 'trace-123')
    const replaced = await send(`${url}/`, { host: 'www.example.com', headers: { 'x-request-id': 'bad id\u00e9' } })
    assert.match(String(replaced.headers['x-request-id']), /^[0-9a-f-]{36}$/)
    for (const host of ['unknown.example.org', 'staging.example.com', 'dead.example.com', 'slow.example.com']) {
      const response = await send(`${url}/`, { host })
      assert.match(String(response.headers['x-request-id']), /^[0-9a-f-]{36}$/, host)
    }
  })

  await t.test('pitfall: a GET answered 503 is retried once on another instance, not 10 times on the same', async () => {
    flaky.requests = 0
    steady.requests = 0
    const response = await send(`${url}/`, { host: 'flaky.example.com' })
    assert.equal(response.status, 200)
    assert.equal((response.json() as unknown as UpstreamReply).instance, 'steady')
    assert.equal(flaky.requests, 1)
  })

  await t.test('pitfall: a POST answered 503 is not retried (not idempotent)', async () => {
    flaky.requests = 0
    steady.requests = 0
    let sawFlaky = false
    for (let round = 0; round < 5 && !sawFlaky; round++) {
      const response = await send(`${url}/`, { host: 'flaky.example.com', method: 'POST', body: 'x', headers: { 'content-type': 'text/plain' } })
      if (response.status === 503) sawFlaky = true
    }
    assert.ok(sawFlaky, 'the 503 reached the client')
    assert.equal(flaky.requests + steady.requests <= 5, true)
  })

  await t.test('pitfall: a 3 MB POST to a dead instance arrives whole at a live one', async () => {
    live.requests = 0
    const body = Buffer.alloc(3 * 1024 * 1024, 7)
    const response = await send(`${url}/upload`, { host: 'upload.example.com', method: 'POST', body, headers: { 'content-type': 'application/octet-stream' } })
    assert.equal(response.status, 200, response.body)
    const reply = response.json() as unknown as UpstreamReply
    assert.equal(reply.instance, 'live')
    assert.equal(reply.bodyBytes, body.length)
  })

  await t.test('pitfall: text/plain and JSON bodies stream through (no buffering, no bodyLimit 413)', async () => {
    for (const type of ['text/plain', 'application/json', 'application/x-www-form-urlencoded', '']) {
      const body = Buffer.alloc(3 * 1024 * 1024, 65)
      const headers: Record<string, string> = type === '' ? {} : { 'content-type': type }
      const response = await send(`${url}/`, { host: 'www.example.com', method: 'POST', body, headers })
      assert.equal(response.status, 200, `${type}: ${response.body}`)
      assert.equal((response.json() as unknown as UpstreamReply).bodyBytes, body.length, type)
    }
  })

  await t.test('pitfall: Expect: 100-continue, Keep-Alive and Upgrade from the client are not a 500', async () => {
    const variants: Array<Record<string, string>> = [{ expect: '100-continue', 'content-type': 'text/plain' }, { 'keep-alive': 'timeout=5' }, { upgrade: 'h2c' }]
    for (const headers of variants) {
      const response = await send(`${url}/`, { host: 'www.example.com', method: 'POST', body: 'hello', headers })
      assert.equal(response.status, 200, JSON.stringify(headers))
      const forwarded = (response.json() as unknown as UpstreamReply).headers
      assert.equal(forwarded.expect, undefined)
      assert.equal(forwarded['keep-alive'], undefined)
      assert.equal(forwarded.upgrade, undefined)
    }
  })

  await t.test('pitfall: hop-by-hop response headers do not leak to the client', async () => {
    prodA.behaviour = prodB.behaviour = (_request, response) => {
      response.setHeader('connection', 'keep-alive, x-internal-hop')
      response.setHeader('x-internal-hop', 'secret')
      response.setHeader('proxy-authenticate', 'Basic')
      response.setHeader('trailer', 'x-checksum')
      response.setHeader('x-kept', 'yes')
      response.end('ok')
      return true
    }
    try {
      const response = await send(`${url}/`, { host: 'www.example.com' })
      assert.equal(response.status, 200)
      assert.equal(response.headers['x-kept'], 'yes')
      assert.equal(response.headers['x-internal-hop'], undefined)
      assert.equal(response.headers['proxy-authenticate'], undefined)
      assert.equal(response.headers.trailer, undefined)
    } finally {
      prodA.behaviour = prodB.behaviour = undefined
    }
  })

  await t.test('isolation: a bad {env} value is 404 and never reaches DNS', async () => {
    const before = dns.queries.length
    for (const host of ['prod.preview.example.com', 'pr-1234567.preview.example.com', 'pr-1_x.preview.example.com']) {
      const response = await send(`${url}/`, { host })
      assert.equal(response.status, 404, host)
    }
    assert.equal(dns.queries.filter((query, index) => index >= before && query.name.includes('preview')).length, 0)
    assert.equal(dns.queries.slice(before).some((query) => query.name.includes('_web._prod.') === false && query.name.startsWith('_web._')), false)
  })

  await t.test('isolation: a preview env with no instance is 503, never another environment', async () => {
    const response = await send(`${url}/`, { host: 'pr-77.preview.example.com' })
    assert.equal(response.status, 503)
    assert.deepEqual(response.json(), { error: 'no_healthy_upstream', backend: 'web-pr-77' })
    assert.ok(dns.queries.some((query) => query.name === '_web._pr-77.service.consul'))
  })

  await t.test('a templated backend is made on first use and routes to its own instances', async () => {
    const preview = await Upstream.start(t, 'preview-42')
    dns.setService('_web._pr-42.service.consul', [{ address: '127.0.0.1', port: preview.port }])
    const response = await send(`${url}/`, { host: 'pr-42.preview.example.com' })
    assert.equal(response.status, 200)
    assert.equal((response.json() as unknown as UpstreamReply).instance, 'preview-42')
  })

  await t.test('templated backends share their template\'s metric label: no label per environment', async () => {
    for (let index = 0; index < 20; index++) await send(`${url}/`, { host: `pr-${1000 + index}.preview.example.com` })
    const metrics = (await send(`${gateway.adminUrl}/metrics`)).body
    assert.match(metrics, /srvgate_http_requests_total\{frontend="preview",backend="web-\{env\}",status_class="5xx",code="5\d\d"\} \d+/)
    assert.doesNotMatch(metrics, /backend="web-pr-/)
  })

  await t.test('one JSON access-log line per request, no bodies, no secrets', async () => {
    await send(`${url}/logged`, { host: 'www.example.com', headers: { authorization: 'Bearer hunter2', cookie: 'session=s3cret', 'x-request-id': 'log-me' } })
    const line = await gateway.waitForLog((entry) => entry.requestId === 'log-me' && entry.msg === 'request')
    assert.equal(line.frontend, 'prod')
    assert.equal(line.backend, 'web-prod')
    assert.match(String(line.instance), /^127\.0\.0\.1:\d+$/)
    assert.equal(line.status, 200)
    assert.equal(typeof line.durationMs, 'number')
    assert.equal(line.retries, 0)
    const all = JSON.stringify(gateway.logs)
    assert.doesNotMatch(all, /hunter2|s3cret/)
  })
})

async function rawRequest (port: number, text: string): Promise<string> {
  return await new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => socket.write(text))
    let received = ''
    socket.on('data', (chunk) => { received += chunk.toString() })
    socket.on('end', () => resolve(received))
    socket.on('error', reject)
    setTimeout(() => { socket.destroy(); resolve(received) }, 2000)
  })
}

