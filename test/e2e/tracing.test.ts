/**
 * Tracing (issue 25), through the CLI: W3C trace context continued or
 * started, a SERVER span per request named by frontend and route, a CLIENT
 * span per attempt whose id the instance receives as its parent, retries as
 * sibling CLIENT spans, OTLP over protobuf and JSON to a real receiver, a
 * collector that is down (no request fails, spans counted as dropped), two
 * workers, and parent-based ratio sampling.
 */
import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { ConsulLikeDnsServer } from '../helpers/dns-server.js'
import { Upstream, type UpstreamReply } from '../helpers/upstream.js'
import { SpawnedGateway } from '../helpers/spawn-gateway.js'
import { keepAlive, send } from '../helpers/http.js'
import { OtlpReceiver, type ReceivedSpan } from '../helpers/otlp/receiver.js'
import { h2Request, h2Session, httpsConfig, httpsSetup, startHttps } from '../helpers/https.js'
import { createServer, type IncomingMessage } from 'node:http'
import type { AddressInfo } from 'node:net'
import { WebSocket, WebSocketServer } from 'ws'

const RESOLVER = 'ttl: { min: 250ms, max: 1s }, timeout: 300ms, attempts: 2'
/** Batches leave every 100 ms (OTEL_BSP_SCHEDULE_DELAY), so a test waits for spans briefly. */
const FAST_EXPORT = { OTEL_BSP_SCHEDULE_DELAY: '100' }
const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-(0[01])$/

async function setup (t: TestContext, tracing: string, options: { instances?: number, workers?: number, env?: Record<string, string> } = {}): Promise<{ gateway: SpawnedGateway, upstreams: Upstream[] }> {
  const dns = await ConsulLikeDnsServer.start(t)
  const upstreams = await Promise.all(Array.from({ length: options.instances ?? 1 }, async (_, index) => await Upstream.start(t, `web-${index}`)))
  dns.setService('_web._tcp.service.consul', upstreams.map((upstream) => ({ address: '127.0.0.1', port: upstream.port })))
  const gateway = await SpawnedGateway.start(t, `
listen: { http: "127.0.0.1:\${PORT}", admin: "127.0.0.1:\${ADMIN_PORT}" }
resolvers: { consul: { nameservers: ["${dns.address}"], ${RESOLVER} } }
backends: { web: { discovery: { resolver: consul, srv: _web._tcp.service.consul } } }
frontends:
  - { name: api, match: { pathPrefix: /api/ }, backend: web }
  - { name: www, match: {}, backend: web }
${tracing}
`, { workers: options.workers ?? 1, env: { ...FAST_EXPORT, ...options.env } })
  return { gateway, upstreams }
}

const echoed = (body: string): UpstreamReply => JSON.parse(body) as UpstreamReply

/** srvgate_tracing_spans_dropped_total{reason="export_failed"}, read until it reaches `count` or 10 s pass. */
async function exportFailedSpans (gateway: SpawnedGateway, count: number): Promise<number> {
  let dropped = 0
  for (let attempt = 0; attempt < 100 && dropped < count; attempt++) {
    await new Promise((resolve) => setTimeout(resolve, 100))
    dropped = Number(/^srvgate_tracing_spans_dropped_total\{reason="export_failed"\} (\d+)/m.exec((await send(`${gateway.adminUrl}/metrics`)).body)?.[1] ?? 0)
  }
  return dropped
}

