/**
 * gRPC through srvgate (issue 24), with @grpc/grpc-js on both sides and the
 * gateway started through its CLI: backends.NAME.protocol h2c and h2 (over
 * tls); calls over the HTTPS listener (HTTP/2 by ALPN) and over plain
 * listen.http with prior-knowledge h2c. Streams both ways, trailers
 * (grpc-status, trailing metadata), a slow reader's every byte, cancellation
 * both ways, deadlines, and gRPC's retry rule.
 */
import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import http2 from 'node:http2'
import { ConsulLikeDnsServer, freePort } from '../helpers/dns-server.js'
import { SpawnedGateway } from '../helpers/spawn-gateway.js'
import { TestCa } from '../helpers/certificates.js'
import { grpc, grpcClient, startGrpcServer, unary, type EchoClientType } from '../helpers/grpc.js'

type Setting = {
  readonly gateway: SpawnedGateway
  readonly httpsPort: number
  readonly ca: Buffer
  readonly dns: ConsulLikeDnsServer
  readonly plain: Awaited<ReturnType<typeof startGrpcServer>>
  readonly secure: Awaited<ReturnType<typeof startGrpcServer>>
  /** A bare node:http2 instance (h2c) behind `raw.example.com`, with the plain gRPC one after it (round-robin). */
  readonly raw: RawInstance
}

/** A node:http2 server doing what a test says with each stream (refuse it, reset it, cancel it midway). */
type RawInstance = { port: number, streams: number, onStream: (stream: http2.ServerHttp2Stream) => void }

async function startRawInstance (t: TestContext): Promise<RawInstance> {
  const server = http2.createServer()
  const raw: RawInstance = { port: 0, streams: 0, onStream: (stream) => { stream.close(http2.constants.NGHTTP2_REFUSED_STREAM) } }
  server.on('stream', (stream) => {
    raw.streams++
    stream.on('error', () => {})
    raw.onStream(stream)
  })
  await new Promise<void>((resolve) => { server.listen(0, '127.0.0.1', resolve) })
  raw.port = (server.address() as { port: number }).port
  t.after(() => { server.close() })
  return raw
}

/** One gRPC message on the wire: uncompressed, a 4-byte length, the bytes. */
function grpcFrame (payload: Buffer): Buffer {
  const head = Buffer.alloc(5)
  head.writeUInt32BE(payload.length, 1)
  return Buffer.concat([head, payload])
}

/** A gRPC instance over h2c, another over TLS (h2), a bare HTTP/2 one, and a gateway with a frontend for each. */
async function grpcBehindGateway (t: TestContext, listenMore = '', more = ''): Promise<Setting> {
  const dns = await ConsulLikeDnsServer.start(t)
  const ca = TestCa.create(t)
  const edge = ca.issue(['grpc.example.com', 'grpcs.example.com', 'raw.example.com'])
  const inner = ca.issue(['grpc.internal'])
  const plain = await startGrpcServer(t, 'plain')
  const secure = await startGrpcServer(t, 'secure', { cert: readFileSync(inner.cert), key: readFileSync(inner.key) })
  dns.setService('_grpc._tcp.service.consul', [{ address: '127.0.0.1', port: plain.port }])
  dns.setService('_grpcs._tcp.service.consul', [{ address: '127.0.0.1', port: secure.port }])
  const raw = await startRawInstance(t)
  dns.setService('_raw._tcp.service.consul', [{ address: '127.0.0.1', port: raw.port }, { address: '127.0.0.1', port: plain.port }])
  const httpsPort = await freePort()
  const config = `
listen: { http: "127.0.0.1:\${PORT}", https: "127.0.0.1:${httpsPort}", admin: "127.0.0.1:\${ADMIN_PORT}"${listenMore} }
tls: { certificates: [ { cert: ${edge.cert}, key: ${edge.key} } ] }
resolvers: { consul: { nameservers: ["${dns.address}"], ttl: { min: 250ms, max: 1s } } }
backends:
  grpc: { protocol: h2c, discovery: { resolver: consul, srv: _grpc._tcp.service.consul } }
  grpcs: { protocol: h2, tls: { serverName: grpc.internal, ca: ${ca.caPath} }, discovery: { resolver: consul, srv: _grpcs._tcp.service.consul } }
  raw: { protocol: h2c, balance: round-robin, outlier: { consecutiveFailures: 2, ejectFor: 1s }, discovery: { resolver: consul, srv: _raw._tcp.service.consul } }
frontends:
  - { name: grpc, match: { host: grpc.example.com }, backend: grpc }
  - { name: grpcs, match: { host: grpcs.example.com }, backend: grpcs }
  - { name: raw, match: { host: raw.example.com }, backend: raw }
${more}`
  const gateway = await SpawnedGateway.start(t, config)
  return { gateway, httpsPort, ca: readFileSync(ca.caPath), dns, plain, secure, raw }
}

