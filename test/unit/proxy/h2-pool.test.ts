/**
 * proxy/h2-pool.ts against real node:http2 servers on loopback: why it
 * exists (undici's HTTP/2 client loses the bytes it holds when trailers
 * arrive under back-pressure; this test fails the day undici stops doing so),
 * every byte and the trailers under back-pressure, streams multiplexed within
 * the peer's limit and maxSessions, refused streams and connect failures in
 * retry-policy's words, timeouts, cancellation, and the fields HTTP/2 forbids.
 */
import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import http2 from 'node:http2'
import { createServer as createNetServer } from 'node:net'
import { Pool, buildConnector } from 'undici'
import { H2Code, H2Pool, type LegacyHandler } from '../../../src/proxy/h2-pool.js'
import { H2Exchange } from '../../../src/proxy/h2-exchange.js'
import { classifyError } from '../../../src/proxy/retry-policy.js'
import { systemClock } from '../../../src/util/clock.js'

const BODY = 100_000

async function h2Server (t: TestContext, onStream: (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders) => void, settings: http2.Settings = {}): Promise<string> {
  const server = http2.createServer({ settings })
  server.on('stream', (stream, headers) => {
    stream.on('error', () => {})
    onStream(stream, headers)
  })
  await new Promise<void>((resolve) => { server.listen(0, '127.0.0.1', resolve) })
  t.after(() => { server.close() })
  return `http://127.0.0.1:${(server.address() as { port: number }).port}`
}

/** An answer of BODY bytes that fits the flow-control window, then trailers: they arrive while the client is paused. */
function bodyThenTrailers (stream: http2.ServerHttp2Stream): void {
  stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true })
  stream.on('wantTrailers', () => { stream.sendTrailers({ 'grpc-status': '0', 'x-done': 'yes' }) })
  stream.end(Buffer.alloc(BODY, 97))
}

type Outcome = { status?: number, headers?: string[], bytes: number, trailers?: string[] | null, error?: Error & { code?: string } }

/** A handler that pauses at its first chunk for 200 ms (back-pressure), and reports how it ended. */
function slowHandler (abortAfterConnect = false): { handler: LegacyHandler, done: Promise<Outcome> } {
  const outcome: Outcome = { bytes: 0 }
  let resume: () => void = () => {}
  let settle: (value: Outcome) => void = () => {}
  const done = new Promise<Outcome>((resolve) => { settle = resolve })
  let paused = false
  const handler: LegacyHandler = {
    onConnect: (abort) => { if (abortAfterConnect) setTimeout(() => { abort() }, 100) },
    onHeaders: (status, headers, resumeIt) => {
      outcome.status = status
      outcome.headers = headers.map((part) => part.toString('latin1'))
      resume = resumeIt
      return true
    },
    onData: (chunk) => {
      outcome.bytes += chunk.length
      if (paused) return true
      paused = true
      setTimeout(() => { resume() }, 200)
      return false
    },
    onComplete: (trailers) => { outcome.trailers = trailers; settle(outcome) },
    onError: (error) => { outcome.error = error; settle(outcome) }
  }
  return { handler, done }
}

function pool (t: TestContext, origin: string, more: Partial<ConstructorParameters<typeof H2Pool>[1]> = {}): H2Pool {
  const created = new H2Pool(origin, { connectTimeoutMs: 1000, maxSessions: 4, idleTimeoutMs: 4000, clock: systemClock, ...more })
  t.after(async () => { await created.destroy() })
  return created
}

test('undici\'s HTTP/2 client still drops the bytes it holds when trailers arrive while paused: the reason h2-pool.ts exists (when this fails, undici is fixed: consider it again)', async (t) => {
  const origin = await h2Server(t, bodyThenTrailers)
  const base = buildConnector({})
  const undiciPool = new Pool(origin, {
    allowH2: true,
    connect: (options, callback) => { base(options, (error, socket) => { if (socket !== null) (socket as { alpnProtocol?: string }).alpnProtocol = 'h2'; callback(error as Error, socket as never) }) }
  })
  t.after(async () => { await undiciPool.destroy() })
  const { handler, done } = slowHandler()
  undiciPool.dispatch({ method: 'POST', path: '/', body: 'x' }, handler as never)
  const outcome = await done
  assert.ok(outcome.bytes < BODY, `undici delivered ${outcome.bytes} of ${BODY} bytes before completing`)
})

