/**
 * edge/h2c-listener.ts on a real http.Server: HTTP/2's preface goes to the
 * h2c server, anything else to Node's HTTP/1.1 parser, bytes included; a
 * connection that sends part of the preface and stops is closed at
 * client.headersTimeout; and a client that drops its connection ends every
 * stream of it (Node's HTTP/1.1 server accepts half-open: one stream a
 * connection used to stay open, an attack found).
 */
import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import http2 from 'node:http2'
import { createServer, type Server } from 'node:http'
import { connect } from 'node:net'
import { H2cListener } from '../../../src/edge/h2c-listener.js'
import { systemClock } from '../../../src/util/clock.js'

async function listening (t: TestContext, onH2: (response: http2.Http2ServerResponse) => void, headersTimeoutMs = 300): Promise<{ http: Server, port: number }> {
  const http = createServer((_request, response) => { response.end('http/1.1') })
  const listener = new H2cListener(http, {
    onRequest: (_request, response) => { onH2(response) },
    limits: () => ({ headersTimeoutMs, keepAliveTimeoutMs: 5000, sendTimeoutMs: 10_000, maxConcurrentStreams: 100, maxHeaderBytes: 16_384, maxHeaderCount: 100 }),
    clock: systemClock
  })
  await new Promise<void>((resolve) => { http.listen(0, '127.0.0.1', resolve) })
  t.after(() => { listener.destroyAll(); http.close() })
  return { http, port: (http.address() as { port: number }).port }
}

test('HTTP/2 with prior knowledge and HTTP/1.1 on one port; a client that drops its connection ends every stream of it', async (t) => {
  let closed = 0
  // Timers far off: nothing but the client's leaving may end the streams.
  const { port } = await listening(t, (response) => { response.on('close', () => { closed++ }) }, 10_000)
  assert.equal(await (await fetch(`http://127.0.0.1:${port}/`)).text(), 'http/1.1')
  const session = http2.connect(`http://127.0.0.1:${port}`)
  session.on('error', () => {})
  for (let index = 0; index < 3; index++) session.request({ ':method': 'POST', ':path': '/' }, { endStream: true }).on('error', () => {})
  await new Promise((resolve) => setTimeout(resolve, 300))
  session.destroy()
  const deadline = Date.now() + 500
  while (closed < 3 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20))
  assert.equal(closed, 3)
})

test('a part of the preface, then nothing: closed at client.headersTimeout, without an answer', async (t) => {
  const { port } = await listening(t, () => {})
  const socket = connect(port, '127.0.0.1')
  t.after(() => { socket.destroy() })
  let received = ''
  socket.on('data', (chunk: Buffer) => { received += chunk.toString('latin1') })
  socket.write('PRI * HTTP/2.0\r\n')
  const started = Date.now()
  await new Promise((resolve) => socket.once('close', resolve))
  const ms = Date.now() - started
  assert.ok(ms >= 250 && ms < 2000, `closed after ${ms} ms`)
  assert.equal(received, '')
})

test('an h2c session lives under the connection\'s timer: idle past client.keepAliveTimeout, it gets GOAWAY and closes', async (t) => {
  const http = createServer(() => {})
  const listener = new H2cListener(http, {
    onRequest: (_request, response) => { response.end('h2c') },
    limits: () => ({ headersTimeoutMs: 5000, keepAliveTimeoutMs: 300, sendTimeoutMs: 10_000, maxConcurrentStreams: 100, maxHeaderBytes: 16_384, maxHeaderCount: 100 }),
    clock: systemClock
  })
  await new Promise<void>((resolve) => { http.listen(0, '127.0.0.1', resolve) })
  t.after(() => { listener.destroyAll(); http.close() })
  const session = http2.connect(`http://127.0.0.1:${(http.address() as { port: number }).port}`)
  session.on('error', () => {})
  let wentAway = false
  session.on('goaway', () => { wentAway = true })
  const answered = await new Promise<string>((resolve) => {
    let body = ''
    const stream = session.request({ ':path': '/' })
    stream.on('data', (chunk: Buffer) => { body += chunk.toString() })
    stream.on('end', () => { resolve(body) })
  })
  assert.equal(answered, 'h2c')
  const started = Date.now()
  await new Promise((resolve) => session.once('close', resolve))
  assert.equal(wentAway, true)
  assert.ok(Date.now() - started < 2500, 'closed at keepAliveTimeout (+ its GOAWAY grace), not left open')
})