test('tracing: a request without traceparent starts a trace; the instance gets srvgate\'s CLIENT span as parent, under one SERVER span named by frontend and route, with the HTTP attributes; the access line carries the ids (protobuf)', async (t) => {
  const receiver = await OtlpReceiver.start(t)
  const { gateway, upstreams } = await setup(t, `tracing: { otlp: { endpoint: "${receiver.url}" }, serviceName: edge-test }`)
  const response = await send(`${gateway.url}/api/items?x=1`, { agent: keepAlive })
  assert.equal(response.status, 200)
  const sent = TRACEPARENT.exec(String(echoed(response.body).headers.traceparent))
  assert.ok(sent !== null, `traceparent at the instance: ${String(echoed(response.body).headers.traceparent)}`)
  const [, traceId, parentId, flags] = sent
  assert.equal(flags, '01', 'sampled')
  const spans = await receiver.waitFor((all) => all.length >= 2)
  const server = spans.find((span) => span.kind === 2) as ReceivedSpan
  const client = spans.find((span) => span.kind === 3) as ReceivedSpan
  assert.ok(server !== undefined && client !== undefined, JSON.stringify(spans))
  assert.deepEqual([server.traceId, client.traceId], [traceId, traceId])
  assert.equal(client.spanId, parentId, 'the instance\'s parent is the attempt span')
  assert.equal(client.parentSpanId, server.spanId)
  assert.equal(server.parentSpanId, '', 'a new trace: the SERVER span is its root')
  assert.equal(server.name, 'GET api /api/')
  assert.equal(server.serviceName, 'edge-test')
  assert.equal(server.encoding, 'protobuf')
  assert.deepEqual({
    method: server.attributes['http.request.method'],
    path: server.attributes['url.path'],
    route: server.attributes['http.route'],
    status: server.attributes['http.response.status_code'],
    client: server.attributes['client.address'],
    frontend: server.attributes['srvgate.frontend'],
    backend: server.attributes['srvgate.backend'],
    retries: server.attributes['srvgate.retries']
  }, { method: 'GET', path: '/api/items', route: '/api/', status: 200, client: '127.0.0.1', frontend: 'api', backend: 'web', retries: 0 })
  assert.deepEqual([server.attributes['server.address'], server.attributes['server.port']], ['127.0.0.1', gateway.port])
  assert.deepEqual([client.attributes['server.address'], client.attributes['server.port'], client.attributes['srvgate.outcome'], client.attributes['http.response.status_code']], ['127.0.0.1', upstreams[0]?.port, 'success', 200])
  // Times on the wall clock, the attempt within the request.
  assert.ok(Math.abs(server.startMs - Date.now()) < 10_000, `start ${server.startMs}`)
  assert.ok(server.startMs <= client.startMs && client.startMs <= client.endMs && client.endMs <= server.endMs, JSON.stringify([server.startMs, client.startMs, client.endMs, server.endMs]))
  const metrics = (await send(`${gateway.adminUrl}/metrics`)).body
  assert.match(metrics, /^srvgate_tracing_spans_dropped_total\{reason="export_failed"\} 0$/m, 'the series exists before any drop')
  assert.match(metrics, /^srvgate_tracing_spans_exported_total [1-9]/m)
  const line = await gateway.waitForLog((entry) => entry.msg === 'request' && entry.path === '/api/items')
  assert.deepEqual([line.traceId, line.spanId], [traceId, server.spanId])
})

test('tracing: an incoming traceparent is continued (same trace id, the client\'s span as the SERVER span\'s parent), also from a peer outside trustedProxies; restartAtEdge starts a new trace instead (JSON)', async (t) => {
  const incoming = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01'
  const receiver = await OtlpReceiver.start(t)
  const { gateway } = await setup(t, `tracing: { otlp: { endpoint: "${receiver.url}", protocol: http/json } }`, { env: { OTEL_EXPORTER_OTLP_COMPRESSION: 'gzip' } })
  const response = await send(`${gateway.url}/x`, { headers: { traceparent: incoming, tracestate: 'vendor=1' } })
  const sent = TRACEPARENT.exec(String(echoed(response.body).headers.traceparent))
  assert.equal(sent?.[1], '4bf92f3577b34da6a3ce929d0e0e4736')
  assert.notEqual(sent?.[2], '00f067aa0ba902b7', 'the instance\'s parent is srvgate\'s span, not the client\'s')
  assert.equal(echoed(response.body).headers.tracestate, 'vendor=1', 'tracestate travels on')
  const spans = await receiver.waitFor((all) => all.length >= 2)
  const server = spans.find((span) => span.kind === 2)
  assert.equal(server?.traceId, '4bf92f3577b34da6a3ce929d0e0e4736')
  assert.equal(server?.parentSpanId, '00f067aa0ba902b7')
  assert.equal(server?.name, 'GET www /')
  assert.equal(server?.encoding, 'json')
  assert.equal(receiver.requests[0]?.headers['content-encoding'], 'gzip', 'OTEL_EXPORTER_OTLP_COMPRESSION=gzip')

  const restarting = await OtlpReceiver.start(t)
  const edge = await setup(t, `tracing: { otlp: { endpoint: "${restarting.url}" }, restartAtEdge: true }`)
  const restarted = await send(`${edge.gateway.url}/x`, { headers: { traceparent: incoming } })
  const fresh = TRACEPARENT.exec(String(echoed(restarted.body).headers.traceparent))
  assert.ok(fresh !== null)
  assert.notEqual(fresh[1], '4bf92f3577b34da6a3ce929d0e0e4736', 'a new trace at the edge')
  const root = (await restarting.waitFor((all) => all.some((span) => span.kind === 2))).find((span) => span.kind === 2)
  assert.equal(root?.parentSpanId, '')
})

