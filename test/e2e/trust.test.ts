/**
 * Issue 7, "trust at the edge": each defect found by probing srvgate from
 * outside, as an attacker and as a new operator, replayed against srvgate
 * started through its CLI, with real upstreams, the Consul-like DNS server
 * and raw sockets. Every test here failed before its fix.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { connect, type Socket } from 'node:net'
import { ConsulLikeDnsServer } from '../helpers/dns-server.js'
import { Upstream, type UpstreamReply } from '../helpers/upstream.js'
import { SpawnedGateway, type LogLine } from '../helpers/spawn-gateway.js'
import { send } from '../helpers/http.js'

const sleep = async (ms: number): Promise<void> => { await new Promise((resolve) => setTimeout(resolve, ms)) }

type BackendState = { name: string, refused: Array<{ key: string, reason: string }>, instances: Array<{ key: string, inFlight: number }> }

async function backendState (gateway: SpawnedGateway, name: string): Promise<BackendState | undefined> {
  const state = (await send(`${gateway.adminUrl}/admin/state`)).json() as { backends: BackendState[] }
  return state.backends.find((backend) => backend.name === name)
}

/** Open a connection and write `text`; the caller decides when it ends. */
async function openRaw (port: number, text: string): Promise<{ socket: Socket, received: () => string, closed: Promise<void> }> {
  const socket = connect(port, '127.0.0.1')
  await new Promise<void>((resolve, reject) => { socket.once('connect', resolve); socket.once('error', reject) })
  let received = ''
  socket.on('data', (chunk: Buffer) => { received += chunk.toString('latin1') })
  socket.on('error', () => {})
  const closed = new Promise<void>((resolve) => socket.once('close', () => { resolve() }))
  socket.write(text)
  return { socket, received: () => received, closed }
}

/** Send `text` and collect one answer: until its Content-Length is in, the server closes, or 3 s pass. */
async function rawExchange (port: number, text: string, waitMs = 3000): Promise<string> {
  const { socket, received, closed } = await openRaw(port, text)
  const deadline = Date.now() + waitMs
  let isClosed = false
  void closed.then(() => { isClosed = true })
  while (!isClosed && Date.now() < deadline && !isComplete(received())) await sleep(10)
  socket.destroy()
  return received()
}

function isComplete (answer: string): boolean {
  const end = answer.indexOf('\r\n\r\n')
  if (end < 0) return false
  const length = /content-length: (\d+)/i.exec(answer.slice(0, end))?.[1]
  return length !== undefined && answer.length - end - 4 >= Number(length)
}

function logsOf (gateway: SpawnedGateway, requestId: string): LogLine[] {
  return gateway.logs.filter((line) => line.requestId === requestId)
}

/** A frontend for preview environments pr-N, each a templated backend of its own. */
const PREVIEW_ENTRY = `  - name: preview
    match: { host: "{env}.preview.example.com" }
    env: { pattern: "pr-[0-9]+" }
    backend: { template: "web-{env}", discovery: { resolver: consul, srv: "_web._{env}.service.consul" } }`
const PREVIEW = `frontends:\n${PREVIEW_ENTRY}`

function base (dns: ConsulLikeDnsServer, extra = ''): string {
  return `
listen: { http: "127.0.0.1:\${PORT}", admin: "127.0.0.1:\${ADMIN_PORT}" }
resolvers: { consul: { nameservers: ["${dns.address}"], ttl: { min: 200ms, max: 1s }, timeout: 2s, attempts: 1, negativeTtl: 30s } }
${extra}`
}

test('1. a client that leaves while its first resolution is pending is abandoned everywhere; SIGTERM ends within drain.timeout', async (t) => {
  const dns = await ConsulLikeDnsServer.start(t)
  const upstream = await Upstream.start(t, 'preview-9')
  dns.setService('_web._pr-9.service.consul', [{ address: '127.0.0.1', port: upstream.port }])
  const gateway = await SpawnedGateway.start(t, base(dns, `
drain: { delay: 0ms, timeout: 1s }
${PREVIEW}
`))
  dns.answerDelayMs = 800
  const client = await openRaw(gateway.port, 'POST /upload HTTP/1.1\r\nHost: pr-9.preview.example.com\r\nx-request-id: left-early\r\nContent-Length: 100\r\n\r\n0123456789')
  await sleep(200)
  client.socket.destroy()
  await sleep(1200)
  dns.answerDelayMs = 0
  assert.equal(upstream.requests, 0, 'nothing is forwarded for a client that has gone')
  const line = await gateway.waitForLog((entry) => entry.requestId === 'left-early' && entry.msg === 'request')
  assert.equal(line.status, 499)
  assert.equal(line.error, 'SG_ERR_CLIENT_GONE')
  assert.equal(logsOf(gateway, 'left-early').filter((entry) => entry.msg === 'request').length, 1)
  const backend = await backendState(gateway, 'web-pr-9')
  assert.deepEqual(backend?.instances.map((instance) => instance.inFlight), [0])

  // An upload that is abandoned mid-body once forwarded (chunked: it streams; a body with a
  // content-length this small is received whole before anything is forwarded): the instance's
  // connection is let go too.
  const upstreamClosed = new Promise<void>((resolve) => {
    upstream.behaviour = () => true
    upstream.onRequestStart = (request) => { request.on('close', () => { resolve() }) }
  })
  const midBody = await openRaw(gateway.port, 'POST /upload HTTP/1.1\r\nHost: pr-9.preview.example.com\r\nx-request-id: left-mid-body\r\nTransfer-Encoding: chunked\r\n\r\na\r\n0123456789\r\n')
  await sleep(300)
  midBody.socket.destroy()
  await Promise.race([upstreamClosed, sleep(3000).then(() => { throw new Error('the upstream request was never let go') })])
  const midLine = await gateway.waitForLog((entry) => entry.requestId === 'left-mid-body' && entry.msg === 'request')
  assert.equal(midLine.status, 499)
  await sleep(100)
  assert.deepEqual((await backendState(gateway, 'web-pr-9'))?.instances.map((instance) => instance.inFlight), [0])

  // A request the instance never answers is still in flight at SIGTERM: drain.timeout bounds the wait.
  upstream.onRequestStart = undefined
  const hung = openRaw(gateway.port, 'GET /hang HTTP/1.1\r\nHost: pr-9.preview.example.com\r\n\r\n')
  await hung
  await sleep(300)
  const started = Date.now()
  const code = await gateway.stop()
  assert.equal(code, 0)
  assert.ok(Date.now() - started < 4000, `exited after ${Date.now() - started} ms with drain.timeout 1s`)
  assert.ok(gateway.logs.some((entry) => entry.msg === 'drained'))
  ;(await hung).socket.destroy()
})

