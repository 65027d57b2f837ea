/**
 * HTTPS at the edge (issue 10), through the CLI, with certificates made by a
 * test CA (openssl) and real clients: curl (--http2, --resolve, --cacert),
 * Node's TLS and HTTP/2 clients, a WebSocket client.
 */
import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { copyFileSync, mkdirSync, mkdtempSync, renameSync, rmSync, symlinkSync, writeFileSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { connect as http2Connect } from 'node:http2'
import { createServer as createHttpsServer } from 'node:https'
import { connect as tlsConnect, type PeerCertificate } from 'node:tls'
import { join } from 'node:path'
import { WebSocket, WebSocketServer } from 'ws'
import { Upstream } from '../helpers/upstream.js'
import type { Issued } from '../helpers/certificates.js'
import { srvgate } from '../helpers/cli.js'
import { curl, send } from '../helpers/http.js'
import { replaceEveryInstance } from '../helpers/rolling.js'
import { WEB, httpsConfig, httpsSetup, startHttps, type HttpsSetup } from '../helpers/https.js'


const sleep = async (ms: number) => { await new Promise((resolve) => setTimeout(resolve, ms)) }

type Setup = HttpsSetup
const setup = httpsSetup

function config (s: Setup, tls: string, listen?: string): string {
  return httpsConfig(s, '', `tls:\n${tls}`, listen)
}

const certificates = (...issued: Issued[]): string => `  certificates:\n${issued.map((item) => `    - { cert: ${item.cert}, key: ${item.key} }`).join('\n')}`

const startTls = startHttps

/** The certificate a TLS handshake with `servername` gets (undefined: none; the handshake's alert in `error`). */
async function handshake (port: number, servername: string | undefined, ca: string): Promise<{ cert?: PeerCertificate, alpn?: string | false | null, error?: string }> {
  return await new Promise((resolve) => {
    const socket = tlsConnect({ host: '127.0.0.1', port, servername, ca, ALPNProtocols: ['h2', 'http/1.1'], rejectUnauthorized: false })
    socket.once('secureConnect', () => {
      resolve({ cert: socket.getPeerCertificate(), alpn: socket.alpnProtocol })
      socket.destroy()
    })
    socket.once('error', (error) => { resolve({ error: error.message }) })
  })
}

/** One HTTP/2 request; its status, headers and body. */
async function h2Get (port: number, authority: string, ca: string, path = '/'): Promise<{ status: number, headers: Record<string, unknown>, body: string }> {
  const session = http2Connect(`https://${authority}:${port}`, { ca, servername: authority, host: '127.0.0.1' } as never)
  try {
    return await new Promise((resolve, reject) => {
      const stream = session.request({ ':path': path, ':authority': authority })
      let body = ''
      let headers: Record<string, unknown> = {}
      stream.on('response', (received) => { headers = received })
      stream.on('data', (chunk: Buffer) => { body += chunk.toString() })
      stream.on('end', () => { resolve({ status: Number(headers[':status']), headers, body }) })
      stream.on('error', reject)
      stream.end()
    })
  } finally {
    session.close()
  }
}

/** A bounded HTTP/2 load: `streams` requests at a time on one session (bounded by count and by `until`). */
async function h2Load (t: TestContext, port: number, authority: string, ca: string, options: { streams: number, until: () => boolean, maxRequests?: number }): Promise<{ total: number, failures: string[], byInstance: Map<string, number> }> {
  const session = http2Connect(`https://${authority}:${port}`, { ca, host: '127.0.0.1', servername: authority } as never)
  t.after(() => { session.close() })
  let total = 0
  const failures: string[] = []
  const byInstance = new Map<string, number>()
  const loop = async (): Promise<void> => {
    while (!options.until() && total < (options.maxRequests ?? 50_000)) {
      total++
      const { status, body } = await new Promise<{ status: number, body: string }>((resolve) => {
        const stream = session.request({ ':path': '/', ':authority': authority })
        let code = 0
        let text = ''
        stream.on('response', (headers) => { code = Number(headers[':status']) })
        stream.on('data', (chunk: Buffer) => { text += chunk.toString() })
        stream.on('end', () => { resolve({ status: code, body: text }) })
        stream.on('error', (error) => { resolve({ status: -1, body: error.message }) })
        stream.end()
      })
      if (status !== 200) failures.push(`${status} ${body}`)
      else {
        const instance = /"instance":"([^"]+)"/.exec(body)?.[1] ?? '?'
        byInstance.set(instance, (byInstance.get(instance) ?? 0) + 1)
      }
    }
  }
  await Promise.all(Array.from({ length: options.streams }, loop))
  return { total, failures, byInstance }
}