test('tracing: a retry is a second CLIENT span, sibling of the first under one SERVER span, each judged by the retry policy', async (t) => {
  const receiver = await OtlpReceiver.start(t)
  const { gateway, upstreams } = await setup(t, `tracing: { otlp: { endpoint: "${receiver.url}" } }`, { instances: 2 })
  for (const upstream of upstreams) {
    upstream.behaviour = (_request, response) => {
      if (upstream.name !== 'web-0') return false
      response.writeHead(503).end('down')
      return true
    }
  }
  // Two instances, one answering 503: some request meets it first and is retried on the other.
  let retried: string | undefined
  for (let index = 0; index < 20 && retried === undefined; index++) {
    const response = await send(`${gateway.url}/r${index}`, { agent: keepAlive })
    assert.equal(response.status, 200)
    const line = await gateway.waitForLog((entry) => entry.msg === 'request' && entry.path === `/r${index}`)
    if (line.retries === 1) retried = String(line.traceId)
  }
  assert.ok(retried !== undefined, 'one request was retried')
  const spans = await receiver.waitFor((all) => all.filter((span) => span.traceId === retried).length >= 3)
  const trace = spans.filter((span) => span.traceId === retried)
  const server = trace.find((span) => span.kind === 2) as ReceivedSpan
  const attempts = trace.filter((span) => span.kind === 3).sort((a, b) => Number(a.attributes['srvgate.attempt']) - Number(b.attributes['srvgate.attempt']))
  assert.equal(attempts.length, 2)
  assert.ok(attempts.every((span) => span.parentSpanId === server.spanId), 'siblings under the SERVER span')
  assert.deepEqual(attempts.map((span) => [span.attributes['srvgate.outcome'], span.attributes['http.response.status_code'], span.statusCode]), [['status-5xx', 503, 2], ['success', 200, 0]])
  assert.equal(server.attributes['srvgate.retries'], 1)
})

test('tracing: a collector that is down fails no request and slows none; its spans are counted as dropped', async (t) => {
  const receiver = await OtlpReceiver.start(t)
  receiver.failing = true
  const { gateway } = await setup(t, `tracing: { otlp: { endpoint: "${receiver.url}", timeout: 500ms } }`)
  const started = Date.now()
  for (let index = 0; index < 50; index++) assert.equal((await send(`${gateway.url}/d${index}`, { agent: keepAlive })).status, 200)
  assert.ok(Date.now() - started < 5000, `50 requests took ${Date.now() - started} ms`)
  assert.equal(await exportFailedSpans(gateway, 100), 100, '50 SERVER and 50 CLIENT spans dropped, counted')
  assert.ok(receiver.requests.length > 0, 'srvgate did try the collector')
  const warning = await gateway.waitForLog((line) => String(line.msg).startsWith('tracing: spans dropped'))
  assert.equal(warning.endpoint, receiver.url)
  assert.equal(gateway.logs.filter((line) => String(line.msg).startsWith('tracing: spans dropped')).length, 1, 'one warning a minute at most')
})

test('tracing: a collector that accepts exports and never answers slows no request; the export times out and its spans are counted as dropped', async (t) => {
  const receiver = await OtlpReceiver.start(t)
  receiver.isHanging = true
  const { gateway } = await setup(t, `tracing: { otlp: { endpoint: "${receiver.url}", timeout: 300ms } }`)
  const started = Date.now()
  for (let index = 0; index < 30; index++) assert.equal((await send(`${gateway.url}/h${index}`, { agent: keepAlive })).status, 200)
  assert.ok(Date.now() - started < 5000, `30 requests took ${Date.now() - started} ms`)
  assert.equal(await exportFailedSpans(gateway, 60), 60, 'every span of the 30 requests, dropped after the timeout')
  assert.ok(receiver.requests.length > 0)
})