test('every byte, then the trailers, under back-pressure (a pause of the client longer than bodyTimeout is not the instance stalling); fields HTTP/2 forbids left out, Host as :authority, TE only as trailers', async (t) => {
  let seen: http2.IncomingHttpHeaders = {}
  const origin = await h2Server(t, (stream, headers) => {
    seen = headers
    bodyThenTrailers(stream)
  })
  const { handler, done } = slowHandler()
  pool(t, origin).dispatch({ method: 'POST', path: '/svc/M', body: 'hello', bodyTimeout: 100, headers: { host: 'grpc.example.com', connection: 'keep-alive', 'keep-alive': '5', 'transfer-encoding': 'chunked', upgrade: 'x', te: 'trailers, deflate', 'x-kept': 'yes' } }, handler)
  const outcome = await done
  assert.equal(outcome.error, undefined)
  assert.equal(outcome.status, 200)
  assert.equal(outcome.bytes, BODY)
  assert.deepEqual(outcome.trailers, ['grpc-status', '0', 'x-done', 'yes'])
  assert.equal(seen[':authority'], 'grpc.example.com')
  assert.equal(seen[':path'], '/svc/M')
  assert.equal(seen.te, 'trailers')
  assert.equal(seen['x-kept'], 'yes')
  for (const name of ['connection', 'keep-alive', 'transfer-encoding', 'upgrade', 'host']) assert.equal(seen[name], undefined, name)
})

test('streams share a session up to the peer\'s SETTINGS_MAX_CONCURRENT_STREAMS, then more sessions up to maxSessions, then they wait', async (t) => {
  const held: http2.ServerHttp2Stream[] = []
  const origin = await h2Server(t, (stream) => { held.push(stream) }, { maxConcurrentStreams: 2 })
  const h2 = pool(t, origin, { maxSessions: 2 })
  const outcomes = Array.from({ length: 6 }, () => slowHandler())
  // One first, so the session has the peer's settings before the rest come.
  h2.dispatch({ method: 'GET', path: '/' }, (outcomes[0] as { handler: LegacyHandler }).handler)
  while (held.length < 1) await new Promise((resolve) => setTimeout(resolve, 10))
  for (const { handler } of outcomes.slice(1)) h2.dispatch({ method: 'GET', path: '/' }, handler)
  while (held.length < 4) await new Promise((resolve) => setTimeout(resolve, 10))
  await new Promise((resolve) => setTimeout(resolve, 50))
  assert.deepEqual(h2.stats, { connected: 2, running: 4, pending: 2 })
  for (const stream of held.splice(0)) { stream.respond({ ':status': 204 }, { endStream: true }) }
  while (held.length < 2) await new Promise((resolve) => setTimeout(resolve, 10))
  for (const stream of held) stream.respond({ ':status': 204 }, { endStream: true })
  const statuses = await Promise.all(outcomes.map(async ({ done }) => (await done).status))
  assert.deepEqual(statuses, [204, 204, 204, 204, 204, 204])
})

test('a refused stream, a refused connection and a connect that never completes are "nothing was sent" for retry-policy; a reset after the request is a reset', async (t) => {
  const refusing = await h2Server(t, (stream) => { stream.close(http2.constants.NGHTTP2_REFUSED_STREAM) })
  const refused = slowHandler()
  pool(t, refusing).dispatch({ method: 'POST', path: '/', body: 'x' }, refused.handler)
  assert.equal((await refused.done).error?.code, H2Code.REFUSED_STREAM)
  assert.equal(classifyError((await refused.done).error), 'connect-failure')

  const resetting = await h2Server(t, (stream) => { stream.destroy(new Error('gave up')) })
  const reset = slowHandler()
  pool(t, resetting).dispatch({ method: 'POST', path: '/', body: 'x' }, reset.handler)
  assert.equal((await reset.done).error?.code, H2Code.STREAM_RESET)
  assert.equal(classifyError((await reset.done).error), 'reset')

  // A closed port: every request waiting for the connection fails with it.
  const closed = await new Promise<number>((resolve) => {
    const server = createNetServer()
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number }
      server.close(() => { resolve(port) })
    })
  })
  const h2 = pool(t, `http://127.0.0.1:${closed}`)
  const waiting = [slowHandler(), slowHandler()]
  for (const { handler } of waiting) h2.dispatch({ method: 'GET', path: '/' }, handler)
  for (const { done } of waiting) assert.equal(classifyError((await done).error), 'connect-failure')

  // TLS to a server that never answers the handshake: the connect timeout.
  const silent = createNetServer(() => {})
  await new Promise<void>((resolve) => { silent.listen(0, '127.0.0.1', resolve) })
  t.after(() => { silent.close() })
  const hanging = pool(t, `https://127.0.0.1:${(silent.address() as { port: number }).port}`, { connectTimeoutMs: 200, tls: { servername: 'x.internal', rejectUnauthorized: true } })
  const timedOut = slowHandler()
  hanging.dispatch({ method: 'GET', path: '/' }, timedOut.handler)
  assert.equal((await timedOut.done).error?.code, H2Code.CONNECT_TIMEOUT)
  assert.equal(classifyError((await timedOut.done).error), 'connect-failure')
})