test('HTTPS: SNI picks the certificate (exact, then wildcard); HTTP/2 and HTTP/1.1 by ALPN; x-forwarded-proto https; HSTS on HTTPS only; http answers 308', async (t) => {
  const s = await setup(t)
  const { gateway, httpsPort } = await startTls(t, config(s, `${certificates(s.www, s.preview)}\n  redirectHttp: true\n  hsts: { maxAge: 365d, includeSubDomains: true }`))
  const ca = s.ca.caPem
  const www = await handshake(httpsPort, 'www.example.com', ca)
  assert.equal(www.cert?.serialNumber, s.www.serial)
  assert.equal(www.alpn, 'h2')
  assert.equal((await handshake(httpsPort, 'api.example.com', ca)).cert?.serialNumber, s.www.serial)
  assert.equal((await handshake(httpsPort, 'pr-1.preview.example.com', ca)).cert?.serialNumber, s.preview.serial)
  // No certificate carries the name, no default: the handshake fails with an alert, never another name's certificate.
  // RFC 6066: a name the server does not know is refused with unrecognized_name (alert 112), read from the ClientHello.
  const unknown = (await handshake(httpsPort, 'other.example.org', ca)).error ?? ''
  assert.match(unknown, /tlsv1 unrecognized name|alert number 112/i, unknown)
  const openssl = spawnSync('openssl', ['s_client', '-connect', `127.0.0.1:${httpsPort}`, '-servername', 'other.example.org'], { input: '', encoding: 'utf8', timeout: 10_000 })
  assert.match(`${openssl.stderr}${openssl.stdout}`, /unrecognized name/i, 'openssl s_client sees the same alert')
  assert.match((await handshake(httpsPort, undefined, ca)).error ?? '', /alert handshake failure/)

  const resolve = ['--resolve', `www.example.com:${httpsPort}:127.0.0.1`, '--resolve', `pr-1.preview.example.com:${httpsPort}:127.0.0.1`, '--cacert', s.ca.caPath]
  for (const version of ['--http2', '--http1.1']) {
    const answer = await curl([version, ...resolve, '-D', '-', `https://www.example.com:${httpsPort}/hello?x=1`])
    assert.equal(answer.status, 0, answer.stderr)
    assert.match(answer.stdout, version === '--http2' ? /^HTTP\/2 200/ : /^HTTP\/1\.1 200/)
    assert.match(answer.stdout, /strict-transport-security: max-age=31536000; includeSubDomains/i)
    assert.match(answer.stdout, /x-request-id: \S+/i)
    const body = JSON.parse(answer.stdout.slice(answer.stdout.indexOf('{'))) as { url: string, headers: Record<string, string> }
    assert.equal(body.url, '/hello?x=1')
    assert.equal(body.headers['x-forwarded-proto'], 'https')
    assert.equal(body.headers.host, `www.example.com:${httpsPort}`)
  }
  // Templated backends and their isolation over HTTP/2 (:authority is the host).
  const preview = await h2Get(httpsPort, 'pr-1.preview.example.com', ca)
  assert.equal(preview.status, 200)
  assert.match(preview.body, /"instance":"b"/)
  assert.equal((await h2Get(httpsPort, 'pr-9.preview.example.com', ca)).status, 503)
  // Plain HTTP: 308 to the same host, path and query on the HTTPS port; no HSTS there.
  const redirect = await send(`${gateway.url}/a/b?c=d`, { host: 'www.example.com' })
  assert.equal(redirect.status, 308)
  assert.equal(redirect.headers.location, `https://www.example.com:${httpsPort}/a/b?c=d`)
  assert.equal(redirect.headers['strict-transport-security'], undefined)
  const h2Line = await gateway.waitForLog((line) => line.msg === 'request' && line.httpVersion === '2.0' && line.host === 'pr-1.preview.example.com')
  assert.equal(h2Line.status, 200)
  // Metrics: handshakes by result and failures by reason, requests by protocol, certificate expiry; the state lists the certificates.
  const metrics = (await send(`${gateway.adminUrl}/metrics`)).body
  assert.match(metrics, /^srvgate_tls_handshakes_total\{result="ok"\} [1-9]\d*$/m)
  assert.match(metrics, /^srvgate_tls_handshake_failures_total\{reason="unknown_name"\} [2-9]\d*$/m)
  assert.match(metrics, /^srvgate_http_protocol_requests_total\{protocol="HTTP\/2"\} [1-9]\d*$/m)
  assert.match(metrics, /^srvgate_http_protocol_requests_total\{protocol="HTTP\/1\.1"\} [1-9]\d*$/m)
  const expiry = new RegExp(`^srvgate_tls_certificate_expiry_timestamp_seconds\\{file="${s.preview.cert.replaceAll('/', '\\/')}",serial="${s.preview.serial}",names="\\*\\.preview\\.example\\.com"\\} (\\d+)$`, 'm')
  const notAfter = Number(expiry.exec(metrics)?.[1])
  assert.ok(Math.abs(notAfter - (Date.now() / 1000 + 30 * 86_400)) < 3600, `notAfter ${notAfter}`)
  const state = (await send(`${gateway.adminUrl}/admin/state`)).json() as { certificates: Array<{ names: string[], serial: string, daysLeft: number }> }
  assert.deepEqual(state.certificates.map((certificate) => [certificate.names, certificate.serial, certificate.daysLeft]), [[['www.example.com', 'api.example.com'], s.www.serial, 29], [['*.preview.example.com'], s.preview.serial, 29]])
})

