/**
 * An HTTPS gateway for the listener tests: a test CA's certificates, a
 * Consul-like DNS server, two instances, srvgate started through its CLI with
 * http and https listeners; and raw HTTP/2 and TLS clients to talk to it.
 */
import type { TestContext } from 'node:test'
import type { EventEmitter } from 'node:events'
import { connect as http2Connect, type ClientHttp2Session, type OutgoingHttpHeaders } from 'node:http2'
import { connect as tlsConnect, type TLSSocket } from 'node:tls'
import { ConsulLikeDnsServer, freePort } from './dns-server.js'
import { Upstream } from './upstream.js'
import { SpawnedGateway, type SpawnOptions } from './spawn-gateway.js'
import { TestCa, type Issued } from './certificates.js'

export const WEB = '_web._prod.service.consul'

export type HttpsSetup = { dns: ConsulLikeDnsServer, ca: TestCa, www: Issued, preview: Issued, upstreams: Upstream[] }

export async function httpsSetup (t: TestContext): Promise<HttpsSetup> {
  const dns = await ConsulLikeDnsServer.start(t)
  const upstreams = await Promise.all(['a', 'b'].map(async (name) => await Upstream.start(t, name)))
  dns.setService(WEB, upstreams.map((upstream) => ({ address: '127.0.0.1', port: upstream.port })))
  dns.setService('_web._pr-1.service.consul', [{ address: '127.0.0.1', port: (upstreams[1] as Upstream).port }])
  const ca = TestCa.create(t)
  return { dns, ca, www: ca.issue(['www.example.com', 'api.example.com']), preview: ca.issue(['*.preview.example.com']), upstreams }
}

/** The gateway's configuration: `tls` and `more` are YAML sections added as given. */
export function httpsConfig (s: HttpsSetup, more = '', tls = `tls:\n  certificates:\n    - { cert: ${s.www.cert}, key: ${s.www.key} }\n    - { cert: ${s.preview.cert}, key: ${s.preview.key} }`, listen = 'http: "127.0.0.1:${PORT}", https: "127.0.0.1:${HTTPS_PORT}"'): string {
  return `
listen: { ${listen}, admin: "127.0.0.1:\${ADMIN_PORT}" }
${tls}
resolvers: { consul: { nameservers: ["${s.dns.address}"], ttl: { min: 250ms, max: 1s }, timeout: 300ms } }
backends:
  web-prod: { discovery: { resolver: consul, srv: ${WEB} }, retry: { attempts: 2 } }
frontends:
  - { name: preview, match: { host: "{env}.preview.example.com" }, env: { pattern: "pr-[0-9]+" }, backend: { template: "web-{env}", discovery: { resolver: consul, srv: "_web._{env}.service.consul" } } }
  - { name: prod, match: { host: www.example.com }, backend: web-prod }
${more}
`
}

export async function startHttps (t: TestContext, text: string, options: SpawnOptions = {}): Promise<{ gateway: SpawnedGateway, httpsPort: number }> {
  const httpsPort = await freePort()
  const gateway = await SpawnedGateway.start(t, text.replaceAll('${HTTPS_PORT}', String(httpsPort)), options)
  return { gateway, httpsPort }
}

/** An HTTP/2 session to the HTTPS listener with SNI `servername`, closed after the test. */
export async function h2Session (t: TestContext, port: number, servername: string, ca: string): Promise<ClientHttp2Session> {
  const session = http2Connect(`https://${servername}:${port}`, { ca, servername, host: '127.0.0.1' } as never)
  t.after(() => { session.destroy() })
  session.on('error', () => {})
  // The server's SETTINGS, not the defaults Node assumes until they come.
  await new Promise<void>((resolve, reject) => {
    session.once('remoteSettings', () => { resolve() })
    session.once('error', reject)
  })
  return session
}

export type H2Answer = { status: number, headers: Record<string, unknown>, body: string }

/** One request on a session: its status, headers and body (status -1 and the error's message if the stream failed). */
export async function h2Request (session: ClientHttp2Session, headers: OutgoingHttpHeaders, body?: Array<Buffer | string>): Promise<H2Answer> {
  return await new Promise((resolve) => {
    const stream = session.request(headers, { endStream: body === undefined })
    let text = ''
    let received: Record<string, unknown> = {}
    stream.on('response', (got) => { received = got })
    stream.on('data', (chunk: Buffer) => { text += chunk.toString() })
    stream.on('end', () => { resolve({ status: Number(received[':status']), headers: received, body: text }) })
    stream.on('error', (error) => { resolve({ status: -1, headers: received, body: error.message }) })
    if (body !== undefined) {
      for (const piece of body) stream.write(piece)
      stream.end()
    }
  })
}

/** A TLS connection to the HTTPS listener, handshake done, with ALPN `protocols`. */
export async function tlsSocket (t: TestContext, port: number, servername: string, ca: string, protocols: string[] = ['http/1.1']): Promise<TLSSocket> {
  const socket = tlsConnect({ host: '127.0.0.1', port, servername, ca, ALPNProtocols: protocols })
  t.after(() => { socket.destroy() })
  await new Promise<void>((resolve, reject) => {
    socket.once('secureConnect', () => { resolve() })
    socket.once('error', reject)
  })
  return socket
}

/** How long until `socket` closes, from `since` (-1: still open after `withinMs`); what it received meanwhile. */
export async function closedAfter (socket: EventEmitter, since: number, withinMs: number): Promise<{ ms: number, received: string }> {
  let received = ''
  socket.on('data', (chunk: Buffer) => { received += chunk.toString('latin1') })
  socket.on('error', () => {})
  if ((socket as { closed?: boolean }).closed === true) return { ms: 0, received }
  return await new Promise((resolve) => {
    const timer = setTimeout(() => { resolve({ ms: -1, received }) }, withinMs)
    socket.once('close', () => {
      clearTimeout(timer)
      resolve({ ms: Date.now() - since, received })
    })
  })
}
