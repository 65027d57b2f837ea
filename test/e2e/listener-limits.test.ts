/**
 * Every listener as hard as the plain-HTTP one (issue 19, items 1-5): the
 * HTTPS listener's timeouts, the process's connection caps, HTTP/2's stream
 * limit, refusals over HTTP/2 with their own :status, and 421 for a request
 * its connection's certificate does not cover. Through the CLI, with Node's
 * tls, http2 and net clients as an attacker or a browser would use them.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { connect as netConnect, type Socket } from 'node:net'
import type { ClientHttp2Session } from 'node:http2'
import { httpsConfig, httpsSetup, startHttps, h2Session, h2Request, tlsSocket, closedAfter } from '../helpers/https.js'
import { send } from '../helpers/http.js'

const sleep = async (ms: number): Promise<void> => { await new Promise((resolve) => setTimeout(resolve, ms)) }

/** Resolves with the first bytes `socket` receives. */
async function firstBytes (socket: Socket): Promise<string> {
  return await new Promise((resolve) => { socket.once('data', (chunk: Buffer) => { resolve(chunk.toString('latin1')) }) })
}

test('HTTPS: client.headersTimeout bounds handshake and head from accept, keepAliveTimeout bounds idle HTTP/1.1 and HTTP/2 connections', async (t) => {
  const s = await httpsSetup(t)
  const { httpsPort } = await startHttps(t, httpsConfig(s, 'client: { headersTimeout: 1500ms, keepAliveTimeout: 1s }'))
  const ca = s.ca.caPem
  const host = 'www.example.com'
  const [silent, trickledHead, idleKeepAlive, idleH2, idleH2AfterStream, trickledSecondHead, trickledHello] = await Promise.all([
    // A completed handshake that then sends nothing.
    (async () => {
      const started = Date.now()
      return await closedAfter(await tlsSocket(t, httpsPort, host, ca), started, 8000)
    })(),
    // An HTTP/1.1 head trickled a line every 400 ms: every byte is in time, the whole head is not.
    (async () => {
      const started = Date.now()
      const socket = await tlsSocket(t, httpsPort, host, ca)
      socket.write(`GET / HTTP/1.1\r\nHost: ${host}\r\n`)
      const trickle = setInterval(() => { if (socket.writable) socket.write('x-slow: 1\r\n') }, 400)
      const result = await closedAfter(socket, started, 8000)
      clearInterval(trickle)
      return result
    })(),
    // An idle HTTP/1.1 keep-alive connection after one answer.
    (async () => {
      const socket = await tlsSocket(t, httpsPort, host, ca)
      socket.write(`GET / HTTP/1.1\r\nHost: ${host}\r\n\r\n`)
      const answer = await firstBytes(socket)
      assert.match(answer, /^HTTP\/1.1 200/)
      return await closedAfter(socket, Date.now(), 8000)
    })(),
    // An HTTP/2 connection (ALPN h2) that never sends the preface.
    (async () => {
      const started = Date.now()
      return await closedAfter(await tlsSocket(t, httpsPort, host, ca, ['h2']), started, 8000)
    })(),
    // An HTTP/2 session whose one stream is done: GOAWAY, then closed.
    (async () => {
      const session = await h2Session(t, httpsPort, host, ca)
      assert.equal((await h2Request(session, { ':path': '/', ':authority': host })).status, 200)
      const idleFrom = Date.now()
      let goaway = false
      session.once('goaway', () => { goaway = true })
      const closed = await closedAfter(session as never, idleFrom, 8000)
      return { ...closed, goaway }
    })(),
    // A keep-alive connection whose second head is trickled.
    (async () => {
      const socket = await tlsSocket(t, httpsPort, host, ca)
      socket.write(`GET / HTTP/1.1\r\nHost: ${host}\r\n\r\n`)
      await firstBytes(socket)
      const started = Date.now()
      socket.write('GET / HTTP/1.1\r\n')
      const trickle = setInterval(() => { if (socket.writable) socket.write('x-slow: 1\r\n') }, 300)
      const result = await closedAfter(socket, started, 8000)
      clearInterval(trickle)
      return result
    })(),
    // A ClientHello one byte every 200 ms (no tls.default here: the hello is read before TLS).
    (async () => {
      const started = Date.now()
      const socket = netConnect(httpsPort, '127.0.0.1')
      const hello = Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03, ...new Array<number>(40).fill(7)])
      let sent = 0
      const trickle = setInterval(() => { if (socket.writable && sent < hello.length) socket.write(hello.subarray(sent, ++sent)) }, 200)
      const result = await closedAfter(socket, started, 8000)
      clearInterval(trickle)
      return result
    })()
  ])
  const within = (ms: number, low: number, high: number, what: string): void => { assert.ok(ms >= low && ms <= high, `${what}: closed after ${ms} ms`) }
  within(silent.ms, 1200, 3500, 'a silent handshake-done connection')
  within(trickledHead.ms, 1200, 3500, 'a trickled HTTP/1.1 head')
  assert.match(trickledHead.received, /^HTTP\/1.1 408 .*"error":"request_timeout"/s)
  within(idleKeepAlive.ms, 800, 3000, 'an idle HTTP/1.1 keep-alive connection')
  within(idleH2.ms, 1200, 3500, 'an HTTP/2 connection without the preface')
  within(idleH2AfterStream.ms, 800, 3500, 'an idle HTTP/2 session')
  assert.ok(idleH2AfterStream.goaway, 'the idle HTTP/2 session was told to go (GOAWAY)')
  within(trickledSecondHead.ms, 800, 4500, 'a trickled second head')
  assert.match(trickledSecondHead.received, /HTTP\/1.1 408 /)
  within(trickledHello.ms, 1200, 3500, 'a trickled ClientHello')
})