test('HTTPS: a client without SNI, or with a name no certificate carries, gets `default`', async (t) => {
  const s = await setup(t)
  const { httpsPort } = await startTls(t, config(s, `${certificates(s.www, s.preview)}\n  default: www.example.com`, 'https: "127.0.0.1:${HTTPS_PORT}"'))
  const ca = s.ca.caPem
  assert.equal((await handshake(httpsPort, undefined, ca)).cert?.serialNumber, s.www.serial)
  assert.equal((await handshake(httpsPort, 'other.example.org', ca)).cert?.serialNumber, s.www.serial)
  assert.equal((await handshake(httpsPort, 'pr-2.preview.example.com', ca)).cert?.serialNumber, s.preview.serial)
  assert.equal((await h2Get(httpsPort, 'www.example.com', ca)).status, 200)
})

test('check: an expired certificate, a key of another certificate and an unreadable file are refused with their paths; one expiring within 14 days is a warning', async (t) => {
  const s = await setup(t)
  const expired = s.ca.issue(['old.example.com'], { from: new Date('2025-01-01T00:00:00Z'), until: new Date('2025-02-01T00:00:00Z') })
  const soon = s.ca.issue(['soon.example.com'], { until: new Date(Date.now() + 5 * 86_400_000) })
  const dir = join(s.ca.dir, 'check')
  mkdirSync(dir)
  const bad = join(dir, 'bad.yaml')
  writeFileSync(bad, config(s, `  certificates:
    - { cert: ${expired.cert}, key: ${expired.key} }
    - { cert: ${s.www.cert}, key: ${s.preview.key} }
    - { cert: ${join(dir, 'missing.pem')}, key: ${s.www.key} }
  default: nowhere.example.com`).replaceAll('${PORT}', '18080').replaceAll('${HTTPS_PORT}', '18443').replaceAll('${ADMIN_PORT}', '19901'))
  const refused = await srvgate(['check', '-c', bad])
  assert.equal(refused.code, 1)
  assert.match(refused.stderr, /tls\.certificates\[0\]\.cert: .*expired on 2025-02-01/)
  assert.match(refused.stderr, /tls\.certificates\[1\]\.key: .* is not the key of /)
  assert.match(refused.stderr, /tls\.certificates\[2\]\.cert: cannot read .*missing\.pem: ENOENT/)
  const good = join(dir, 'good.yaml')
  writeFileSync(good, config(s, certificates(s.www, soon)).replaceAll('${PORT}', '18080').replaceAll('${HTTPS_PORT}', '18443').replaceAll('${ADMIN_PORT}', '19901'))
  const warned = await srvgate(['check', '-c', good])
  assert.equal(warned.code, 0, warned.stderr)
  assert.match(warned.stderr, /warning: tls\.certificates\[1\]\.cert: .* expires on .*, in 5 day\(s\)/)
  assert.match(warned.stdout, /listening on 127\.0\.0\.1:18080 and https 127\.0\.0\.1:18443/)
})