test('gRPC over the HTTPS listener to h2c and h2 instances: unary with trailing metadata, a status with its message, every stream shape', async (t) => {
  const s = await grpcBehindGateway(t)
  for (const [host, name] of [['grpc.example.com', 'plain'], ['grpcs.example.com', 'secure']] as const) {
    const client = grpcClient(t, `127.0.0.1:${s.httpsPort}`, host, s.ca)
    const ok = await unary(client, 'echo', 'hello')
    assert.equal(ok.error, null, `${host}: ${String(ok.error)}`)
    assert.equal(ok.value?.toString(), `${name}:hello`)
    assert.deepEqual(ok.trailers?.get('x-served-by'), [name], 'trailing metadata reaches the client')
    const failed = await unary(client, 'fail', 'thing-7')
    assert.equal(failed.error?.code, grpc.status.NOT_FOUND)
    assert.equal(failed.error?.details, 'no such thing: thing-7')
    assert.deepEqual(failed.error?.metadata.get('x-served-by'), [name])
  }
  const client = grpcClient(t, `127.0.0.1:${s.httpsPort}`, 'grpc.example.com', s.ca)
  // Client streaming: 50 messages of 10 KiB.
  const uploaded = await new Promise<string>((resolve, reject) => {
    const call = client.upload?.((error: Error | null, value?: Buffer) => { if (error !== null) reject(error); else resolve(String(value)) }) as grpc.ClientWritableStream<Buffer>
    for (let index = 0; index < 50; index++) call.write(Buffer.alloc(10_240, 120))
    call.end()
  })
  assert.equal(uploaded, `50,${50 * 10_240}`)
  // Bidi, in lock step: each message is sent only after the last one's answer came (a gateway that waited for
  // the end of the request body would hang here).
  const replies = await new Promise<string[]>((resolve, reject) => {
    const call = client.chat?.() as grpc.ClientDuplexStream<Buffer, Buffer>
    const got: string[] = []
    call.on('data', (chunk: Buffer) => {
      got.push(chunk.toString())
      if (got.length < 5) call.write(Buffer.from(`m${got.length}`))
      else call.end()
    })
    call.on('error', reject)
    call.on('status', (status: grpc.StatusObject) => { if (status.code === grpc.status.OK) resolve(got) })
    call.write(Buffer.from('m0'))
  })
  assert.deepEqual(replies, ['re:m0', 're:m1', 're:m2', 're:m3', 're:m4'])
  await gatewayIsWell(s)
})

test('gRPC server streaming to a slow reader: every message arrives before the status (undici\'s HTTP/2 client would drop what it held when the trailers came)', async (t) => {
  const s = await grpcBehindGateway(t)
  const client = grpcClient(t, `127.0.0.1:${s.httpsPort}`, 'grpc.example.com', s.ca)
  const received = await new Promise<{ messages: number, bytes: number, code: number }>((resolve, reject) => {
    const call = client.download?.(Buffer.from('40,16384')) as grpc.ClientReadableStream<Buffer>
    let messages = 0
    let bytes = 0
    call.on('data', (chunk: Buffer) => {
      messages++
      bytes += chunk.length
      // Read slowly: the gateway's answer to us backs up while the instance has long finished.
      if (messages % 5 === 0) {
        call.pause()
        setTimeout(() => { call.resume() }, 100)
      }
    })
    let code = -1
    call.on('error', reject)
    // grpc-js tells the status as soon as it comes, before the messages still buffered: count at the end.
    call.on('status', (status: grpc.StatusObject) => { code = status.code })
    call.on('end', () => { resolve({ messages, bytes, code }) })
  })
  assert.deepEqual(received, { messages: 40, bytes: 40 * 16_384, code: grpc.status.OK })
})

/** The gateway is still up and answering (no crash, no hang). */
async function gatewayIsWell (s: Setting): Promise<void> {
  const answer = await fetch(`http://127.0.0.1:${s.gateway.adminPort}/healthz`)
  assert.equal(answer.status, 200)
}

