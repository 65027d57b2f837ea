/**
 * UpstreamPools (the upstream keep-alive pools) against a real loopback HTTP
 * server: connections counted, a retired instance's pool closed once its
 * request finished, close() letting in-flight requests end first.
 */
import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { createServer, type ServerResponse } from 'node:http'
import type { Socket } from 'node:net'
import { once } from 'node:events'
import type { Dispatcher } from 'undici'
import { ConsulLikeDnsServer } from '../../helpers/dns-server.js'
import { parseConfigText } from '../../../src/config/load.js'
import { BackendRegistry } from '../../../src/upstream/registry.js'
import type { Backend } from '../../../src/upstream/backend.js'
import { ManualClock } from '../../../src/util/clock.js'
import { SeededRandom } from '../../../src/util/random.js'
import { UpstreamPools } from '../../../src/proxy/upstream-pools.js'
import { ProxyRequest } from '../../../src/proxy/proxy-request.js'

const DNS_PORT = 22601
const HTTP_PORT = 22620
const ORIGIN = `http://127.0.0.1:${HTTP_PORT}`

/** Poll (bounded in time, real time: these are real sockets) until `condition` holds. */
async function eventually (condition: () => boolean, what: string, withinMs = 5000): Promise<void> {
  const deadline = Date.now() + withinMs
  while (!condition()) {
    if (Date.now() > deadline) assert.fail(`not within ${withinMs} ms: ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 5))
  }
}

async function setup (t: TestContext) {
  const sockets = new Set<Socket>()
  let accepted = 0
  const held: ServerResponse[] = []
  const server = createServer((request, response) => {
    if (request.url === '/held') held.push(response)
    else response.end('ok')
  })
  server.on('connection', (socket: Socket) => {
    accepted++
    sockets.add(socket)
    socket.on('close', () => { sockets.delete(socket) })
  })
  server.listen(HTTP_PORT, '127.0.0.1')
  await once(server, 'listening')
  t.after(() => { server.closeAllConnections(); server.close() })
  const dns = await ConsulLikeDnsServer.start(t, { port: DNS_PORT })
  dns.setService('_web.service.consul', [{ address: '127.0.0.1', port: HTTP_PORT }])
  const config = parseConfigText(`
listen: { http: 127.0.0.1:0 }
resolvers: { consul: { nameservers: ["${dns.address}"] } }
backends: { web: { discovery: { resolver: consul, srv: _web.service.consul } } }
frontends: [ { name: web, match: { host: web.example.com }, backend: web } ]
`, {})
  const clock = new ManualClock()
  const registry = BackendRegistry.control(config, { clock, random: new SeededRandom(1) })
  await registry.start()
  t.after(() => { registry.stop() })
  const pools = new UpstreamPools({}, clock)
  t.after(async () => { await pools.destroy() })
  const backend = registry.get('web') as Backend
  /** A GET through the pools; resolves with its status once the answer is complete. */
  const get = async (path: string): Promise<number> => await new Promise((resolve, reject) => {
    const request = new ProxyRequest('GET', clock.now())
    request.routeTo(backend, {})
    let status = 0
    const handler: Dispatcher.DispatchHandler = {
      onConnect: () => {},
      onHeaders: (statusCode) => { status = statusCode; return true },
      onData: () => true,
      onComplete: () => { resolve(status) },
      onError: reject
    }
    pools.forward(request, { origin: '', method: 'GET', path, headers: { host: 'web.example.com' }, body: null }, handler)
  })
  return { pools, get, sockets, held, accepted: () => accepted }
}

test('openConnections counts the connections open to instances, as the instance sees them', async (t) => {
  const { pools, get, sockets } = await setup(t)
  assert.equal(pools.openConnections, 0)
  assert.equal(await get('/a'), 200)
  assert.equal(pools.openConnections, 1)
  await eventually(() => sockets.size === 1, 'the instance holds the one connection')
  const both = await Promise.all([get('/b'), get('/c')])
  assert.deepEqual(both, [200, 200])
  await eventually(() => sockets.size === pools.openConnections, 'the same count on both sides')
  assert.ok(pools.openConnections >= 1 && pools.openConnections <= 3)
})

test('retire: a departed instance\'s pool closes once its request finished; a returning instance gets a new pool', async (t) => {
  const { pools, get, sockets, held, accepted } = await setup(t)
  const answered = get('/held')
  await eventually(() => held.length === 1, 'the request reached the instance')
  pools.retire(new Set([ORIGIN]))
  assert.equal(sockets.size, 1, 'the request in flight keeps its connection')
  held[0]?.end('late')
  assert.equal(await answered, 200, 'it finishes')
  // Well before any keep-alive timeout (undici's 4 s, Node's 5 s) would close it.
  await eventually(() => sockets.size === 0 && pools.openConnections === 0, 'the retired pool\'s connection closes', 1000)
  assert.equal(await get('/again'), 200)
  assert.equal(accepted(), 2, 'a new pool, a new connection')
  assert.equal(pools.openConnections, 1)
})

test('close: in-flight requests finish first, then every connection goes', async (t) => {
  const { pools, get, sockets, held } = await setup(t)
  assert.equal(await get('/warm'), 200)
  const answered = get('/held')
  await eventually(() => held.length === 1, 'the request reached the instance')
  let isClosed = false
  const closing = pools.close().then(() => { isClosed = true })
  await new Promise((resolve) => setTimeout(resolve, 50))
  assert.equal(isClosed, false, 'close waits for the request in flight')
  held[0]?.end('late')
  assert.equal(await answered, 200)
  await closing
  assert.equal(pools.openConnections, 0)
  await eventually(() => sockets.size === 0, 'the instance saw its connections close', 1000)
})
