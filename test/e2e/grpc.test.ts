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
}

/** A gRPC instance over h2c, another over TLS (h2), and a gateway with a frontend for each; `more` is added to the file. */
async function grpcBehindGateway (t: TestContext, more = '', backendMore = ''): Promise<Setting> {
  const dns = await ConsulLikeDnsServer.start(t)
  const ca = TestCa.create(t)
  const edge = ca.issue(['grpc.example.com', 'grpcs.example.com'])
  const inner = ca.issue(['grpc.internal'])
  const plain = await startGrpcServer(t, 'plain')
  const secure = await startGrpcServer(t, 'secure', { cert: readFileSync(inner.cert), key: readFileSync(inner.key) })
  dns.setService('_grpc._tcp.service.consul', [{ address: '127.0.0.1', port: plain.port }])
  dns.setService('_grpcs._tcp.service.consul', [{ address: '127.0.0.1', port: secure.port }])
  const httpsPort = await freePort()
  const config = `
listen: { http: "127.0.0.1:\${PORT}", https: "127.0.0.1:${httpsPort}", admin: "127.0.0.1:\${ADMIN_PORT}" }
tls: { certificates: [ { cert: ${edge.cert}, key: ${edge.key} } ] }
resolvers: { consul: { nameservers: ["${dns.address}"], ttl: { min: 250ms, max: 1s } } }
backends:
  grpc: { protocol: h2c, discovery: { resolver: consul, srv: _grpc._tcp.service.consul }${backendMore} }
  grpcs: { protocol: h2, tls: { serverName: grpc.internal, ca: ${ca.caPath} }, discovery: { resolver: consul, srv: _grpcs._tcp.service.consul } }
frontends:
  - { name: grpc, match: { host: grpc.example.com }, backend: grpc }
  - { name: grpcs, match: { host: grpcs.example.com }, backend: grpcs }
${more}`
  const gateway = await SpawnedGateway.start(t, config)
  return { gateway, httpsPort, ca: readFileSync(ca.caPath), dns, plain, secure }
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

export { http2, type EchoClientType }

test('gRPC over plain listen.http with prior-knowledge h2c, beside HTTP/1.1 on the same port; listen.h2c: false refuses it', async (t) => {
  const s = await grpcBehindGateway(t)
  const client = grpcClient(t, `127.0.0.1:${s.gateway.port}`, 'grpcs.example.com')
  const ok = await unary(client, 'echo', 'plain-text')
  assert.equal(ok.error, null, String(ok.error))
  assert.equal(ok.value?.toString(), 'secure:plain-text')
  // HTTP/1.1 on the same port as before.
  const answer = await fetch(`http://127.0.0.1:${s.gateway.port}/x`, { headers: { host: 'nowhere.example.com' } })
  assert.equal(answer.status, 404)
  // The h2c call is logged as HTTP/2 over plain HTTP.
  await s.gateway.waitForLog((line) => line.frontend === 'grpcs' && String(line.httpVersion).startsWith('2') && line.path === '/test.Echo/Echo')
})