test('2. a stalled upload gets 408 and frees its connection; a request queued behind a full pool gets 504 within timeouts.response', async (t) => {
  const dns = await ConsulLikeDnsServer.start(t)
  const upstream = await Upstream.start(t, 'one')
  dns.setService('_one.service.consul', [{ address: '127.0.0.1', port: upstream.port }])
  const gateway = await SpawnedGateway.start(t, base(dns, `
client: { bodyIdleTimeout: 500ms }
backends:
  one: { discovery: { resolver: consul, srv: _one.service.consul }, maxConnectionsPerInstance: 1, timeouts: { response: 800ms }, outlier: { consecutiveFailures: 100 } }
frontends:
  - { name: one, match: { host: one.example.com }, backend: one }
`), { workers: 1 })   // maxConnectionsPerInstance bounds each worker's pool: one process makes "the only connection" exact
  const slow = await openRaw(gateway.port, 'POST /slow HTTP/1.1\r\nHost: one.example.com\r\nx-request-id: slow-upload\r\nContent-Length: 10\r\n\r\nab')
  const started = Date.now()
  await Promise.race([slow.closed, sleep(4000)])
  assert.match(slow.received(), /^HTTP\/1\.1 408 /)
  assert.match(slow.received(), /connection: close/i)
  assert.match(slow.received(), /\{"error":"request_timeout"\}/)
  assert.ok(Date.now() - started < 2500)
  // The one connection to the instance is free again: a normal GET is served at once.
  const after = await send(`${gateway.url}/`, { host: 'one.example.com', timeoutMs: 3000 })
  assert.equal(after.status, 200)

  // The only connection is held by a response that trickles (within timeouts.response between
  // chunks, so it is not cut): the next request waits for a connection, and that wait is bounded.
  upstream.behaviour = (request, response) => {
    if (request.url !== '/hold') return false
    response.writeHead(200, { 'content-type': 'text/plain' })
    const timer = setInterval(() => { if (!response.destroyed) response.write('.') }, 200)
    setTimeout(() => { clearInterval(timer); response.end() }, 3000)
    return true
  }
  const holder = await openRaw(gateway.port, 'GET /hold HTTP/1.1\r\nHost: one.example.com\r\n\r\n')
  await sleep(100)
  const queuedAt = Date.now()
  const queued = await send(`${gateway.url}/queued`, { host: 'one.example.com', timeoutMs: 5000 })
  assert.equal(queued.status, 504)
  assert.deepEqual(queued.json(), { error: 'upstream_timeout' })
  assert.ok(Date.now() - queuedAt < 1500, `answered after ${Date.now() - queuedAt} ms`)
  // A client that leaves while queued is let go at once, not when the connection frees up.
  const leaver = await openRaw(gateway.port, 'GET /queued HTTP/1.1\r\nHost: one.example.com\r\nx-request-id: left-the-queue\r\n\r\n')
  await sleep(150)
  leaver.socket.destroy()
  const left = await gateway.waitForLog((entry) => entry.requestId === 'left-the-queue' && entry.msg === 'request', 1000)
  assert.equal(left.status, 499)
  const counts = (await backendState(gateway, 'one'))?.instances.map((instance) => instance.inFlight)
  assert.deepEqual(counts, [1], 'only the holder is in flight')
  holder.socket.destroy()
})

test('3. GET, DELETE and TRACE bodies reach the instance whole, never dropped', async (t) => {
  const dns = await ConsulLikeDnsServer.start(t)
  const upstream = await Upstream.start(t, 'echo')
  dns.setService('_echo.service.consul', [{ address: '127.0.0.1', port: upstream.port }])
  const gateway = await SpawnedGateway.start(t, base(dns, `
backends: { echo: { discovery: { resolver: consul, srv: _echo.service.consul } } }
frontends: [ { name: echo, match: { host: echo.example.com }, backend: echo } ]
`))
  for (const method of ['GET', 'DELETE', 'TRACE', 'PROPFIND']) {
    const response = await send(`${gateway.url}/search`, { host: 'echo.example.com', method, body: 'hello', headers: { 'content-type': 'application/json', 'content-length': '5' } })
    assert.equal(response.status, 200, method)
    const reply = response.json() as unknown as UpstreamReply
    assert.equal(reply.method, method)
    assert.equal(reply.bodyBytes, 5, method)
    assert.equal(reply.headers['content-length'], '5', method)
  }
})