test('tracing: a collector that answers its headers and then trickles its body for ever: tracing.otlp.timeout bounds the whole export, its connection is closed and its spans counted as dropped', async (t) => {
  const receiver = await OtlpReceiver.start(t)
  receiver.isTrickling = true
  const { gateway } = await setup(t, `tracing: { otlp: { endpoint: "${receiver.url}", timeout: 500ms } }`)
  for (let index = 0; index < 5; index++) assert.equal((await send(`${gateway.url}/t${index}`, { agent: keepAlive })).status, 200)
  assert.equal(await exportFailedSpans(gateway, 10), 10, 'the 5 requests\' spans, dropped once the timeout passed')
  assert.ok(receiver.requests.length > 0)
  for (let attempt = 0; attempt < 20 && receiver.openConnections > 0; attempt++) await new Promise((resolve) => setTimeout(resolve, 100))
  assert.equal(receiver.openConnections, 0, 'the export\'s connection was closed, not left to trickle')
})

test('tracing: two workers each export their own spans, to one trace per request', async (t) => {
  const receiver = await OtlpReceiver.start(t)
  const { gateway } = await setup(t, `tracing: { otlp: { endpoint: "${receiver.url}" } }`, { workers: 2 })
  const traceIds = new Set<string>()
  for (let index = 0; index < 40; index++) {
    const response = await send(`${gateway.url}/w${index}`, { agent: false })
    traceIds.add(TRACEPARENT.exec(String(echoed(response.body).headers.traceparent))?.[1] ?? '')
  }
  assert.equal(traceIds.size, 40)
  const spans = await receiver.waitFor((all) => all.filter((span) => span.kind === 2).length >= 40)
  assert.deepEqual(new Set(spans.filter((span) => span.kind === 2).map((span) => span.traceId)), traceIds)
  // Each worker's own exporter: its spans name its process.
  const pids = new Set(spans.map((span) => span.pid))
  assert.equal(pids.size, 2, `spans from processes ${[...pids].join(', ')}`)
  assert.ok(!pids.has(gateway.process.pid as number), 'not from the primary')
})

test('tracing: sampleRatio 0, 0.5 and 1 over 1,000 requests: none, about half and all recorded; a sampled traceparent is recorded at 0, an unsampled one is not at 1 (parent-based)', async (t) => {
  for (const [ratio, low, high] of [[0, 0, 0], [0.5, 400, 600], [1, 1000, 1000]] as const) {
    const receiver = await OtlpReceiver.start(t)
    const { gateway } = await setup(t, `tracing: { otlp: { endpoint: "${receiver.url}" }, sampleRatio: ${ratio} }`, { env: { OTEL_BSP_MAX_QUEUE_SIZE: '4096' } })
    let sampledAtInstance = 0
    for (let index = 0; index < 1000; index++) {
      const response = await send(`${gateway.url}/s`, { agent: keepAlive })
      if (TRACEPARENT.exec(String(echoed(response.body).headers.traceparent))?.[3] === '01') sampledAtInstance++
    }
    const parent = ratio === 0 ? '01' : '00'
    const forced = await send(`${gateway.url}/forced`, { agent: keepAlive, headers: { traceparent: `00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-${parent}` } })
    assert.equal(TRACEPARENT.exec(String(echoed(forced.body).headers.traceparent))?.[3], parent, `ratio ${ratio}: the parent's decision`)
    const expected = ratio === 0 ? 1 : high
    const spans = await receiver.waitFor((all) => all.filter((span) => span.kind === 2).length >= expected, ratio === 0.5 ? 3000 : 10_000)
    const servers = spans.filter((span) => span.kind === 2 && span.attributes['url.path'] === '/s').length
    assert.ok(servers >= low && servers <= high, `ratio ${ratio}: ${servers} of 1000 recorded`)
    assert.equal(sampledAtInstance, servers, `ratio ${ratio}: the instance is told what was recorded`)
    assert.equal(spans.some((span) => span.attributes['url.path'] === '/forced'), ratio === 0, `ratio ${ratio}: the forced request`)
    await gateway.stop()
  }
})

