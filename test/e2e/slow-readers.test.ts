/**
 * Clients that stop reading, or vanish mid-answer, never keep an instance's
 * connection (issue 19, found by an outside attack after items 1-6): an
 * HTTP/2 connection dropped with several answers under way lets every one of
 * them go; an answer the client does not read within client.sendTimeout is
 * cut; a keep-alive connection fed bare CRLFs is still closed.
 */
import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { connect as http2Connect, type ClientHttp2Session } from 'node:http2'
import { connect as netConnect } from 'node:net'
import { httpsConfig, httpsSetup, startHttps, closedAfter, type HttpsSetup } from '../helpers/https.js'
import { send } from '../helpers/http.js'
import type { SpawnedGateway } from '../helpers/spawn-gateway.js'

const sleep = async (ms: number): Promise<void> => { await new Promise((resolve) => setTimeout(resolve, ms)) }

// Larger than every socket buffer on the way: an answer nobody reads cannot complete by itself.
const BIG = Buffer.alloc(64 * 1024 * 1024, 'b')

/** Instances answering /big with 64 MiB, anything else as usual. */
function bigAnswers (s: HttpsSetup): void {
  for (const upstream of s.upstreams) {
    upstream.behaviour = (request, response) => {
      if (request.url !== '/big') return false
      response.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(BIG.length) })
      response.end(BIG)
      return true
    }
  }
}

/** In-flight counts of web-prod's instances and the connections open to instances, from the admin listener. */
async function held (gateway: SpawnedGateway): Promise<{ inFlight: number, connections: number }> {
  const state = (await send(`${gateway.adminUrl}/admin/state`)).json() as { backends: Array<{ name: string, instances: Array<{ inFlight: number }> }> }
  const inFlight = state.backends.find((backend) => backend.name === 'web-prod')?.instances.reduce((sum, instance) => sum + instance.inFlight, 0) ?? -1
  const connections = Number(/^srvgate_upstream_connections (\d+)$/m.exec((await send(`${gateway.adminUrl}/metrics`)).body)?.[1] ?? -1)
  return { inFlight, connections }
}

/** An HTTP/2 session that reads nothing (its window is 0) with `streams` answers of /big under way. */
async function stalledSession (t: TestContext, port: number, ca: string, streams: number): Promise<ClientHttp2Session> {
  const session = http2Connect(`https://www.example.com:${port}`, { ca, host: '127.0.0.1', servername: 'www.example.com', settings: { initialWindowSize: 0 } } as never)
  t.after(() => { session.destroy() })
  session.on('error', () => {})
  // Connected before any stream: a handshake slow on a busy box cannot leave the streams unsent.
  await new Promise<void>((resolve, reject) => { session.once('connect', () => { resolve() }); session.once('error', reject) })
  for (let index = 0; index < streams; index++) {
    const stream = session.request({ ':path': '/big', ':authority': 'www.example.com' })
    stream.on('error', () => {})
    stream.pause()
  }
  return session
}

test('an HTTP/2 connection dropped with several answers under way lets go of every instance connection', async (t) => {
  const s = await httpsSetup(t)
  bigAnswers(s)
  const { gateway, httpsPort } = await startHttps(t, httpsConfig(s, '', undefined).replace('retry: { attempts: 2 } }', 'retry: { attempts: 2 }, maxConnectionsPerInstance: 4 }'), { workers: 1 })
  for (let round = 0; round < 4; round++) {
    const session = await stalledSession(t, httpsPort, s.ca.caPem, 2)
    await sleep(800)
    // Gone without RST_STREAM: the TCP connection is simply destroyed.
    session.destroy()
    await sleep(200)
  }
  let after = await held(gateway)
  for (let attempt = 0; attempt < 20 && (after.inFlight !== 0 || after.connections > 2); attempt++) {
    await sleep(100)
    after = await held(gateway)
  }
  assert.equal(after.inFlight, 0, 'nothing left in flight')
  const answers = await Promise.all(Array.from({ length: 8 }, async () => (await send(`${gateway.url}/`, { host: 'www.example.com', timeoutMs: 3000, agent: false })).status))
  assert.deepEqual(answers, new Array<number>(8).fill(200))
})