test('4. an SRV record pointing at srvgate\'s own admin listener, or at a metadata address, is never an instance', async (t) => {
  const dns = await ConsulLikeDnsServer.start(t)
  const fine = await Upstream.start(t, 'fine')
  dns.setService('_locked.service.consul', [{ address: '127.0.0.1', port: fine.port }])
  dns.setService('_allowed.service.consul', [{ address: '127.0.0.1', port: fine.port }])
  const gateway = await SpawnedGateway.start(t, base(dns, `
backends:
  locked: { discovery: { resolver: consul, srv: _locked.service.consul }, addressPolicy: { deny: [127.0.0.0/8] } }
  allowed: { discovery: { resolver: consul, srv: _allowed.service.consul }, addressPolicy: { allow: [10.0.0.0/8] } }
frontends:
  - { name: locked, match: { host: locked.example.com }, backend: locked }
  - { name: allowed, match: { host: allowed.example.com }, backend: allowed }
${PREVIEW_ENTRY}
`))
  dns.setService('_web._pr-5.service.consul', [{ address: '127.0.0.1', port: gateway.adminPort }])
  dns.setService('_web._pr-6.service.consul', [{ address: '169.254.169.254', port: 80 }, { address: '127.0.0.1', port: fine.port }])
  for (const path of ['/admin/state', '/metrics']) {
    const response = await send(`${gateway.url}${path}`, { host: 'pr-5.preview.example.com' })
    assert.equal(response.status, 503, path)
    assert.deepEqual(response.json(), { error: 'no_healthy_upstream', backend: 'web-pr-5' })
  }
  const reload = await send(`${gateway.url}/admin/reload`, { host: 'pr-5.preview.example.com', method: 'POST' })
  assert.equal(reload.status, 503)
  assert.deepEqual((await backendState(gateway, 'web-pr-5'))?.refused, [{ key: `127.0.0.1:${gateway.adminPort}`, reason: 'srvgate\'s own listen.admin listener' }])

  const metadata = await send(`${gateway.url}/`, { host: 'pr-6.preview.example.com' })
  assert.equal(metadata.status, 200)
  assert.equal((metadata.json() as unknown as UpstreamReply).instance, 'fine')
  assert.deepEqual((await backendState(gateway, 'web-pr-6'))?.refused, [{ key: '169.254.169.254:80', reason: 'never an instance (169.254.169.254/32)' }])

  assert.equal((await send(`${gateway.url}/`, { host: 'locked.example.com' })).status, 503)
  assert.equal((await backendState(gateway, 'locked'))?.refused[0]?.reason, 'addressPolicy.deny 127.0.0.0/8')
  assert.equal((await send(`${gateway.url}/`, { host: 'allowed.example.com' })).status, 503)
  assert.equal((await backendState(gateway, 'allowed'))?.refused[0]?.reason, 'not in addressPolicy.allow')
})

test('5. cycling more preview names than templated backends fit: one query per name, not one per request; target lookups cached by name', async (t) => {
  const dns = await ConsulLikeDnsServer.start(t)
  const gateway = await SpawnedGateway.start(t, base(dns, `
templatedBackends: { max: 4 }
${PREVIEW}
`))
  const names = Array.from({ length: 10 }, (_, index) => `pr-${100 + index}`)
  for (let round = 0; round < 3; round++) {
    for (const name of names) assert.equal((await send(`${gateway.url}/`, { host: `${name}.preview.example.com` })).status, 503)
  }
  const asked = dns.queries.filter((query) => query.name.startsWith('_web._pr-1'))
  assert.equal(asked.length, names.length, `${asked.length} queries for ${names.length} names over 3 rounds`)

  // 20 instances whose addresses are not in the additional section: each target asked once, not on every refresh.
  const bare = await ConsulLikeDnsServer.start(t, { omitAdditional: true })
  const upstream = await Upstream.start(t, 'many')
  bare.setService('_many.service.consul', Array.from({ length: 20 }, (_, index) => ({ address: '127.0.0.1', port: upstream.port, node: `node-${index}` })))
  const second = await SpawnedGateway.start(t, `
listen: { http: "127.0.0.1:\${PORT}", admin: "127.0.0.1:\${ADMIN_PORT}" }
resolvers: { consul: { nameservers: ["${bare.address}"], ttl: { min: 200ms, max: 200ms }, targetTtl: { min: 30s } } }
backends: { many: { discovery: { resolver: consul, srv: _many.service.consul } } }
frontends: [ { name: many, match: { host: many.example.com }, backend: many } ]
`)
  await sleep(2000)
  assert.equal((await send(`${second.url}/`, { host: 'many.example.com' })).status, 200)
  const srvQueries = bare.queries.filter((query) => query.type === 33).length
  const addressQueries = bare.queries.filter((query) => query.type === 1 || query.type === 28).length
  assert.ok(srvQueries >= 5, `the SRV name was refreshed (${srvQueries} queries)`)
  assert.ok(addressQueries <= 20, `${addressQueries} address queries for 20 targets over ${srvQueries} refreshes`)
})