test('rotation: a Kubernetes-style secret swap under HTTP/2 load: new handshakes get the new serial, 0 failed requests; a broken replacement leaves the old one serving; SIGHUP too', async (t) => {
  const s = await setup(t)
  const ca = s.ca.caPem
  // Kubernetes' layout: tls.crt → ..data/tls.crt, ..data → ..v1 (swapped atomically).
  const secret = join(s.ca.dir, 'secret')
  mkdirSync(secret)
  const version = (name: string, issued: { cert: string, key: string }): void => {
    mkdirSync(join(secret, name))
    writeFileSync(join(secret, name, 'tls.crt'), readFileSync(issued.cert))
    writeFileSync(join(secret, name, 'tls.key'), readFileSync(issued.key))
  }
  const swap = (name: string): void => {
    symlinkSync(name, join(secret, '..data_tmp'))
    renameSync(join(secret, '..data_tmp'), join(secret, '..data'))
  }
  version('..v1', s.www)
  symlinkSync('..v1', join(secret, '..data'))
  symlinkSync(join('..data', 'tls.crt'), join(secret, 'tls.crt'))
  symlinkSync(join('..data', 'tls.key'), join(secret, 'tls.key'))
  const { gateway, httpsPort } = await startTls(t, config(s, `  certificates:\n    - { cert: ${join(secret, 'tls.crt')}, key: ${join(secret, 'tls.key')} }`))
  assert.equal((await handshake(httpsPort, 'www.example.com', ca)).cert?.serialNumber, s.www.serial)

  // Load over one long-lived HTTP/2 connection while the secret changes.
  let isDone = false
  const running = h2Load(t, httpsPort, 'www.example.com', ca, { streams: 3, until: () => isDone })
  const renewed = s.ca.issue(['www.example.com', 'api.example.com'])
  version('..v2', renewed)
  swap('..v2')
  let seen: string | undefined
  for (let attempt = 0; attempt < 40 && seen !== renewed.serial; attempt++) {
    await sleep(100)
    seen = (await handshake(httpsPort, 'www.example.com', ca)).cert?.serialNumber
  }
  assert.equal(seen, renewed.serial, 'new handshakes get the renewed certificate')
  await gateway.waitForLog((line) => line.msg === 'configuration reloaded')

  // A broken replacement (a key of another certificate): reported, the renewed one keeps serving.
  mkdirSync(join(secret, '..v3'))
  writeFileSync(join(secret, '..v3', 'tls.crt'), readFileSync(s.www.cert))
  writeFileSync(join(secret, '..v3', 'tls.key'), readFileSync(s.preview.key))
  swap('..v3')
  const refused = await gateway.waitForLog((line) => line.msg === 'reload failed; the previous configuration stays in use')
  assert.match(JSON.stringify(refused.errors), /tls\.certificates\[0\]\.key: .* is not the key of /)
  assert.equal((await handshake(httpsPort, 'www.example.com', ca)).cert?.serialNumber, renewed.serial)

  // Files rewritten, then SIGHUP: the same path to rotation.
  const third = s.ca.issue(['www.example.com'])
  version('..v4', third)
  swap('..v4')
  gateway.process.kill('SIGHUP')
  for (let attempt = 0; attempt < 40 && seen !== third.serial; attempt++) {
    await sleep(100)
    seen = (await handshake(httpsPort, 'www.example.com', ca)).cert?.serialNumber
  }
  assert.equal(seen, third.serial)
  isDone = true
  const { total, failures } = await running
  assert.deepEqual(failures, [], `${failures.length} of ${total} requests failed`)
  assert.ok(total > 100, `a real load: ${total} requests`)
})

test('a WebSocket over HTTP/1.1 on the HTTPS listener is tunnelled to an instance', async (t) => {
  const s = await setup(t)
  const wss = new WebSocketServer({ port: 0, host: '127.0.0.1' })
  t.after(() => { wss.close() })
  wss.on('connection', (socket, request) => { socket.on('message', (data) => { socket.send(`echo ${String(data)} proto=${String(request.headers['x-forwarded-proto'])}`) }) })
  await new Promise((resolve) => wss.once('listening', resolve))
  s.dns.setService(WEB, [{ address: '127.0.0.1', port: (wss.address() as { port: number }).port }])
  const { httpsPort } = await startTls(t, config(s, certificates(s.www)))
  const client = new WebSocket(`wss://127.0.0.1:${httpsPort}/chat`, [], { ca: s.ca.caPem, servername: 'www.example.com', headers: { host: 'www.example.com' } } as never)
  await new Promise((resolve, reject) => { client.once('open', resolve); client.once('error', reject) })
  const reply = new Promise<string>((resolve) => client.once('message', (data) => { resolve(String(data)) }))
  client.send('hi')
  assert.equal(await reply, 'echo hi proto=https')
  client.close()
  await new Promise((resolve) => client.once('close', resolve))
})

