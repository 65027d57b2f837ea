/** WebSocket upgrades, tunnelled through srvgate started by its CLI. */
import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { createServer, type IncomingMessage } from 'node:http'
import { WebSocket, WebSocketServer } from 'ws'
import { ConsulLikeDnsServer, freePort } from '../helpers/dns-server.js'
import { SpawnedGateway } from '../helpers/spawn-gateway.js'
import { send } from '../helpers/http.js'

type EchoServer = { port: number, handshakes: IncomingMessage[] }

/** A WebSocket echo instance that records each handshake request. */
async function echoServer (t: TestContext, options: { reject?: number } = {}): Promise<EchoServer> {
  const server = createServer((_request, response) => { response.end('plain') })
  const handshakes: IncomingMessage[] = []
  const wss = new WebSocketServer({ noServer: true, handleProtocols: (protocols) => [...protocols][0] ?? false })
  server.on('upgrade', (request, socket, head) => {
    handshakes.push(request)
    if (options.reject !== undefined) {
      socket.end(`HTTP/1.1 ${options.reject} Forbidden\r\ncontent-type: text/plain\r\ncontent-length: 4\r\n\r\nnope`)
      return
    }
    wss.handleUpgrade(request, socket, head, (client) => {
      client.on('message', (data) => { client.send(`echo:${String(data)}`) })
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.after(async () => {
    for (const client of wss.clients) client.terminate()
    await new Promise((resolve) => server.close(resolve))
  })
  const address = server.address()
  return { port: typeof address === 'object' && address !== null ? address.port : 0, handshakes }
}

async function gatewayFor (t: TestContext, dns: ConsulLikeDnsServer): Promise<SpawnedGateway> {
  return await SpawnedGateway.start(t, `
listen: { http: "127.0.0.1:\${PORT}", admin: "127.0.0.1:\${ADMIN_PORT}" }
resolvers: { consul: { nameservers: ["${dns.address}"], ttl: { min: 200ms, max: 1s } } }
backends:
  ws: { discovery: { resolver: consul, srv: _ws.service.consul }, balance: weighted }
  none: { discovery: { resolver: consul, srv: _none.service.consul } }
frontends:
  - { name: none, match: { host: none.example.com }, backend: none }
  - { name: ws, match: { host: ws.example.com }, backend: ws }
`)
}

/** Open a WebSocket through the gateway; resolves with the socket or the HTTP status it was refused with. */
async function open (gateway: SpawnedGateway, host: string, headers: Record<string, string> = {}, protocols: string[] = []): Promise<{ socket?: WebSocket, status?: number, body?: string }> {
  return await new Promise((resolve) => {
    const socket = new WebSocket(`ws://127.0.0.1:${gateway.port}/chat?room=1`, protocols, { headers: { host, ...headers } })
    socket.on('open', () => resolve({ socket }))
    socket.on('unexpected-response', (_request, response) => {
      let body = ''
      response.on('data', (chunk: Buffer) => { body += chunk.toString() })
      response.on('end', () => resolve({ status: response.statusCode, body }))
    })
    socket.on('error', () => resolve({ status: 0 }))
  })
}

test('a WebSocket is tunnelled to an instance, handshake headers and x-forwarded-* included', async (t) => {
  const dns = await ConsulLikeDnsServer.start(t)
  const echo = await echoServer(t)
  dns.setService('_ws.service.consul', [{ address: '127.0.0.1', port: echo.port }])
  const gateway = await gatewayFor(t, dns)
  const { socket } = await open(gateway, 'ws.example.com', { authorization: 'Bearer x' }, ['chat'])
  assert.ok(socket !== undefined, 'the WebSocket opened')
  t.after(() => socket.terminate())
  assert.equal(socket.protocol, 'chat', 'the instance\'s subprotocol choice reaches the client')
  const reply = await new Promise<string>((resolve) => { socket.once('message', (data) => resolve(String(data))); socket.send('hello') })
  assert.equal(reply, 'echo:hello')
  const handshake = echo.handshakes[0]
  assert.equal(handshake?.url, '/chat?room=1')
  assert.equal(handshake?.headers.authorization, 'Bearer x')
  assert.equal(handshake?.headers['sec-websocket-protocol'], 'chat')
  assert.equal(handshake?.headers['x-forwarded-for'], '127.0.0.1')
  assert.equal(handshake?.headers.host, 'ws.example.com')
})

test('pitfall: a dead instance is failed over before the client gets 101', async (t) => {
  const dns = await ConsulLikeDnsServer.start(t)
  const echo = await echoServer(t)
  dns.setService('_ws.service.consul', [{ address: '127.0.0.1', port: await freePort(), weight: 100 }, { address: '127.0.0.1', port: echo.port, weight: 1 }])
  const gateway = await gatewayFor(t, dns)
  const { socket } = await open(gateway, 'ws.example.com')
  assert.ok(socket !== undefined)
  t.after(() => socket.terminate())
  const reply = await new Promise<string>((resolve) => { socket.once('message', (data) => resolve(String(data))); socket.send('x') })
  assert.equal(reply, 'echo:x')
})

test('pitfall: with no instance reachable the client gets 502, not 101 then a close naming an address', async (t) => {
  const dns = await ConsulLikeDnsServer.start(t)
  dns.setService('_ws.service.consul', [{ address: '127.0.0.1', port: await freePort() }])
  const gateway = await gatewayFor(t, dns)
  const refused = await open(gateway, 'ws.example.com')
  assert.equal(refused.socket, undefined)
  assert.equal(refused.status, 502)
  assert.equal(refused.body, '{"error":"upstream_error"}')
})

test('an instance refusing the upgrade has its answer relayed; no route is 404; no instance is 503', async (t) => {
  const dns = await ConsulLikeDnsServer.start(t)
  const refusing = await echoServer(t, { reject: 403 })
  dns.setService('_ws.service.consul', [{ address: '127.0.0.1', port: refusing.port }])
  dns.setService('_none.service.consul', [])
  const gateway = await gatewayFor(t, dns)
  assert.equal((await open(gateway, 'ws.example.com')).status, 403)
  assert.equal((await open(gateway, 'nowhere.example.com')).status, 404)
  const none = await open(gateway, 'none.example.com')
  assert.equal(none.status, 503)
  assert.equal(none.body, '{"error":"no_healthy_upstream","backend":"none"}')
})

test('a non-WebSocket Upgrade (h2c) without a body is served as a plain request', async (t) => {
  const dns = await ConsulLikeDnsServer.start(t)
  const echo = await echoServer(t)
  dns.setService('_ws.service.consul', [{ address: '127.0.0.1', port: echo.port }])
  const gateway = await gatewayFor(t, dns)
  const response = await send(`${gateway.url}/`, { host: 'ws.example.com', headers: { connection: 'Upgrade, HTTP2-Settings', upgrade: 'h2c', 'http2-settings': 'AAMAAABkAAQCAAAAAAIAAAAA' }, agent: false })
  assert.equal(response.status, 200)
  assert.equal(response.body, 'plain')
})