test('6. edge parsing: header count, every method, CONNECT, OPTIONS *, POST upgrades, Host ports, rejections logged, no userinfo in logs', async (t) => {
  const dns = await ConsulLikeDnsServer.start(t)
  const upstream = await Upstream.start(t, 'edge')
  dns.setService('_edge.service.consul', [{ address: '127.0.0.1', port: upstream.port }])
  const gateway = await SpawnedGateway.start(t, base(dns, `
backends: { edge: { discovery: { resolver: consul, srv: _edge.service.consul } } }
frontends: [ { name: edge, match: { host: www.example.com }, backend: edge }, { name: routed-by-env, match: { host: www.example.com, headers: { x-env: never } }, backend: edge } ]
`))
  const before = upstream.requests
  const fields = (count: number): string => Array.from({ length: count }, (_, index) => `x-f${index}: ${index}\r\n`).join('')
  for (const count of [101, 1001]) {
    const answer = await rawExchange(gateway.port, `GET / HTTP/1.1\r\nHost: www.example.com\r\n${fields(count)}x-env: never\r\n\r\n`)
    assert.match(answer, /^HTTP\/1\.1 431 /, `${count} fields`)
    assert.match(answer, /x-request-id: [0-9a-f-]{36}/i)
    assert.match(answer, /\{"error":"request_headers_too_large"\}/)
  }
  assert.equal((await rawExchange(gateway.port, `GET / HTTP/1.1\r\nHost: www.example.com\r\n${fields(98)}\r\n`)).slice(0, 12), 'HTTP/1.1 200')

  for (const method of ['PROPFIND', 'MKCOL', 'PURGE', 'REPORT']) {
    const response = await send(`${gateway.url}/dav`, { host: 'www.example.com', method })
    assert.equal(response.status, 200, method)
    assert.equal((response.json() as unknown as UpstreamReply).method, method)
    assert.match(String(response.headers['x-request-id']), /^[0-9a-f-]{36}$/)
  }
  const connectAnswer = await rawExchange(gateway.port, 'CONNECT www.example.com:443 HTTP/1.1\r\nHost: www.example.com:443\r\nx-request-id: tunnel-please\r\n\r\n')
  assert.match(connectAnswer, /^HTTP\/1\.1 405 /)
  assert.match(connectAnswer, /x-request-id: tunnel-please/)
  assert.match(connectAnswer, /\{"error":"method_not_allowed"\}/)

  const requestsBefore = upstream.requests
  const asterisk = await rawExchange(gateway.port, 'OPTIONS * HTTP/1.1\r\nHost: www.example.com\r\nConnection: close\r\n\r\n')
  assert.match(asterisk, /^HTTP\/1\.1 200 /)
  assert.match(asterisk, /allow: [A-Z, -]*PROPFIND/i)
  assert.equal(upstream.requests, requestsBefore, 'OPTIONS * is never forwarded as OPTIONS /*')

  const postUpgrade = await rawExchange(gateway.port, 'POST /ws HTTP/1.1\r\nHost: www.example.com\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nContent-Length: 0\r\n\r\n')
  assert.match(postUpgrade, /^HTTP\/1\.1 400 /)
  assert.equal(upstream.requests, requestsBefore, 'a POST upgrade is never forwarded as a GET')

  // RFC 9110 §15.2: an unsolicited 100 Continue is ignored, not a 502; bodies are never touched.
  upstream.behaviour = (request, response, body) => {
    if (request.url !== '/continue') return false
    response.writeContinue()
    response.writeContinue()
    response.setHeader('content-type', 'text/plain')
    response.end(`HTTP/1.1 100 Continue\r\n\r\nbody of ${body.length}`)
    return true
  }
  for (const method of ['GET', 'POST']) {
    for (let round = 0; round < 3; round++) {
      const response = await send(`${gateway.url}/continue`, { host: 'www.example.com', method, body: method === 'POST' ? 'twelve bytes' : undefined })
      assert.equal(response.status, 200, `${method}: ${response.body}`)
      assert.equal(response.body, `HTTP/1.1 100 Continue\r\n\r\nbody of ${method === 'POST' ? 12 : 0}`)
    }
  }
  upstream.behaviour = undefined

  for (const host of ['www.example.com:99999', '[::1]:70000']) {
    assert.match(await rawExchange(gateway.port, `GET / HTTP/1.1\r\nHost: ${host}\r\n\r\n`), /^HTTP\/1\.1 400 /, host)
  }

  // Every rejection answers the documented shape with an x-request-id and writes one access-log line.
  const rejections: Array<[string, RegExp]> = [
    ['GET /static/../../etc/passwd HTTP/1.1\r\nHost: www.example.com\r\nx-request-id: rej-traversal\r\n\r\n', /^HTTP\/1\.1 400 /],
    ['GET /static/%2E%2e/secret HTTP/1.1\r\nHost: www.example.com\r\nx-request-id: rej-traversal-encoded\r\n\r\n', /^HTTP\/1\.1 400 /],
    ['GET / HTTP/1.1\r\nx-request-id: rej-no-host\r\n\r\n', /^HTTP\/1\.1 400 /],
    [`GET / HTTP/1.1\r\nHost: www.example.com\r\nx-request-id: rej-431\r\n${fields(200)}\r\n`, /^HTTP\/1\.1 431 /]
  ]
  for (const [text, status] of rejections) {
    const answer = await rawExchange(gateway.port, text)
    assert.match(answer, status, text.slice(0, 30))
    assert.match(answer, /content-type: application\/json/i)
    const id = /x-request-id: (\S+)/i.exec(answer)?.[1]
    assert.ok(id !== undefined)
    const lines = await gateway.waitForLog((entry) => entry.requestId === id && entry.msg === 'request')
    assert.ok(typeof lines.status === 'number')
    assert.equal(logsOf(gateway, id).filter((entry) => entry.msg === 'request').length, 1)
  }
  // A body Node cannot parse (a bad chunk) mid-forwarding: that request answers 400, with its own id and one line.
  const badChunk = await openRaw(gateway.port, 'POST /x HTTP/1.1\r\nHost: www.example.com\r\nx-request-id: rej-bad-chunk\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n')
  await sleep(200)
  badChunk.socket.write('ZZ\r\n')
  await Promise.race([badChunk.closed, sleep(3000)])
  assert.match(badChunk.received(), /^HTTP\/1\.1 400 [\s\S]*x-request-id: rej-bad-chunk[\s\S]*\{"error":"bad_request"\}$/)
  await sleep(100)
  assert.deepEqual(logsOf(gateway, 'rej-bad-chunk').filter((entry) => entry.msg === 'request').map((entry) => [entry.status, entry.error]), [[400, 'SG_ERR_REQUEST_MALFORMED']])
  assert.equal(gateway.logs.filter((entry) => entry.msg === 'request' && entry.method === '-' && String(entry.errorDetail).includes('HPE_INVALID_CHUNK_SIZE')).length, 0, 'no second line for it')

  const garbage = await rawExchange(gateway.port, 'NOT HTTP AT ALL\r\n\r\n')
  const garbageId = /x-request-id: (\S+)/i.exec(garbage)?.[1] ?? ''
  const garbageLine = await gateway.waitForLog((entry) => entry.requestId === garbageId && entry.msg === 'request')
  assert.equal(garbageLine.status, 400)

  await rawExchange(gateway.port, 'GET http://alice:hunter2@www.example.com/private?token=abc HTTP/1.1\r\nHost: www.example.com\r\nx-request-id: absolute-form\r\nConnection: close\r\n\r\n')
  const absolute = await gateway.waitForLog((entry) => entry.requestId === 'absolute-form' && entry.msg === 'request')
  assert.equal(absolute.path, '/private')
  assert.doesNotMatch(JSON.stringify(gateway.logs), /hunter2|alice|token=abc/)
  assert.ok(upstream.requests > before)
})