test('TLS to instances: serverName is the SNI and the name verified; an instance with another name fails like a connect failure and the request goes elsewhere', async (t) => {
  const s = await setup(t)
  const serve = async (issued: Issued, name: string): Promise<number> => {
    const server = createHttpsServer({ cert: readFileSync(issued.cert), key: readFileSync(issued.key) }, (request, response) => {
      response.setHeader('content-type', 'application/json')
      response.end(JSON.stringify({ instance: name, sni: (request.socket as { servername?: string }).servername, proto: request.headers['x-forwarded-proto'] }))
    })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    t.after(() => { server.closeAllConnections(); server.close() })
    return (server.address() as { port: number }).port
  }
  const good = await serve(s.ca.issue(['web.internal']), 'good')
  const impostor = await serve(s.ca.issue(['impostor.internal']), 'impostor')
  s.dns.setService('_secure.service.consul', [{ address: '127.0.0.1', port: good }, { address: '127.0.0.1', port: impostor }])
  const text = config(s, certificates(s.www)).replace('backends:\n', `backends:
  secure: { discovery: { resolver: consul, srv: _secure.service.consul }, balance: round-robin, outlier: { consecutiveFailures: 2, ejectFor: 60s }, tls: { serverName: web.internal, ca: ${s.ca.caPath} } }
`).replace('frontends:\n', 'frontends:\n  - { name: secure, match: { host: secure.example.com }, backend: secure }\n')
  const { gateway } = await startTls(t, text, { workers: 1 })
  for (let index = 0; index < 8; index++) {
    const answer = await send(`${gateway.url}/`, { host: 'secure.example.com' })
    assert.equal(answer.status, 200, answer.body)
    assert.deepEqual(answer.json(), { instance: 'good', sni: 'web.internal', proto: 'http' })
  }
  const state = (await send(`${gateway.adminUrl}/admin/state`)).json() as { backends: Array<{ name: string, instances: Array<{ port: number, state: string }> }> }
  const impostorState = state.backends.find((backend) => backend.name === 'secure')?.instances.find((instance) => instance.port === impostor)
  assert.equal(impostorState?.state, 'ejected', 'a certificate for another name counts against the instance')
  const retried = await gateway.waitForLog((line) => line.msg === 'request' && line.host === 'secure.example.com' && line.retries === 1)
  assert.deepEqual(retried.retryReasons, ['connect-failure'])
  // A bad CA path is a configuration error with its path, not a failure per request.
  const dir = join(s.ca.dir, 'bad-ca')
  mkdirSync(dir)
  writeFileSync(join(dir, 'gateway.yaml'), text.replace(`ca: ${s.ca.caPath}`, `ca: ${join(dir, 'nope.pem')}`).replaceAll('${PORT}', '18080').replaceAll('${HTTPS_PORT}', '18443').replaceAll('${ADMIN_PORT}', '19901'))
  const refused = await srvgate(['check', '-c', join(dir, 'gateway.yaml')])
  assert.equal(refused.code, 1)
  assert.match(refused.stderr, /backends\.secure\.tls\.ca: .*nope\.pem is not a readable PEM certificate \(ENOENT\)/)
})

test('rolling replacement and a crash over HTTP/2 on the HTTPS listener: 0 failed requests', async (t) => {
  const s = await setup(t)
  const records = (list: Upstream[]) => list.map((upstream) => ({ address: '127.0.0.1', port: upstream.port }))
  const first = await Promise.all(['v1-0', 'v1-1', 'v1-2'].map(async (name) => await Upstream.start(t, name)))
  s.dns.setService(WEB, records(first))
  const { httpsPort } = await startTls(t, config(s, certificates(s.www)).replace('retry: { attempts: 2 }', 'retry: { attempts: 3 }'))
  let isDone = false
  const running = h2Load(t, httpsPort, 'www.example.com', s.ca.caPem, { streams: 6, until: () => isDone })
  const replacements = await replaceEveryInstance(t, s.dns, WEB, first)
  // A crash: connections reset, the record stays in DNS; GETs fail over.
  await (replacements[0] as Upstream).kill()
  await sleep(1500)
  isDone = true
  const result = await running
  assert.deepEqual(result.failures, [], `${result.failures.length} of ${result.total} requests failed`)
  assert.ok(result.total > 300, `a real load: ${result.total} requests`)
  for (const next of replacements) assert.ok((result.byInstance.get(next.name) ?? 0) > 0, `${next.name} got traffic`)
})