test('headers and body timeouts; an abort cancels the instance\'s stream (RST_STREAM CANCEL); an upgrade is refused', async (t) => {
  let cancelled = 0
  const origin = await h2Server(t, (stream, headers) => {
    stream.on('close', () => { if (stream.rstCode === http2.constants.NGHTTP2_CANCEL) cancelled++ })
    if (headers[':path'] === '/stall-body') {
      stream.respond({ ':status': 200 })
      stream.write('a')
    }
  })
  const h2 = pool(t, origin)
  const noHeaders = slowHandler()
  h2.dispatch({ method: 'GET', path: '/silent', headersTimeout: 150 }, noHeaders.handler)
  assert.equal((await noHeaders.done).error?.code, H2Code.HEADERS_TIMEOUT)
  const stalled = slowHandler()
  h2.dispatch({ method: 'GET', path: '/stall-body', bodyTimeout: 400 }, stalled.handler)
  assert.equal((await stalled.done).error?.code, H2Code.BODY_TIMEOUT)
  const aborted = slowHandler(true)
  h2.dispatch({ method: 'GET', path: '/silent' }, aborted.handler)
  assert.equal((await aborted.done).error?.code, H2Code.STREAM_CANCELLED)
  while (cancelled < 3) await new Promise((resolve) => setTimeout(resolve, 10))
  assert.throws(() => h2.dispatch({ method: 'GET', path: '/', upgrade: 'websocket' }, slowHandler().handler), { code: H2Code.UNSUPPORTED })
})

test('an instance whose SETTINGS take no stream (max concurrent streams 0) fails the waiting requests as refused, on one connection, not one more', async (t) => {
  let connections = 0
  const origin = await h2Server(t, () => {}, { maxConcurrentStreams: 0 })
  const h2 = pool(t, origin, { maxSessions: 8 })
  h2.on('connect', () => { connections++ })
  const waiting = [slowHandler(), slowHandler(), slowHandler()]
  for (const { handler } of waiting) h2.dispatch({ method: 'GET', path: '/' }, handler)
  for (const { done } of waiting) assert.equal((await done).error?.code, H2Code.REFUSED_STREAM)
  assert.equal(connections, 1)
})

test('an instance\'s GOAWAY that leaves open streams out refuses them at once (retried elsewhere); an answer shorter than its content-length is cut, not complete; a stream let go at once meets a GOAWAY(INTERNAL_ERROR) without an unhandled error', async (t) => {
  // Node's server never sends a GOAWAY below a stream it opened: a server of raw frames does (SETTINGS, then its ACK and GOAWAY last-stream 0).
  const framing = createNetServer((socket) => {
    socket.on('error', () => {})
    socket.write(Buffer.from('000000040000000000', 'hex'))
    socket.once('data', () => { setTimeout(() => { socket.write(Buffer.from('000000040100000000' + '000008070000000000' + '0000000000000000', 'hex')) }, 100) })
  })
  await new Promise<void>((resolve) => { framing.listen(0, '127.0.0.1', resolve) })
  t.after(() => { framing.close() })
  const origin = await h2Server(t, (stream, headers) => {
    if (headers[':path'] === '/short') {
      stream.respond({ ':status': 200, 'content-length': '1000' })
      stream.end('13 bytes only')
    }
  })
  const started = Date.now()
  const left = slowHandler()
  pool(t, `http://127.0.0.1:${(framing.address() as { port: number }).port}`).dispatch({ method: 'POST', path: '/goaway', body: 'x', headersTimeout: 5000 }, left.handler)
  assert.equal((await left.done).error?.code, H2Code.REFUSED_STREAM)
  assert.ok(Date.now() - started < 2000, 'not left to the headers timeout')
  const short = slowHandler()
  pool(t, origin).dispatch({ method: 'GET', path: '/short' }, short.handler)
  const cut = await short.done
  assert.equal(cut.error?.code, H2Code.STREAM_RESET)
  assert.equal(cut.trailers, undefined, 'never completed')
  // A stream let go inside onConnect (its client already gone) can still be failed by its session (a GOAWAY with an
  // error, as an attack's rapid resets drew from a Node instance): its 'error' is listened to, or the process would end.
  const session = http2.connect(origin)
  t.after(() => { session.destroy() })
  session.on('error', () => {})
  const stream = session.request({ ':path': '/', ':method': 'GET' })
  new H2Exchange(stream, { onConnect: (abort) => { abort() }, onError: () => {} }, { method: 'GET', path: '/' }).begin(undefined)
  assert.doesNotThrow(() => stream.emit('error', Object.assign(new Error('Session closed with error code 2'), { code: 'ERR_HTTP2_SESSION_ERROR' })))
  await new Promise((resolve) => setTimeout(resolve, 100))
})