test('7. forwarding headers: replaced from untrusted peers, extended from trustedProxies, client IP from the chain', async (t) => {
  const dns = await ConsulLikeDnsServer.start(t)
  const upstream = await Upstream.start(t, 'xff')
  dns.setService('_xff.service.consul', [{ address: '127.0.0.1', port: upstream.port }])
  const gateway = await SpawnedGateway.start(t, base(dns, `
trustedProxies: [127.0.0.0/8]
backends: { xff: { discovery: { resolver: consul, srv: _xff.service.consul } } }
frontends: [ { name: xff, match: { host: xff.example.com }, backend: xff } ]
`))
  const response = await send(`${gateway.url}/`, { host: 'xff.example.com', headers: { 'x-forwarded-for': '203.0.113.50', 'x-forwarded-proto': 'https', 'x-request-id': 'via-proxy' } })
  const headers = (response.json() as unknown as UpstreamReply).headers
  assert.equal(headers['x-forwarded-for'], '203.0.113.50, 127.0.0.1')
  assert.equal(headers['x-forwarded-proto'], 'https')
  assert.equal(headers['x-real-ip'], '203.0.113.50')
  const line = await gateway.waitForLog((entry) => entry.requestId === 'via-proxy' && entry.msg === 'request')
  assert.equal(line.clientIp, '203.0.113.50')
})

test('7b. client-address headers other proxies set (True-Client-IP, X-Client-IP, X-Original-Forwarded-For, CF-Connecting-IP): dropped from untrusted peers, passed from trustedProxies', async (t) => {
  const dns = await ConsulLikeDnsServer.start(t)
  const upstream = await Upstream.start(t, 'echo')
  dns.setService('_echo.service.consul', [{ address: '127.0.0.1', port: upstream.port }])
  const routes = `
backends: { echo: { discovery: { resolver: consul, srv: _echo.service.consul } } }
frontends: [ { name: echo, match: { host: echo.example.com }, backend: echo } ]
`
  const posing = { 'true-client-ip': '198.51.100.7', 'x-client-ip': '198.51.100.7', 'x-original-forwarded-for': '198.51.100.7', 'cf-connecting-ip': '198.51.100.7' }
  const received = async (gateway: SpawnedGateway): Promise<Record<string, unknown>> => {
    const response = await send(`${gateway.url}/`, { host: 'echo.example.com', headers: { ...posing, 'x-kept': 'yes' } })
    assert.equal(response.status, 200)
    return (response.json() as unknown as UpstreamReply).headers
  }
  const [untrusted, trusted] = await Promise.all([
    SpawnedGateway.start(t, base(dns, routes), { workers: 1 }),
    SpawnedGateway.start(t, base(dns, `trustedProxies: [127.0.0.0/8]\n${routes}`), { workers: 1 })
  ])
  const fromUntrusted = await received(untrusted)
  for (const name of Object.keys(posing)) assert.equal(fromUntrusted[name], undefined, `${name} from an untrusted peer reached the instance`)
  assert.equal(fromUntrusted['x-kept'], 'yes', 'other headers pass')
  assert.equal(fromUntrusted['x-real-ip'], '127.0.0.1')
  const fromTrusted = await received(trusted)
  for (const [name, value] of Object.entries(posing)) assert.equal(fromTrusted[name], value, `${name} from a trusted proxy passes`)
})