test('HTTP/2 request bodies stream through whole, with or without content-length; a GET without a body sends none', async (t) => {
  const s = await setup(t)
  const { httpsPort } = await startTls(t, config(s, certificates(s.www)))
  const session = http2Connect(`https://www.example.com:${httpsPort}`, { ca: s.ca.caPem, host: '127.0.0.1', servername: 'www.example.com' } as never)
  t.after(() => { session.close() })
  const post = async (headers: Record<string, string>, chunks: string[]): Promise<{ status: number, body: string }> => await new Promise((resolve, reject) => {
    const stream = session.request({ ':path': '/upload', ':method': 'POST', ':authority': 'www.example.com', ...headers }, { endStream: chunks.length === 0 })
    let status = 0
    let body = ''
    stream.on('response', (received) => { status = Number(received[':status']) })
    stream.on('data', (chunk: Buffer) => { body += chunk.toString() })
    stream.on('end', () => { resolve({ status, body }) })
    stream.on('error', reject)
    // Streamed in pieces, a pause between them: nothing is buffered whole on the way.
    const next = (index: number): void => {
      if (index >= chunks.length) { if (chunks.length > 0) stream.end(); return }
      stream.write(chunks[index])
      setTimeout(() => { next(index + 1) }, 30)
    }
    next(0)
  })
  const pieces = ['a'.repeat(10_000), 'b'.repeat(20_000), 'c'.repeat(5_000)]
  const streamed = await post({}, pieces)
  assert.equal(streamed.status, 200)
  assert.equal(JSON.parse(streamed.body).bodyBytes, 35_000, 'no content-length: every DATA frame arrives')
  const sized = await post({ 'content-length': '35000' }, pieces)
  assert.equal(JSON.parse(sized.body).bodyBytes, 35_000)
  const empty = await post({}, [])
  assert.equal(empty.status, 200)
  assert.equal(JSON.parse(empty.body).bodyBytes, 0)
})

test('a connection to the HTTPS listener that never finishes its handshake is closed after client.headersTimeout', async (t) => {
  const s = await setup(t)
  const { gateway, httpsPort } = await startTls(t, `${config(s, certificates(s.www))}\nclient: { headersTimeout: 1s }\n`)
  const { connect } = await import('node:net')
  const socket = connect(httpsPort, '127.0.0.1')
  t.after(() => { socket.destroy() })
  const started = Date.now()
  const closed = await new Promise<number>((resolve) => {
    socket.on('error', () => {})
    socket.once('close', () => { resolve(Date.now() - started) })
    setTimeout(() => { resolve(-1) }, 5000)
  })
  assert.ok(closed > 700 && closed < 3000, `closed after ${closed} ms`)
  assert.match((await send(`${gateway.adminUrl}/metrics`)).body, /^srvgate_tls_handshake_failures_total\{reason="timeout"\} 1$/m)
})

test('an HTTP/2 client that cancels its stream (RST_STREAM) is let go everywhere: the instance\'s request is aborted, the log says 499, the connection serves on', async (t) => {
  const s = await setup(t)
  const [slow] = s.upstreams as [Upstream, Upstream]
  s.dns.setService(WEB, [{ address: '127.0.0.1', port: slow.port }])
  let abortedAt = 0
  slow.behaviour = (request, response) => {
    if (request.url !== '/slow') return false
    response.on('close', () => { if (!response.writableFinished) abortedAt = Date.now() })
    setTimeout(() => { if (!response.destroyed) response.end('late') }, 5000)
    return true
  }
  const { gateway, httpsPort } = await startTls(t, config(s, certificates(s.www)), { workers: 1 })
  const session = http2Connect(`https://www.example.com:${httpsPort}`, { ca: s.ca.caPem, host: '127.0.0.1', servername: 'www.example.com' } as never)
  t.after(() => { session.close() })
  const stream = session.request({ ':path': '/slow', ':authority': 'www.example.com', 'x-request-id': 'h2-cancelled' })
  stream.on('error', () => {})
  stream.end()
  await sleep(300)
  const cancelledAt = Date.now()
  stream.close(8) // NGHTTP2_CANCEL
  const line = await gateway.waitForLog((entry) => entry.requestId === 'h2-cancelled' && entry.msg === 'request', 3000)
  assert.equal(line.status, 499)
  assert.equal(line.error, 'SG_ERR_CLIENT_GONE')
  await sleep(200)
  assert.ok(abortedAt >= cancelledAt && abortedAt - cancelledAt < 1000, 'the instance saw its request aborted at once')
  // The session itself is fine: the next stream is answered.
  const next = await new Promise<number>((resolve) => {
    const again = session.request({ ':path': '/', ':authority': 'www.example.com' })
    again.on('response', (headers) => { resolve(Number(headers[':status'])) })
    again.on('data', () => {})
    again.end()
  })
  assert.equal(next, 200)
})