test('HTTPS: client.bodyIdleTimeout applies to bodies over TLS and over HTTP/2 (408 with its own :status)', async (t) => {
  const s = await httpsSetup(t)
  const { gateway, httpsPort } = await startHttps(t, httpsConfig(s, 'client: { bodyIdleTimeout: 1s }'), { workers: 1 })
  const ca = s.ca.caPem
  const host = 'www.example.com'
  const started = Date.now()
  const sessions: ClientHttp2Session[] = []
  const [overTls, overH2] = await Promise.all([
    (async () => {
      const socket = await tlsSocket(t, httpsPort, host, ca)
      socket.write(`POST / HTTP/1.1\r\nHost: ${host}\r\ncontent-length: 100\r\n\r\n0123456789`)
      return await closedAfter(socket, started, 8000)
    })(),
    (async () => {
      const session = await h2Session(t, httpsPort, host, ca)
      sessions.push(session)
      return await new Promise<{ status: number, body: string, ms: number }>((resolve) => {
        const stream = session.request({ ':method': 'POST', ':path': '/', ':authority': host, 'content-length': '100' }, { endStream: false })
        stream.write('0123456789')
        let status = 0
        let body = ''
        stream.on('response', (headers) => { status = Number(headers[':status']) })
        stream.on('data', (chunk: Buffer) => { body += chunk.toString() })
        // Closed, not only answered: the server resets the stream (the client's side would otherwise stay open).
        stream.on('close', () => { resolve({ status, body, ms: Date.now() - started }) })
        stream.on('error', () => {})
      })
    })()
  ])
  for (const session of sessions) session.destroy()
  assert.match(overTls.received, /^HTTP\/1.1 408 .*"error":"request_timeout"/s)
  assert.ok(overTls.ms > 700 && overTls.ms < 4000, `TLS: closed after ${overTls.ms} ms`)
  assert.equal(overH2.status, 408)
  assert.deepEqual(JSON.parse(overH2.body), { error: 'request_timeout' })
  assert.ok(overH2.ms > 700 && overH2.ms < 4000, `HTTP/2: closed after ${overH2.ms} ms`)
  // Both requests finished as 408 (not 499 when the client finally leaves), nothing left in flight.
  await gateway.waitForLog(() => gateway.logs.filter((line) => line.msg === 'request').length >= 2, 3000)
  assert.deepEqual(gateway.logs.filter((line) => line.msg === 'request').map((line) => line.status), [408, 408])
  assert.match((await send(`${gateway.adminUrl}/metrics`)).body, /^srvgate_http_requests_in_flight 0$/m)
})

