/**
 * access.forwardAuth (policy/forward-auth.ts) against a real auth service on
 * loopback: what it is sent, a 2xx's copyHeaders, a refusal relayed as it
 * came, and every way it fails closed (refused, hung, too large, the client
 * gone).
 */
import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { ForwardAuth, MAX_ANSWER_BYTES, type AskedRequest } from '../../../src/policy/forward-auth.js'
import { PolicyAnswer } from '../../../src/policy/policy-answer.js'
import { ClientGone } from '../../../src/proxy/client-gone.js'
import { ErrorCode, ProxyError } from '../../../src/errors.js'
import { systemClock } from '../../../src/util/clock.js'
import type { Milliseconds } from '../../../src/util/duration.js'

async function authService (t: TestContext, handle: (request: IncomingMessage, response: ServerResponse) => void): Promise<{ url: string, seen: IncomingMessage[] }> {
  const seen: IncomingMessage[] = []
  const server = createServer((request, response) => {
    seen.push(request)
    handle(request, response)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.after(() => { server.closeAllConnections(); server.close() })
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/check?app=web`, seen }
}

const REQUEST: AskedRequest = {
  method: 'POST',
  url: '/orders?id=7',
  host: 'shop.example.com',
  proto: 'https',
  clientIp: '203.0.113.9',
  headers: { cookie: 'session=abc', authorization: 'Bearer t', 'x-forwarded-for': '6.6.6.6', 'content-length': '12', connection: 'keep-alive', ':path': '/orders' },
  env: undefined
}

const config = (url: string, timeoutMs = 2000) => ({ url, copyHeaders: ['x-user', 'x-groups'], timeoutMs: timeoutMs as Milliseconds })

test('forwardAuth: the service gets GET, the request\'s headers and srvgate\'s X-Forwarded-*; a 2xx passes with copyHeaders (a missing one: removed)', async (t) => {
  const service = await authService(t, (_request, response) => {
    response.setHeader('x-user', 'alice')
    response.end('ok')
  })
  const auth = new ForwardAuth(systemClock)
  t.after(async () => { await auth.close() })
  const verdict = await auth.ask(config(service.url), REQUEST, undefined)
  assert.deepEqual(verdict, { headers: [['x-user', 'alice'], ['x-groups', undefined]] })
  const asked = service.seen[0] as IncomingMessage
  assert.equal(asked.method, 'GET')
  assert.equal(asked.url, '/check?app=web')
  assert.deepEqual([asked.headers.cookie, asked.headers.authorization], ['session=abc', 'Bearer t'])
  assert.deepEqual([asked.headers['x-forwarded-method'], asked.headers['x-forwarded-proto'], asked.headers['x-forwarded-host'], asked.headers['x-forwarded-uri'], asked.headers['x-forwarded-for']],
    ['POST', 'https', 'shop.example.com', '/orders?id=7', '203.0.113.9'], 'the client\'s own X-Forwarded-For is replaced')
  assert.equal(asked.headers['content-length'], undefined, 'no body is sent')
  assert.equal(asked.headers.host, new URL(service.url).host)
})

test('forwardAuth: any other answer is the client\'s, as it came (status, headers, repeated Set-Cookie, body)', async (t) => {
  const service = await authService(t, (_request, response) => {
    response.statusCode = 302
    response.setHeader('location', 'https://login.example.com/?next=%2Forders')
    response.setHeader('set-cookie', ['a=1', 'b=2'])
    response.setHeader('x-request-id', 'theirs')
    response.end('to the login page')
  })
  const auth = new ForwardAuth(systemClock)
  t.after(async () => { await auth.close() })
  const verdict = await auth.ask(config(service.url), REQUEST, undefined)
  assert.ok(verdict instanceof PolicyAnswer)
  assert.equal(verdict.status, 302)
  assert.deepEqual(verdict.headers.filter(([name]) => ['location', 'set-cookie', 'x-request-id', 'content-length'].includes(name)),
    [['location', 'https://login.example.com/?next=%2Forders'], ['set-cookie', 'a=1'], ['set-cookie', 'b=2']])
  assert.equal(verdict.body?.toString(), 'to the login page')
  assert.equal(verdict.error?.code, ErrorCode.AUTH_REFUSED)
})

test('forwardAuth fails closed: refused, past its timeout, an answer too large, the client gone: 503 auth_unavailable, never through', async (t) => {
  const auth = new ForwardAuth(systemClock)
  t.after(async () => { await auth.close() })
  const closed = await authService(t, () => {})
  const closedUrl = closed.url
  // A port nobody listens on: the service above, closed.
  const refusedPort = await (async () => {
    const probe = createServer()
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve))
    const port = (probe.address() as AddressInfo).port
    await new Promise<void>((resolve) => probe.close(() => resolve()))
    return port
  })()
  const cases: Array<[string, () => Promise<unknown>, RegExp]> = [
    ['refused', async () => await auth.ask(config(`http://127.0.0.1:${refusedPort}/`), REQUEST, undefined), /ECONNREFUSED|connect/],
    ['hung', async () => await auth.ask(config(closedUrl, 150), REQUEST, undefined), /no answer within 150 ms/],
    ['too large', async () => {
      const big = await authService(t, (_request, response) => {
        response.statusCode = 401
        response.end(Buffer.alloc(MAX_ANSWER_BYTES + 1, 'x'))
      })
      return await auth.ask(config(big.url), REQUEST, undefined)
    }, /larger than 65536 bytes/],
    ['client gone', async () => {
      const gone = new ClientGone()
      const asked = auth.ask(config(closedUrl, 5000), REQUEST, gone)
      setImmediate(() => { gone.fire() })
      return await asked
    }, /the client left/]
  ]
  for (const [name, run, why] of cases) {
    const started = performance.now()
    const verdict = await run()
    assert.ok(verdict instanceof ProxyError, name)
    assert.equal(verdict.code, ErrorCode.AUTH_UNAVAILABLE, name)
    assert.match(verdict.message, why, name)
    assert.ok(performance.now() - started < 3000, `${name}: bounded`)
  }
})