test('HTTP/2: client.maxHeaderCount counts header fields, not pseudo-headers; over it is 431', async (t) => {
  const s = await setup(t)
  const { httpsPort } = await startTls(t, `${config(s, certificates(s.www))}\nclient: { maxHeaderCount: 20 }\n`, { workers: 1 })
  const session = http2Connect(`https://www.example.com:${httpsPort}`, { ca: s.ca.caPem, host: '127.0.0.1', servername: 'www.example.com' } as never)
  t.after(() => { session.close() })
  const statusWith = async (fields: number): Promise<number> => await new Promise((resolve, reject) => {
    const extra = Object.fromEntries(Array.from({ length: fields }, (_, index) => [`x-field-${index}`, 'v']))
    const stream = session.request({ ':path': '/', ':authority': 'www.example.com', ...extra })
    stream.on('response', (headers) => { resolve(Number(headers[':status'])) })
    stream.on('data', () => {})
    stream.on('error', reject)
    stream.end()
  })
  assert.equal(await statusWith(20), 200, '20 fields and 4 pseudo-headers: within the limit')
  assert.equal(await statusWith(21), 431)
})

type WorkersState = { workers: { running: number, replaced: number, pids: number[] } }

/** One GET over a new TLS connection offering `session`: whether the handshake resumed, the ticket received, the status line. */
async function ticketGet (port: number, ca: string, session?: Buffer): Promise<{ reused: boolean, session: Buffer | undefined, status: string }> {
  return await new Promise((resolve, reject) => {
    let reused = false
    let ticket: Buffer | undefined
    let answer = ''
    const socket = tlsConnect({ host: '127.0.0.1', port, servername: 'www.example.com', ca, session, ALPNProtocols: ['http/1.1'] })
    socket.on('session', (received: Buffer) => { ticket = received })
    socket.once('secureConnect', () => {
      reused = socket.isSessionReused()
      socket.write('GET / HTTP/1.1\r\nHost: www.example.com\r\nConnection: close\r\n\r\n')
    })
    socket.on('data', (chunk: Buffer) => { answer += chunk.toString('latin1') })
    socket.once('error', reject)
    socket.once('close', () => { resolve({ reused, session: ticket, status: answer.split('\r\n')[0] ?? '' }) })
  })
}

test('session tickets: a ticket one worker issued resumes on every worker (one key, the primary\'s), a worker started after a crash included; counted in srvgate_tls_resumed_handshakes_total', async (t) => {
  const s = await setup(t)
  const { gateway, httpsPort } = await startTls(t, config(s, certificates(s.www)), { workers: 2 })
  const workers = async (): Promise<WorkersState['workers']> => ((await send(`${gateway.adminUrl}/admin/state`)).json() as unknown as WorkersState).workers
  const first = await ticketGet(httpsPort, s.ca.caPem)
  assert.equal(first.status, 'HTTP/1.1 200 OK')
  assert.ok(first.session !== undefined)
  const resumedOn = async (count: number): Promise<void> => {
    for (let index = 0; index < count; index++) {
      const again = await ticketGet(httpsPort, s.ca.caPem, first.session)
      assert.equal(again.status, 'HTTP/1.1 200 OK')
      assert.equal(again.reused, true, `connection ${index + 1} resumed`)
    }
  }
  await resumedOn(10)
  // The kernel and the primary spread connections: both workers took some, and resumed every one.
  const servedBy = (): Set<unknown> => new Set(gateway.logs.filter((line) => line.msg === 'request' && line.host === 'www.example.com').map((line) => line.pid))
  const before = await workers()
  assert.deepEqual(servedBy(), new Set(before.pids), 'both workers served')
  assert.match((await send(`${gateway.adminUrl}/metrics`)).body, /^srvgate_tls_resumed_handshakes_total 10$/m)
  // A crashed worker's successor gets the key before it listens.
  process.kill(before.pids[0] as number, 'SIGKILL')
  const deadline = Date.now() + 10_000
  let after = await workers()
  while ((after.running < 2 || after.replaced < 1) && Date.now() < deadline) {
    await sleep(100)
    after = await workers()
  }
  assert.equal(after.running, 2)
  const successor = after.pids.find((pid) => !before.pids.includes(pid))
  assert.ok(successor !== undefined)
  for (let round = 0; round < 10 && !servedBy().has(successor); round++) await resumedOn(2)
  assert.ok(servedBy().has(successor), 'the new worker served resumed connections')
})