test('HTTP/2: CONNECT gets :status 405 with the JSON body; 400 and 431 (hundreds of fields too) come as their own :status; an unknown method is 400; the connection serves on', async (t) => {
  const s = await httpsSetup(t)
  const { gateway, httpsPort } = await startHttps(t, httpsConfig(s, 'client: { maxHeaderCount: 20 }'))
  const host = 'www.example.com'
  const session = await h2Session(t, httpsPort, host, s.ca.caPem)
  const connect = await h2Request(session, { ':method': 'CONNECT', ':authority': 'example.org:443' })
  assert.equal(connect.status, 405)
  assert.deepEqual(JSON.parse(connect.body), { error: 'method_not_allowed' })
  assert.match(String(connect.headers['x-request-id']), /.+/)
  const dotDot = await h2Request(session, { ':path': '/a/../b', ':authority': host })
  assert.equal(dotDot.status, 400)
  assert.deepEqual(JSON.parse(dotDot.body), { error: 'bad_request' })
  const many: Record<string, string> = { ':path': '/', ':authority': host }
  for (let index = 0; index < 30; index++) many[`x-field-${index}`] = 'v'
  const tooMany = await h2Request(session, many)
  assert.equal(tooMany.status, 431)
  assert.deepEqual(JSON.parse(tooMany.body), { error: 'request_headers_too_large' })
  // Far more fields than nghttp2's own default cap (128 pairs): still 431, not a reset.
  const hundreds: Record<string, string> = { ':path': '/', ':authority': host }
  for (let index = 0; index < 300; index++) hundreds[`x-field-${index}`] = 'v'
  assert.equal((await h2Request(session, hundreds)).status, 431)
  // A method token HTTP/1.1's parser would refuse: 400, never sent on.
  const lower = await h2Request(session, { ':method': 'get', ':path': '/', ':authority': host })
  assert.equal(lower.status, 400)
  assert.deepEqual(JSON.parse(lower.body), { error: 'bad_request' })
  assert.equal((await h2Request(session, { ':path': '/', ':authority': host })).status, 200)
  const line = await gateway.waitForLog((entry) => entry.status === 405)
  assert.equal(line.error, 'SG_ERR_METHOD_NOT_ALLOWED')
})

test('HTTPS: a request for a name its connection\'s certificate does not carry gets 421; a name it carries is routed (coalescing kept)', async (t) => {
  const s = await httpsSetup(t)
  const { httpsPort } = await startHttps(t, httpsConfig(s))
  const ca = s.ca.caPem
  // The www certificate carries www and api; the preview one *.preview.example.com.
  const www = await h2Session(t, httpsPort, 'www.example.com', ca)
  const misdirected = await h2Request(www, { ':path': '/', ':authority': 'pr-1.preview.example.com' })
  assert.equal(misdirected.status, 421)
  assert.deepEqual(JSON.parse(misdirected.body), { error: 'misdirected_request' })
  assert.equal((await h2Request(www, { ':path': '/', ':authority': 'www.example.com' })).status, 200)
  // api.example.com is on the same certificate: coalesced, routed (no frontend for it: 404, not 421).
  assert.equal((await h2Request(www, { ':path': '/', ':authority': 'api.example.com' })).status, 404)
  const preview = await h2Session(t, httpsPort, 'pr-1.preview.example.com', ca)
  assert.equal((await h2Request(preview, { ':path': '/', ':authority': 'pr-1.preview.example.com' })).status, 200)
  assert.equal((await h2Request(preview, { ':path': '/', ':authority': 'www.example.com' })).status, 421)
  // HTTP/1.1 over TLS: the Host header, the same rule.
  const socket = await tlsSocket(t, httpsPort, 'www.example.com', ca)
  socket.write('GET / HTTP/1.1\r\nHost: pr-1.preview.example.com\r\n\r\n')
  assert.match(await firstBytes(socket), /^HTTP\/1.1 421 /)
})

