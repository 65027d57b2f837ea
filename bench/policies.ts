/**
 * `npm run bench -- policies`: each per-frontend policy's cost a request,
 * in process (the box's noise is larger than these figures end to end). A
 * frontend without a policy never calls any of them: routing checks two
 * fields and goes on.
 */
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import bcrypt from 'bcryptjs'
import { compileHeaderRules } from '../src/config/compile-headers.js'
import { parseConfigText } from '../src/config/load.js'
import type { UsersTable } from '../src/config/users-file.js'
import { BasicAuth } from '../src/policy/basic-auth.js'
import { ForwardAuth } from '../src/policy/forward-auth.js'
import { RateBuckets } from '../src/policy/rate-buckets.js'
import { RateLimits } from '../src/policy/rate-limits.js'
import { FrontendGate, type GateFacts } from '../src/proxy/frontend-gate.js'
import { applyRequestRules, applyResponseRules } from '../src/proxy/header-rules.js'
import { redirectTo } from '../src/proxy/redirect.js'
import { ENCODINGS, compressor } from '../src/proxy/compression.js'
import type { Transform } from 'node:stream'
import { systemClock } from '../src/util/clock.js'

type Report = (name: string, value: string, target?: string) => void
type PerCall = (iterations: number, body: () => void) => number
type PerAsyncCall = (iterations: number, body: () => Promise<unknown>) => Promise<number>