/** A call made as a bare HTTP/2 client would (no deadline of the client's own), over h2c to listen.http. */
async function bareCall (port: number, authority: string, path: string, headers: http2.OutgoingHttpHeaders = {}): Promise<{ headers: http2.IncomingHttpHeaders, trailers: http2.IncomingHttpHeaders, body: Buffer, ms: number, rstCode: number | undefined }> {
  const session = http2.connect(`http://127.0.0.1:${port}`)
  session.on('error', () => {})
  const started = Date.now()
  try {
    return await new Promise((resolve, reject) => {
      const stream = session.request({ ':method': 'POST', ':path': path, ':authority': authority, 'content-type': 'application/grpc', te: 'trailers', ...headers })
      let answer: http2.IncomingHttpHeaders = {}
      let trailers: http2.IncomingHttpHeaders = {}
      const chunks: Buffer[] = []
      stream.on('response', (received) => { answer = received })
      stream.on('trailers', (received) => { trailers = received })
      stream.on('data', (chunk: Buffer) => chunks.push(chunk))
      stream.on('error', () => {})
      stream.on('close', () => { resolve({ headers: answer, trailers, body: Buffer.concat(chunks), ms: Date.now() - started, rstCode: stream.rstCode }) })
      setTimeout(() => { reject(new Error('no end within 10 s')) }, 10_000).unref()
      stream.end(grpcFrame(Buffer.from('x')))
    })
  } finally {
    session.close()
  }
}

test('cancellation both ways: a client that cancels cancels the instance\'s call; an instance that resets midway ends the client\'s call with a status (INTERNAL, gRPC\'s reading of RST_STREAM INTERNAL_ERROR), after the messages it had sent', async (t) => {
  const s = await grpcBehindGateway(t)
  const client = grpcClient(t, `127.0.0.1:${s.httpsPort}`, 'grpc.example.com', s.ca)
  const outcome = await new Promise<grpc.ServiceError | null>((resolve) => {
    const call = client.hang?.(Buffer.from('wait'), (error: grpc.ServiceError | null) => { resolve(error) }) as grpc.ClientUnaryCall
    setTimeout(() => { call.cancel() }, 300)
  })
  assert.equal(outcome?.code, grpc.status.CANCELLED)
  await until(() => s.plain.seen.cancelled === 1, 'the instance saw its call cancelled')
  // The instance answers one message, then RST_STREAM(INTERNAL_ERROR) (Node's server cannot reset with CANCEL
  // without ending the stream first; proxy/grpc.ts's table maps CANCEL to CANCELLED, unit-tested).
  s.raw.onStream = (stream) => {
    stream.respond({ ':status': 200, 'content-type': 'application/grpc' })
    stream.write(grpcFrame(Buffer.from('first')), () => { setTimeout(() => { stream.destroy(new Error('instance gave up')) }, 100) })
  }
  const rawClient = grpcClient(t, `127.0.0.1:${s.httpsPort}`, 'raw.example.com', s.ca)
  const download = async (): Promise<{ messages: string[], code: number, details: string }> => await new Promise((resolve) => {
    const call = rawClient.download?.(Buffer.from('1,1')) as grpc.ClientReadableStream<Buffer>
    const messages: string[] = []
    call.on('data', (chunk: Buffer) => messages.push(chunk.toString()))
    call.on('error', () => {})
    call.on('status', (status: grpc.StatusObject) => { setTimeout(() => { resolve({ messages, code: status.code, details: status.details }) }, 50) })
  })
  // raw.example.com's backend takes turns between the bare instance and the gRPC one: the second call of two reaches the bare one.
  let streamed = await download()
  if (streamed.messages[0] === 'a') streamed = await download()
  assert.deepEqual(streamed.messages, ['first'])
  assert.equal(streamed.code, grpc.status.INTERNAL, streamed.details)
  assert.match(streamed.details, /srvgate/, 'the gateway said it, in trailers: not a connection cut')
  await gatewayIsWell(s)
})

test('grpc-timeout bounds the call at the gateway: DEADLINE_EXCEEDED when it passes, the instance\'s call cancelled, the instance not blamed; a malformed one is ignored', async (t) => {
  const s = await grpcBehindGateway(t)
  for (let index = 0; index < 4; index++) {
    const answer = await bareCall(s.gateway.port, 'grpc.example.com', '/test.Echo/Hang', { 'grpc-timeout': '300m' })
    assert.equal(answer.trailers['grpc-status'], '4', JSON.stringify(answer))
    assert.match(String(answer.trailers['grpc-message']), /deadline_exceeded/)
    assert.ok(answer.ms >= 250 && answer.ms < 5000, `answered after ${answer.ms} ms`)
  }
  await until(() => s.plain.seen.cancelled === 4, 'the instance saw each call cancelled')
  // Four deadlines in a row did not eject the only instance (outlier.consecutiveFailures is 5 by default, but none counted).
  const ok = await bareCall(s.gateway.port, 'grpc.example.com', '/test.Echo/Echo', { 'grpc-timeout': '5S' })
  assert.equal(ok.trailers['grpc-status'], '0', JSON.stringify({ ...ok, body: ok.body.toString() }))
  const state = await (await fetch(`http://127.0.0.1:${s.gateway.adminPort}/admin/state`)).text()
  assert.doesNotMatch(state, /"ejected":true/)
  // A malformed grpc-timeout sets no deadline at the gateway: it goes on, and the instance judges it (grpc-js refuses it).
  const malformed = await bareCall(s.gateway.port, 'grpc.example.com', '/test.Echo/Echo', { 'grpc-timeout': '1x' })
  assert.doesNotMatch(String(malformed.trailers['grpc-message']), /srvgate/)
  assert.equal(s.plain.seen.calls, 5 + (malformed.trailers['grpc-status'] === '0' ? 1 : 0))
})