test('HTTP/2: SETTINGS_MAX_CONCURRENT_STREAMS is client.maxConcurrentStreams (default 100); an instance never sees more from one connection', async (t) => {
  const s = await httpsSetup(t)
  const defaults = await startHttps(t, httpsConfig(s))
  const session = await h2Session(t, defaults.httpsPort, 'www.example.com', s.ca.caPem)
  assert.equal(session.remoteSettings.maxConcurrentStreams, 100)

  const { httpsPort } = await startHttps(t, httpsConfig(s, 'client: { maxConcurrentStreams: 5 }'))
  let inFlight = 0
  let most = 0
  for (const upstream of s.upstreams) {
    upstream.behaviour = (_request, response) => {
      inFlight++
      most = Math.max(most, inFlight)
      setTimeout(() => { inFlight--; response.end('{}') }, 100)
      return true
    }
  }
  const limited = await h2Session(t, httpsPort, 'www.example.com', s.ca.caPem)
  assert.equal(limited.remoteSettings.maxConcurrentStreams, 5)
  const answers = await Promise.all(Array.from({ length: 20 }, async () => await h2Request(limited, { ':path': '/', ':authority': 'www.example.com' })))
  assert.deepEqual(answers.map((answer) => answer.status), new Array<number>(20).fill(200))
  assert.ok(most <= 5, `${most} requests at once from one connection`)
})

test('client.maxConnectionsPerIp: one address past its cap is closed at accept and counted; other addresses and open connections are served', async (t) => {
  const s = await httpsSetup(t)
  // One process: the caps are per process (with workers, each worker counts its own connections).
  const { gateway } = await startHttps(t, httpsConfig(s, 'client: { maxConnectionsPerIp: 5, headersTimeout: 30s, keepAliveTimeout: 30s }'), { workers: 1 })
  const hold = async (localAddress: string): Promise<Socket> => {
    const socket = netConnect({ host: '127.0.0.1', port: gateway.port, localAddress })
    t.after(() => { socket.destroy() })
    socket.on('error', () => {})
    await new Promise((resolve) => socket.once('connect', resolve))
    return socket
  }
  const held = await Promise.all(Array.from({ length: 5 }, async () => await hold('127.0.0.2')))
  await sleep(200)
  const refused = netConnect({ host: '127.0.0.1', port: gateway.port, localAddress: '127.0.0.2' })
  t.after(() => { refused.destroy() })
  const outcome = await closedAfter(refused, Date.now(), 3000)
  assert.ok(outcome.ms >= 0 && outcome.ms < 1000, `the sixth connection from 127.0.0.2 was closed after ${outcome.ms} ms`)
  // Another address is served; an open connection of the capped address too.
  const other = await send(`${gateway.url}/`, { host: 'www.example.com' })
  assert.equal(other.status, 200)
  const first = held[0] as Socket
  first.write('GET / HTTP/1.1\r\nHost: www.example.com\r\n\r\n')
  assert.match(await firstBytes(first), /^HTTP\/1.1 200/)
  const metrics = (await send(`${gateway.adminUrl}/metrics`)).body
  assert.match(metrics, /^srvgate_client_connections_refused_total\{listener="http",reason="max_connections_per_ip"\} 1$/m)
  // Gone before the gateway drains (a held connection would wait out drain.timeout).
  for (const socket of held) socket.destroy()
})