test('tls.sessionTickets.enabled false: no connection resumes; a reload that turns them on says a restart is needed', async (t) => {
  const s = await setup(t)
  const tls = `${certificates(s.www)}\n  sessionTickets: { enabled: false }`
  const { gateway, httpsPort } = await startTls(t, config(s, tls), { workers: 2 })
  const first = await ticketGet(httpsPort, s.ca.caPem)
  for (let index = 0; index < 4; index++) assert.equal((await ticketGet(httpsPort, s.ca.caPem, first.session)).reused, false)
  writeFileSync(gateway.configPath, readFileSync(gateway.configPath, 'utf8').replace('sessionTickets: { enabled: false }', 'sessionTickets: { enabled: true }'))
  const reload = (await send(`${gateway.adminUrl}/admin/reload`, { method: 'POST' })).json() as { restartNeeded: string[] }
  assert.deepEqual(reload.restartNeeded, ['tls.sessionTickets.enabled'])
  assert.equal((await ticketGet(httpsPort, s.ca.caPem, first.session)).reused, false)
})

test('a reload removed tls (restart needed for listen.https) and the files are gone: a worker that replaces one that died starts, serving plain HTTP, never reading the files of the start', async (t) => {
  const s = await setup(t)
  const dir = mkdtempSync(join(tmpdir(), 'srvgate-gone-'))
  t.after(() => { rmSync(dir, { recursive: true, force: true }) })
  copyFileSync(s.www.cert, join(dir, 'www.pem'))
  copyFileSync(s.www.key, join(dir, 'www-key.pem'))
  const { gateway } = await startTls(t, config(s, `  certificates:\n    - { cert: ${join(dir, 'www.pem')}, key: ${join(dir, 'www-key.pem')} }`), { workers: 2 })
  const text = readFileSync(gateway.configPath, 'utf8')
  writeFileSync(gateway.configPath, text.replace(/^tls:\n(  .*\n)+/m, '').replace(/, https: "127\.0\.0\.1:\d+"/, ''))
  const reload = (await send(`${gateway.adminUrl}/admin/reload`, { method: 'POST' })).json() as { ok: boolean, restartNeeded: string[] }
  assert.deepEqual(reload.restartNeeded, ['listen.https'])
  rmSync(dir, { recursive: true, force: true })
  type Workers = { workers: { running: number, replaced: number, pids: number[] } }
  const workers = async (): Promise<Workers['workers']> => ((await send(`${gateway.adminUrl}/admin/state`)).json() as unknown as Workers).workers
  const before = await workers()
  process.kill(before.pids[0] as number, 'SIGKILL')
  await gateway.waitForLog((line) => line.msg === 'worker exited: replacing it')
  // Past the time a worker that cannot start would have been replaced again (it is, a second after dying young).
  await sleep(3000)
  const after = await workers()
  assert.equal(after.running, 2)
  assert.equal(after.replaced, 1, 'one replacement, no loop')
  assert.equal(gateway.logs.filter((line) => line.msg === 'a worker could not start').length, 0)
  const successor = after.pids.find((pid) => !before.pids.includes(pid))
  const servedBy = (): Set<unknown> => new Set(gateway.logs.filter((line) => line.msg === 'request' && line.host === 'www.example.com').map((line) => line.pid))
  for (let round = 0; round < 40 && !servedBy().has(successor); round++) assert.equal((await send(`${gateway.url}/`, { host: 'www.example.com', agent: false })).status, 200)
  assert.ok(servedBy().has(successor), 'the replacement serves plain HTTP')
})