test('gRPC\'s retry rule: a REFUSED_STREAM goes to the next instance (nothing was processed); a stream reset after the request is not retried, and an instance that keeps resetting is ejected', async (t) => {
  const s = await grpcBehindGateway(t)
  const client = grpcClient(t, `127.0.0.1:${s.httpsPort}`, 'raw.example.com', s.ca)
  // The raw instance refuses every stream: each call lands on the plain one, round-robin or not.
  for (let index = 0; index < 4; index++) {
    const answer = await unary(client, 'echo', `r${index}`)
    assert.equal(answer.error, null, String(answer.error))
    assert.equal(answer.value?.toString(), `plain:r${index}`)
  }
  assert.ok(s.raw.streams >= 1, 'the raw instance was asked, and refused')
  // Refusing twice ejected it (ejectFor 1 s): let it come back.
  await new Promise((resolve) => setTimeout(resolve, 1300))
  // Now it reads the request and resets: the call fails (a retry could run it twice), until the instance is ejected again (2 s).
  s.raw.onStream = (stream) => {
    stream.resume()
    stream.on('end', () => { stream.close(http2.constants.NGHTTP2_INTERNAL_ERROR) })
  }
  const asked = s.raw.streams
  const outcomes: Array<number | null> = []
  for (let index = 0; index < 8; index++) outcomes.push((await unary(client, 'echo', `e${index}`)).error?.code ?? null)
  const failed = outcomes.filter((code) => code !== null)
  assert.ok(failed.length >= 1 && failed.length <= 2, `two resets eject it: ${JSON.stringify(outcomes)}`)
  assert.ok(failed.every((code) => code === grpc.status.UNAVAILABLE || code === grpc.status.INTERNAL), JSON.stringify(outcomes))
  assert.equal(s.raw.streams - asked, failed.length, 'each failed call reached the raw instance once: no retry')
  assert.deepEqual(outcomes.slice(-4), [null, null, null, null], 'ejected: the last calls all go to the plain instance')
})

test('listen.h2c: false leaves listen.http to HTTP/1.x: a prior-knowledge client is refused, HTTP/1.1 served', async (t) => {
  const s = await grpcBehindGateway(t, ', h2c: false')
  const client = grpcClient(t, `127.0.0.1:${s.gateway.port}`, 'grpc.example.com')
  const refused = await unary(client, 'echo', 'x', { deadline: Date.now() + 3000 })
  assert.equal(refused.error?.code, grpc.status.UNAVAILABLE, String(refused.error))
  assert.equal(s.plain.seen.calls, 0)
  const answer = await fetch(`http://127.0.0.1:${s.gateway.port}/x`, { headers: { host: 'nowhere.example.com' } })
  assert.equal(answer.status, 404)
})

/** Poll `predicate` for up to 5 s. */
async function until (predicate: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 5000
  while (!predicate()) {
    if (Date.now() > deadline) assert.fail(`not within 5 s: ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 25))
  }
}

export { type EchoClientType }

test('gRPC over plain listen.http with prior-knowledge h2c, beside HTTP/1.1 on the same port, with two workers', async (t) => {
  const s = await grpcBehindGateway(t, '', 'workers: 2')
  const client = grpcClient(t, `127.0.0.1:${s.gateway.port}`, 'grpcs.example.com')
  const ok = await unary(client, 'echo', 'plain-text')
  assert.equal(ok.error, null, String(ok.error))
  assert.equal(ok.value?.toString(), 'secure:plain-text')
  // Several channels: their connections land on both workers.
  for (let index = 0; index < 4; index++) {
    const another = grpcClient(t, `127.0.0.1:${s.gateway.port}`, 'grpc.example.com')
    assert.equal((await unary(another, 'echo', `w${index}`)).value?.toString(), `plain:w${index}`)
  }
  // HTTP/1.1 on the same port as before.
  const answer = await fetch(`http://127.0.0.1:${s.gateway.port}/x`, { headers: { host: 'nowhere.example.com' } })
  assert.equal(answer.status, 404)
  // The h2c call is logged as HTTP/2 over plain HTTP.
  await s.gateway.waitForLog((line) => line.frontend === 'grpcs' && String(line.httpVersion).startsWith('2') && line.path === '/test.Echo/Echo')
})