test('8. admin listener: no cross-origin or foreign-Host reload, 404 without echoing the URL', async (t) => {
  const dns = await ConsulLikeDnsServer.start(t)
  const gateway = await SpawnedGateway.start(t, base(dns))
  const reloadUrl = `${gateway.adminUrl}/admin/reload`
  const csrf = await send(reloadUrl, { method: 'POST', headers: { origin: 'http://evil.example', 'content-type': 'text/plain' }, body: 'x' })
  assert.equal(csrf.status, 403)
  const rebound = await send(reloadUrl, { method: 'POST', host: `evil.example:${gateway.adminPort}` })
  assert.equal(rebound.status, 403)
  const own = await send(reloadUrl, { method: 'POST', headers: { origin: `http://127.0.0.1:${gateway.adminPort}` } })
  assert.equal(own.status, 200)
  assert.equal((await send(reloadUrl, { method: 'POST', host: `localhost:${gateway.adminPort}` })).status, 200)
  await gateway.waitForLog(() => gateway.logs.filter((line) => line.msg === 'configuration reloaded').length === 2)
  const missing = await send(`${gateway.adminUrl}/secret-path?token=leaky`)
  assert.equal(missing.status, 404)
  assert.doesNotMatch(missing.body, /secret-path|leaky/)

  // With a token, an operator may use any name for the listener; a foreign Origin is still refused.
  const guarded = await SpawnedGateway.start(t, base(dns, 'admin: { token: "t0ken" }'))
  const bearer = { authorization: 'Bearer t0ken' }
  assert.equal((await send(`${guarded.adminUrl}/admin/reload`, { method: 'POST', host: `gateway.internal:${guarded.adminPort}`, headers: bearer })).status, 200)
  assert.equal((await send(`${guarded.adminUrl}/admin/reload`, { method: 'POST', headers: { ...bearer, origin: 'http://evil.example' } })).status, 403)
})

test('8b. admin reads (state, metrics, dashboard) answer only a Host naming the listener (DNS rebinding); probes answer any Host; admin.allowedHosts adds names; a token governs when set', async (t) => {
  const dns = await ConsulLikeDnsServer.start(t)
  const [open, guarded] = await Promise.all([
    SpawnedGateway.start(t, base(dns, 'admin: { allowedHosts: [srvgate-admin.monitoring.svc] }'), { workers: 1 }),
    SpawnedGateway.start(t, base(dns, 'admin: { token: "t0ken" }'), { workers: 1 })
  ])
  const rebound = `evil.example:${open.adminPort}`
  for (const path of ['/admin/state', '/metrics', '/', '/?token=x']) {
    const refused = await send(`${open.adminUrl}${path}`, { host: rebound })
    assert.equal(refused.status, 403, `${path} with a foreign Host`)
    assert.equal(refused.json().error, 'forbidden', 'the shape of the write refusal')
    assert.equal(typeof refused.json().reason, 'string')
    assert.doesNotMatch(refused.body, /backends|srvgate_|<html/i, 'nothing of the answer leaks')
    for (const host of [`127.0.0.1:${open.adminPort}`, `localhost:${open.adminPort}`, 'srvgate-admin.monitoring.svc:9090', 'SRVGATE-ADMIN.monitoring.svc.']) {
      assert.equal((await send(`${open.adminUrl}${path}`, { host })).status, 200, `${path} with Host ${host}`)
    }
  }
  // The port is part of the listener's own names: another port on 127.0.0.1 is another site.
  assert.equal((await send(`${open.adminUrl}/metrics`, { host: `127.0.0.1:${open.adminPort + 1}` })).status, 403)
  assert.equal((await send(`${open.adminUrl}/metrics`, { host: 'srvgate-admin.monitoring.svc.evil.example' })).status, 403)
  for (const path of ['/healthz', '/readyz']) assert.equal((await send(`${open.adminUrl}${path}`, { host: rebound })).status, 200, `${path} answers any Host`)
  assert.equal((await send(`${open.adminUrl}/admin/reload`, { method: 'POST', host: rebound })).status, 403)

  // With a token, the token decides: any Host with it, none without it.
  const bearer = { authorization: 'Bearer t0ken' }
  const guardedHost = `prometheus-scrapes-this.svc:${guarded.adminPort}`
  for (const path of ['/admin/state', '/metrics']) {
    assert.equal((await send(`${guarded.adminUrl}${path}`, { host: guardedHost, headers: bearer })).status, 200)
    assert.equal((await send(`${guarded.adminUrl}${path}`, { host: guardedHost })).status, 401)
  }
  assert.equal((await send(`${guarded.adminUrl}/?token=t0ken`, { host: guardedHost })).status, 200)
  assert.equal((await send(`${guarded.adminUrl}/healthz`, { host: guardedHost })).status, 200)
})