test('clients that stop reading their answers (HTTP/1.1 and HTTP/2) lose them after client.sendTimeout; the instance connections are free for others', async (t) => {
  const s = await httpsSetup(t)
  bigAnswers(s)
  const { gateway, httpsPort } = await startHttps(t, httpsConfig(s, 'client: { sendTimeout: 1s }').replace('retry: { attempts: 2 } }', 'retry: { attempts: 2 }, maxConnectionsPerInstance: 4 }'), { workers: 1 })
  // Eight readers take every connection of the two instances (4 each).
  const readers = Array.from({ length: 8 }, () => {
    const socket = netConnect({ host: '127.0.0.1', port: gateway.port })
    t.after(() => { socket.destroy() })
    socket.on('error', () => {})
    socket.write('GET /big HTTP/1.1\r\nHost: www.example.com\r\n\r\n')
    // Read the first bytes, then nothing more.
    socket.once('data', () => { socket.pause() })
    return socket
  })
  const session = await stalledSession(t, httpsPort, s.ca.caPem, 4)
  await sleep(300)
  // Ordinary requests get connections while the readers sit there (each reader is cut after 1 s).
  for (let index = 0; index < 6; index++) {
    assert.equal((await send(`${gateway.url}/`, { host: 'www.example.com', timeoutMs: 6000, agent: false })).status, 200)
    await sleep(150)
  }
  // Every stalled answer is cut while its client still holds its connection open: nothing stays in flight.
  let after = await held(gateway)
  for (let attempt = 0; attempt < 60 && after.inFlight !== 0; attempt++) {
    await sleep(100)
    after = await held(gateway)
  }
  assert.equal(after.inFlight, 0, 'no instance connection held for a client that does not read')
  assert.ok(readers.every((socket) => !socket.destroyed), 'the readers are still there')
  const cutCount = (): number => gateway.logs.filter((line) => line.error === 'SG_ERR_CLIENT_TIMEOUT').length
  await gateway.waitForLog(() => cutCount() >= 12, 5000).catch(() => {
    const seen = gateway.logs.filter((line) => line.msg === 'request').map((line) => `${String(line.status)} ${String(line.protocol)} ${String(line.error ?? '')} ${String(line.path ?? line.url ?? '')} ${String(line.errorDetail ?? '')}`)
    assert.fail(`${cutCount()} of 12 answers cut for client.sendTimeout; requests logged: ${seen.join('; ')}`)
  })
  const cut = gateway.logs.find((line) => line.msg === 'request' && line.error === 'SG_ERR_CLIENT_TIMEOUT')
  assert.match(String(cut?.errorDetail), /client\.sendTimeout/)
  session.destroy()
})

test('a plain keep-alive connection fed bare CRLFs between requests is still closed (keepAliveTimeout, then headersTimeout)', async (t) => {
  const s = await httpsSetup(t)
  const { gateway } = await startHttps(t, httpsConfig(s, 'client: { keepAliveTimeout: 1s, headersTimeout: 1500ms }'), { workers: 1 })
  const socket = netConnect(gateway.port, '127.0.0.1')
  t.after(() => { socket.destroy() })
  await new Promise((resolve) => socket.once('connect', resolve))
  socket.write('GET / HTTP/1.1\r\nHost: www.example.com\r\n\r\n')
  await new Promise((resolve) => socket.once('data', resolve))
  const started = Date.now()
  const feed = setInterval(() => { if (socket.writable) socket.write('\r\n') }, 300)
  const closed = await closedAfter(socket, started, 8000)
  clearInterval(feed)
  assert.ok(closed.ms >= 0 && closed.ms < 4500, `closed after ${closed.ms} ms`)
})

test('an HTTP/2 client that keeps its window at 0 cannot hold its connection with small answers: each stream is reset after client.sendTimeout, then the idle session goes', async (t) => {
  const s = await httpsSetup(t)
  const { gateway, httpsPort } = await startHttps(t, httpsConfig(s, 'client: { sendTimeout: 1s, keepAliveTimeout: 1s }'), { workers: 1 })
  const session = await stalledSession(t, httpsPort, s.ca.caPem, 0)
  const started = Date.now()
  // A small proxied answer, and one srvgate writes itself (421: a name the certificate does not carry).
  for (const authority of ['www.example.com', 'pr-1.preview.example.com']) {
    const stream = session.request({ ':path': '/', ':authority': authority })
    stream.on('error', () => {})
  }
  const closed = await closedAfter(session as never, started, 8000)
  assert.ok(closed.ms >= 0 && closed.ms < 4500, `the session closed after ${closed.ms} ms`)
  await sleep(200)
  assert.match((await send(`${gateway.adminUrl}/metrics`)).body, /^srvgate_client_connections 0$/m)
  // The proxied answer's line names the send timeout, not a client that left (the stream's reset is srvgate's).
  const proxied = await gateway.waitForLog((line) => line.msg === 'request' && line.host === 'www.example.com')
  assert.equal(proxied.error, 'SG_ERR_CLIENT_TIMEOUT', `logged: ${JSON.stringify(proxied)}`)
})