export async function policiesSection (report: Report, nsPerCall: PerCall, nsPerAsyncCall: PerAsyncCall): Promise<void> {
  console.log('\n## policies (each per request, in process; a frontend without a policy never calls it)')
  const rules = compileHeaderRules({ request: { set: { 'X-Env': 'preview-{env}', 'X-Team': 'web' }, remove: ['Cookie'] }, response: { set: { 'Cache-Control': 'no-store' }, remove: ['Server'] } }, 'bench', true, [])
  const requestHeaders = { host: 'pr-7.preview.example.com', 'user-agent': 'curl/8', accept: '*/*', cookie: 's=1', 'x-forwarded-for': '127.0.0.1', 'x-forwarded-proto': 'http', 'x-forwarded-host': 'pr-7.preview.example.com', forwarded: 'for=127.0.0.1', 'x-real-ip': '127.0.0.1', 'x-request-id': 'abc' }
  const responseHeaders = ['Content-Type', 'application/json', 'Server', 'upstream', 'Content-Length', '42', 'Date', 'Thu, 03 Dec 2026 10:00:00 GMT']
  const request = rules?.request
  const response = rules?.response
  if (request !== undefined && response !== undefined) {
    report('headers: request rules (2 set, 1 remove, {env})', `${nsPerCall(200_000, () => applyRequestRules(requestHeaders, request, 'pr-7')).toFixed(0)} ns`)
    report('headers: answer rules (1 set, 1 remove)', `${nsPerCall(200_000, () => applyResponseRules(responseHeaders, response, undefined)).toFixed(0)} ns`)
  }
  const redirect = { to: 'https://new.example.com{path}?{query}', status: 301 } as const
  report('redirect: the Location (path and query)', `${nsPerCall(200_000, () => redirectTo(redirect, { host: 'old.example.com', path: '/a/b', query: 'x=1', env: undefined })).toFixed(0)} ns`)

  // The access and rate-limit policies through the gate, as a request meets them.
  const auth = new ForwardAuth(systemClock)
  const service = createServer((_request, answer) => { answer.setHeader('x-user', 'alice'); answer.end() })
  await new Promise<void>((resolve) => service.listen(0, '127.0.0.1', resolve))
  const authPort = (service.address() as AddressInfo).port
  const config = parseConfigText(`
listen: { http: "127.0.0.1:8080" }
resolvers: { consul: { nameservers: [127.0.0.1:8600] } }
backends: { web: { discovery: { resolver: consul, srv: _web._tcp.service.consul } } }
frontends:
  - { name: ips, match: { host: a }, backend: web, access: { allow: [10.0.0.0/8, 192.168.0.0/16], deny: [10.6.6.0/24] } }
  - { name: basic, match: { host: b }, backend: web, access: { basicAuth: { usersFile: /bench/users } } }
  - { name: forward, match: { host: c }, backend: web, access: { forwardAuth: { url: "http://127.0.0.1:${authPort}/verify", copyHeaders: [X-User] } } }
  - { name: busy, match: { host: d }, backend: web, rateLimit: { requestsPerSecond: 1000000, burst: 1000000 } }
  - { name: strict, match: { host: e }, backend: web, rateLimit: { requestsPerSecond: 1000000, burst: 3 } }
`, {})
  const users: UsersTable = new Map([['alice', bcrypt.hashSync('wonderland', 10)]])
  const buckets = new RateBuckets()
  const limits = new RateLimits((frontend, key, want, terms) => buckets.take(frontend, key, want, terms, systemClock.now()), systemClock)
  const gate = new FrontendGate(new BasicAuth(new Map([['/bench/users', users]])), auth, limits)
  const facts = (headers: Record<string, string> = {}): GateFacts => ({ method: 'GET', url: '/x', headers, host: 'a', clientIp: '10.1.2.3', isSecure: false, env: undefined, clientGone: undefined })
  const [ips, basic, forward, busy, strict] = config.frontends
  if (ips === undefined || basic === undefined || forward === undefined || busy === undefined || strict === undefined) throw new Error('bench config')
  const plain = facts()
  report('access: allow/deny (2 allow blocks, 1 deny)', `${nsPerCall(200_000, () => gate.admit(ips, plain)).toFixed(0)} ns`)
  const credentials = facts({ authorization: `Basic ${Buffer.from('alice:wonderland').toString('base64')}` })
  const started = process.hrtime.bigint()
  await gate.admit(basic, credentials)
  report('access: basicAuth, first check (cost 10, on its thread)', `${(Number(process.hrtime.bigint() - started) / 1e6).toFixed(1)} ms`)
  report('access: basicAuth, remembered (HMAC, no promise)', `${nsPerCall(100_000, () => gate.admit(basic, credentials)).toFixed(0)} ns`)
  report('access: forwardAuth (a loopback auth service, keep-alive)', `${(await nsPerAsyncCall(3000, async () => await gate.admit(forward, plain)) / 1000).toFixed(1)} µs`)
  report('rateLimit: busy key, leased (1 ask per 50k)', `${nsPerCall(200_000, () => gate.admit(busy, plain)).toFixed(0)} ns`)
  // burst 3 at a call every ~100 ns: spent at once, then refused until the next token without asking again.
  report('rateLimit: a flood refused (429, remembered)', `${nsPerCall(200_000, () => gate.admit(strict, plain)).toFixed(0)} ns`)
  await gate.close()
  service.close()

  // Compression: the work per answer of a 20 KB JSON body, each encoding at srvgate's level.
  const body = Buffer.from(JSON.stringify(Array.from({ length: 400 }, (_, index) => ({ id: index, name: `instance-${index}`, healthy: index % 3 !== 0 }))))
  for (const encoding of ENCODINGS) {
    const microseconds = await nsPerAsyncCall(200, async () => {
      const zip = compressor(encoding)
      if (zip !== undefined) await compressOnce(zip, body)
    }) / 1000
    report(`compress: ${body.length} B of JSON, ${encoding}`, `${microseconds.toFixed(0)} µs`)
  }
}

async function compressOnce (zip: Transform, body: Buffer): Promise<number> {
  return await new Promise<number>((resolve, reject) => {
    let bytes = 0
    zip.on('data', (chunk: Buffer) => { bytes += chunk.length })
    zip.on('end', () => { resolve(bytes) })
    zip.on('error', reject)
    zip.end(body)
  })
}