test('9. the access log: one line per request, 503 included, with client, agent, bytes and upstream facts; ISO time and level names', async (t) => {
  const dns = await ConsulLikeDnsServer.start(t)
  const upstream = await Upstream.start(t, 'logged')
  dns.setService('_logged.service.consul', [{ address: '127.0.0.1', port: upstream.port }])
  dns.setService('_empty.service.consul', [])
  const gateway = await SpawnedGateway.start(t, base(dns, `
backends:
  logged: { discovery: { resolver: consul, srv: _logged.service.consul } }
  empty: { discovery: { resolver: consul, srv: _empty.service.consul } }
frontends: [ { name: logged, match: { host: logged.example.com }, backend: logged }, { name: empty, match: { host: empty.example.com }, backend: empty } ]
`))
  await send(`${gateway.url}/x`, { host: 'empty.example.com', headers: { 'x-request-id': 'log-503' } })
  const answered = await send(`${gateway.url}/y`, { host: 'logged.example.com', method: 'POST', body: 'twelve bytes', headers: { 'x-request-id': 'log-200', 'user-agent': 'probe/1.0' } })
  await sleep(200)
  assert.equal(logsOf(gateway, 'log-503').length, 1, JSON.stringify(logsOf(gateway, 'log-503')))
  const line = logsOf(gateway, 'log-200')[0] as LogLine
  assert.equal(line.msg, 'request')
  assert.equal(line.level, 'info')
  assert.match(String(line.time), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/)
  assert.equal(line.clientIp, '127.0.0.1')
  assert.equal(line.userAgent, 'probe/1.0')
  assert.equal(line.upstreamStatus, 200)
  assert.equal(typeof line.upstreamMs, 'number')
  // Bodies only, as Apache's %I/%b count them (the heads are not the client's payload).
  assert.equal(line.bytesIn, 12)
  assert.equal(line.bytesOut, Buffer.byteLength(answered.body))
})

async function adminAnswers (gateway: SpawnedGateway, withinMs = 10_000): Promise<void> {
  const deadline = Date.now() + withinMs
  while (Date.now() < deadline) {
    try {
      if ((await send(`${gateway.adminUrl}/healthz`, { timeoutMs: 500 })).status === 200) return
    } catch {}
    await sleep(50)
  }
  throw new Error('the admin listener never answered')
}

test('10. signals during start-up: SIGTERM exits 0, SIGHUP is applied once started', async (t) => {
  const dns = await ConsulLikeDnsServer.start(t)
  dns.setService('_slow.service.consul', [{ address: '127.0.0.1', port: 9 }])
  dns.answerDelayMs = 2500
  const config = `
listen: { http: "127.0.0.1:\${PORT}", admin: "127.0.0.1:\${ADMIN_PORT}" }
resolvers: { consul: { nameservers: ["${dns.address}"], timeout: 4s, attempts: 1 } }
backends: { slow: { discovery: { resolver: consul, srv: _slow.service.consul } } }
frontends: [ { name: slow, match: { host: slow.example.com }, backend: slow } ]
`
  const stopped = await SpawnedGateway.spawn(t, config)
  await adminAnswers(stopped)
  assert.equal((await send(`${stopped.adminUrl}/readyz`)).status, 503, 'still warming up')
  stopped.process.kill('SIGTERM')
  assert.equal(await stopped.exited(3000), 0)

  const hungUp = await SpawnedGateway.spawn(t, config)
  await adminAnswers(hungUp)
  hungUp.process.kill('SIGHUP')
  await hungUp.waitForLog((line) => line.msg === 'srvgate listening', 10_000)
  await hungUp.waitForLog((line) => line.msg === 'configuration reloaded', 10_000)
  assert.equal(hungUp.process.exitCode, null)
})

test('11. the restart notice compares with the listeners that run, reload after reload; --watch follows a ConfigMap symlink swap', async (t) => {
  const dns = await ConsulLikeDnsServer.start(t)
  const { mkdtempSync, mkdirSync, writeFileSync, symlinkSync, renameSync, readFileSync } = await import('node:fs')
  const { join } = await import('node:path')
  const { tmpdir } = await import('node:os')
  const { freePort } = await import('../helpers/dns-server.js')
  // Kubernetes' layout: gateway.yaml → ..data/gateway.yaml, ..data → ..<timestamp>/ (swapped atomically).
  const dir = mkdtempSync(join(tmpdir(), 'srvgate-configmap-'))
  const [port, adminPort, otherPort] = [await freePort(), await freePort(), await freePort()]
  const text = (httpPort: number, extra = ''): string => SpawnedGateway.render(`${base(dns)}${extra}`.replace('${PORT}', String(httpPort)), port, adminPort)
  mkdirSync(join(dir, '..v1'))
  writeFileSync(join(dir, '..v1', 'gateway.yaml'), text(port))
  symlinkSync('..v1', join(dir, '..data'))
  symlinkSync(join('..data', 'gateway.yaml'), join(dir, 'gateway.yaml'))
  const gateway = await SpawnedGateway.spawn(t, readFileSync(join(dir, '..v1', 'gateway.yaml'), 'utf8'), { configPath: join(dir, 'gateway.yaml'), port, adminPort, args: ['--watch'] })
  await gateway.waitForLog((line) => line.msg === 'srvgate listening')
  const swap = (version: string, content: string): void => {
    mkdirSync(join(dir, version))
    writeFileSync(join(dir, version, 'gateway.yaml'), content)
    symlinkSync(version, join(dir, '..data_tmp'))
    renameSync(join(dir, '..data_tmp'), join(dir, '..data'))
  }
  const reloads = (): LogLine[] => gateway.logs.filter((line) => line.msg === 'configuration reloaded')
  swap('..v2', text(otherPort))
  await gateway.waitForLog(() => reloads().length === 1, 5000)
  assert.match(String(reloads()[0]?.summary), /restart to apply listen\.http/)
  const again = (await send(`${gateway.adminUrl}/admin/reload`, { method: 'POST' })).json()
  assert.match(String(again.summary), /restart to apply listen\.http/, 'a second reload of the same file still says so')
  swap('..v3', text(port))
  await gateway.waitForLog(() => reloads().length === 3, 5000)
  assert.doesNotMatch(String(reloads()[2]?.summary), /restart/, 'back to what runs: nothing to restart')
  assert.equal((await send(`${gateway.url}/`, { host: 'nowhere.example' })).status, 404, 'still serving on the first port')
})