test('tracing: an HTTP/2 request over HTTPS and a WebSocket handshake are traced as any request; the exporter sends tracing.otlp.headers', async (t) => {
  const receiver = await OtlpReceiver.start(t)
  const s = await httpsSetup(t)
  const echo = createServer()
  const wss = new WebSocketServer({ noServer: true })
  const handshakes: IncomingMessage[] = []
  echo.on('upgrade', (request, socket, head) => {
    handshakes.push(request)
    wss.handleUpgrade(request, socket, head, (client) => { client.on('message', (data) => { client.send(`echo:${String(data)}`) }) })
  })
  await new Promise<void>((resolve) => { echo.listen(0, '127.0.0.1', resolve) })
  t.after(async () => {
    for (const client of wss.clients) client.terminate()
    await new Promise((resolve) => { echo.close(resolve) })
  })
  const echoPort = (echo.address() as AddressInfo).port
  s.dns.setService('_ws.service.consul', [{ address: '127.0.0.1', port: echoPort }])
  const { gateway, httpsPort } = await startHttps(t, httpsConfig(s, `
  - { name: ws, match: { host: ws.example.com }, backend: ws }
tracing: { otlp: { endpoint: "${receiver.url}", headers: { authorization: "Bearer otlp-key" } } }
`).replace('backends:\n', 'backends:\n  ws: { discovery: { resolver: consul, srv: _ws.service.consul } }\n'), { env: FAST_EXPORT })
  const session = await h2Session(t, httpsPort, 'www.example.com', s.ca.caPem)
  const answer = await h2Request(session, { ':method': 'GET', ':path': '/over-h2', ':authority': 'www.example.com' })
  assert.equal(answer.status, 200)
  const h2Parent = TRACEPARENT.exec(String(echoed(answer.body).headers.traceparent))
  assert.ok(h2Parent !== null, 'the instance behind HTTP/2 gets a traceparent')

  const socket = new WebSocket(`ws://127.0.0.1:${gateway.port}/chat`, { headers: { host: 'ws.example.com' } })
  await new Promise<void>((resolve, reject) => { socket.once('open', () => { resolve() }); socket.once('error', reject) })
  socket.send('hi')
  assert.equal(String(await new Promise((resolve) => { socket.once('message', resolve) })), 'echo:hi')
  socket.close()
  const wsParent = TRACEPARENT.exec(String(handshakes[0]?.headers.traceparent))
  assert.ok(wsParent !== null, 'the WebSocket instance gets a traceparent with the handshake')

  const spans = await receiver.waitFor((all) => all.filter((span) => span.kind === 2).length >= 2)
  const h2 = spans.find((span) => span.kind === 2 && span.traceId === h2Parent[1])
  assert.equal(h2?.name, 'GET prod /')
  assert.equal(h2?.attributes['url.path'], '/over-h2')
  const ws = spans.find((span) => span.kind === 2 && span.traceId === wsParent[1])
  assert.equal(ws?.name, 'GET ws /')
  assert.equal(ws?.attributes['srvgate.upgrade'], 'websocket')
  assert.equal(ws?.attributes['http.response.status_code'], 101)
  assert.equal(receiver.requests[0]?.headers.authorization, 'Bearer otlp-key')
})

test('tracing: an attempt that waited for a pooled connection carries the wait as a pool.wait event', async (t) => {
  const receiver = await OtlpReceiver.start(t)
  const dns = await ConsulLikeDnsServer.start(t)
  const upstream = await Upstream.start(t, 'slow')
  upstream.behaviour = (request, response) => {
    if (request.url !== '/slow') return false
    setTimeout(() => { response.end('{}') }, 300)
    return true
  }
  dns.setService('_web._tcp.service.consul', [{ address: '127.0.0.1', port: upstream.port }])
  const gateway = await SpawnedGateway.start(t, `
listen: { http: "127.0.0.1:\${PORT}", admin: "127.0.0.1:\${ADMIN_PORT}" }
resolvers: { consul: { nameservers: ["${dns.address}"], ${RESOLVER} } }
backends: { web: { discovery: { resolver: consul, srv: _web._tcp.service.consul }, maxConnectionsPerInstance: 1 } }
frontends: [ { name: www, match: {}, backend: web } ]
tracing: { otlp: { endpoint: "${receiver.url}" } }
`, { workers: 1, env: FAST_EXPORT })
  const [first, second] = await Promise.all([send(`${gateway.url}/slow`, { agent: false }), send(`${gateway.url}/slow`, { agent: false })])
  assert.deepEqual([first.status, second.status], [200, 200])
  const spans = await receiver.waitFor((all) => all.filter((span) => span.kind === 3).length >= 2)
  // The wait runs until the pool hands a connection over: a new connection's connect is in it (a millisecond or so).
  const waits = spans.filter((span) => span.kind === 3).map((span) => Number(span.events.find((event) => event.name === 'pool.wait')?.attributes['srvgate.pool.wait_ms'] ?? 0))
  assert.equal(waits.length, 2)
  assert.equal(waits.filter((ms) => ms >= 200).length, 1, `the second attempt waited for the one connection (the first's answer took 300 ms): ${JSON.stringify(waits)}`)
  assert.ok(waits.some((ms) => ms < 200), JSON.stringify(waits))
})