test('client.maxConnections: with `ulimit -n 1024`, 1,000 held connections do not starve the process: open connections keep getting answers that need new instance connections', async (t) => {
  const s = await httpsSetup(t)
  // Every answer closes its instance connection: each request needs a new connect (a descriptor).
  for (const upstream of s.upstreams) {
    upstream.behaviour = (_request, response) => {
      response.setHeader('connection', 'close')
      response.end('{"ok":true}')
      return true
    }
  }
  const { gateway, httpsPort } = await startHttps(t, httpsConfig(s, 'client: { headersTimeout: 60s, keepAliveTimeout: 60s }'), { workers: 1, fileLimit: 1024 })
  // A client connected before the flood.
  const early = netConnect(gateway.port, '127.0.0.1')
  t.after(() => { early.destroy() })
  await new Promise((resolve) => early.once('connect', resolve))
  const flood: Socket[] = []
  t.after(() => { for (const socket of flood) socket.destroy() })
  let closedEarly = 0
  for (let index = 0; index < 1000; index++) {
    const socket = netConnect(index % 2 === 0 ? gateway.port : httpsPort, '127.0.0.1')
    socket.on('error', () => {})
    socket.once('close', () => { closedEarly++ })
    flood.push(socket)
  }
  await sleep(1500)
  assert.ok(closedEarly > 400, `${closedEarly} of 1,000 held connections refused`)
  for (let index = 0; index < 20; index++) {
    early.write('GET / HTTP/1.1\r\nHost: www.example.com\r\n\r\n')
    const answer = await firstBytes(early)
    assert.match(answer, /^HTTP\/1.1 200/, `request ${index} on the open connection: ${answer.slice(0, 80)}`)
  }
  const refusedAtAccept = closedEarly
  // The flood gone, new connections are admitted again.
  for (const socket of flood) socket.destroy()
  await sleep(300)
  assert.equal((await send(`${gateway.url}/`, { host: 'www.example.com' })).status, 200)
  const metrics = (await send(`${gateway.adminUrl}/metrics`)).body
  const refused = [...metrics.matchAll(/^srvgate_client_connections_refused_total\{listener="https?",reason="max_connections"\} (\d+)$/gm)].reduce((sum, match) => sum + Number(match[1]), 0)
  assert.equal(refused, refusedAtAccept)
})

test('a connection that sends no request byte (a preconnect, a probe) is closed at client.headersTimeout with no answer and no access-log line, on http and https', async (t) => {
  const s = await httpsSetup(t)
  const tls = `tls:\n  default: www.example.com\n  certificates:\n    - { cert: ${s.www.cert}, key: ${s.www.key} }`
  const { gateway, httpsPort } = await startHttps(t, httpsConfig(s, 'client: { headersTimeout: 1s }', tls), { workers: 1 })
  const started = Date.now()
  const plain = netConnect(gateway.port, '127.0.0.1')
  const bare = netConnect(httpsPort, '127.0.0.1')
  const [plainClosed, bareClosed, preconnect] = await Promise.all([
    closedAfter(plain, started, 5000),
    closedAfter(bare, started, 5000),
    (async () => await closedAfter(await tlsSocket(t, httpsPort, 'www.example.com', s.ca.caPem), started, 5000))()
  ])
  for (const [what, closed] of [['plain', plainClosed], ['TCP only, on https', bareClosed], ['TLS preconnect', preconnect]] as const) {
    assert.ok(closed.ms > 700 && closed.ms < 3500, `${what}: closed after ${closed.ms} ms`)
    assert.equal(closed.received, '', `${what}: no answer`)
  }
  await sleep(300)
  assert.deepEqual(gateway.logs.filter((line) => line.msg === 'request'), [], 'no access-log line')
  const metrics = (await send(`${gateway.adminUrl}/metrics`)).body
  assert.match(metrics, /^srvgate_tls_handshake_failures_total\{reason="timeout"\} 1$/m)
  assert.doesNotMatch(metrics, /^srvgate_http_requests_total\{.*status_class="4xx"/m)
})