test('12. nameservers given as host names are resolved at load, by run, check and resolve alike; a bad name is a configuration error (exit 1)', async (t) => {
  const dns = await ConsulLikeDnsServer.start(t)
  dns.setService('_named.service.consul', [{ address: '10.0.0.7', port: 8080 }])
  const { mkdtempSync, writeFileSync } = await import('node:fs')
  const { join } = await import('node:path')
  const { tmpdir } = await import('node:os')
  const { srvgate } = await import('../helpers/cli.js')
  const dir = mkdtempSync(join(tmpdir(), 'srvgate-named-'))
  const good = join(dir, 'good.yaml')
  const bad = join(dir, 'bad.yaml')
  const file = (nameserver: string): string => `listen: { http: "127.0.0.1:8080" }\nresolvers: { consul: { nameservers: ["${nameserver}"] } }\n`
  writeFileSync(good, file(`localhost:${dns.port}`))
  writeFileSync(bad, file('no-such-host.invalid:8600'))
  const resolved = await srvgate(['resolve', '_named.service.consul', '-c', good])
  assert.equal(resolved.code, 0, resolved.stderr)
  assert.match(resolved.stdout, /10\.0\.0\.7/)
  assert.equal((await srvgate(['check', '-c', good])).code, 0)
  for (const args of [['check', '-c', bad], ['resolve', '_named.service.consul', '-c', bad], ['run', '-c', bad]]) {
    const result = await srvgate(args)
    assert.equal(result.code, 1, `${args[0]}: ${result.stderr}`)
    assert.match(result.stderr, /resolvers\.consul\.nameservers\[0\]: cannot resolve the host name "no-such-host\.invalid"/, args[0])
  }
  const viaServer = await srvgate(['resolve', '_named.service.consul', '--server', `localhost:${dns.port}`])
  assert.equal(viaServer.code, 0, viaServer.stderr)
})

test('13. the cache-read counter counts what discovery sees: no misses while nothing changes', async (t) => {
  const dns = await ConsulLikeDnsServer.start(t)
  dns.setService('_idle.service.consul', [{ address: '127.0.0.1', port: 9 }])
  const gateway = await SpawnedGateway.start(t, base(dns, `
backends: { idle: { discovery: { resolver: consul, srv: _idle.service.consul } } }
frontends: [ { name: idle, match: { host: idle.example.com }, backend: idle } ]
`))
  const reads = async (result: string): Promise<number> => Number(new RegExp(`srvgate_dns_cache_reads_total\\{result="${result}"\\} (\\d+)`).exec((await send(`${gateway.adminUrl}/metrics`)).body)?.[1] ?? 0)
  await sleep(500)
  const [missBefore, hitBefore] = [await reads('miss'), await reads('hit')]
  await sleep(2500)
  assert.equal(await reads('miss'), missBefore, 'no traffic, no change: no miss')
  assert.ok(await reads('hit') > hitBefore, 'the watcher\'s reads are hits')
})

test('14. accessLog.format common: one Apache combined line per request, for people who grep', async (t) => {
  const dns = await ConsulLikeDnsServer.start(t)
  const upstream = await Upstream.start(t, 'common')
  dns.setService('_common.service.consul', [{ address: '127.0.0.1', port: upstream.port }])
  const gateway = await SpawnedGateway.start(t, base(dns, `
accessLog: { format: common }
backends: { common: { discovery: { resolver: consul, srv: _common.service.consul } } }
frontends: [ { name: common, match: { host: common.example.com }, backend: common } ]
`))
  await send(`${gateway.url}/grep-me?secret=1`, { host: 'common.example.com', headers: { 'user-agent': 'curl/8.5', 'x-request-id': 'common-1' } })
  const line = await gateway.waitForLog((entry) => typeof entry.msg === 'string' && entry.msg.includes('rid=common-1'))
  assert.match(String(line.msg), /^127\.0\.0\.1 - - \[\d\d\/[A-Z][a-z]{2}\/\d{4}:\d\d:\d\d:\d\d \+0000\] "GET \/grep-me HTTP\/1\.1" 200 \d+ "-" "curl\/8\.5" rid=common-1 host=common\.example\.com fe=common be=common inst=127\.0\.0\.1:\d+ ups=200 /)
  assert.doesNotMatch(String(line.msg), /secret/)
})
