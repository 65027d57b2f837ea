import { test } from 'node:test'
import assert from 'node:assert/strict'
import { ErrorCode, ProxyError, DnsError } from '../../../src/errors.js'
import { errorReply, findProxyError } from '../../../src/proxy/error-reply.js'
import { clientIpOf, forwardRequestHeaders, forwardResponseRawHeaders, requestIdOf } from '../../../src/proxy/headers.js'

test('spec §3: each error code has its status and body, with no address or message', () => {
  const cases: Array<[ProxyError, number, Record<string, string>]> = [
    [new ProxyError(ErrorCode.ROUTE_NOT_FOUND, 'no frontend matches x'), 404, { error: 'no_route' }],
    [new ProxyError(ErrorCode.NO_HEALTHY_INSTANCE, 'web: empty', 'web-prod'), 503, { error: 'no_healthy_upstream', backend: 'web-prod' }],
    [new ProxyError(ErrorCode.UPSTREAM_CONNECT, 'connect ECONNREFUSED 10.0.0.1:8080'), 502, { error: 'upstream_error' }],
    [new ProxyError(ErrorCode.UPSTREAM_RESET, 'socket hang up 10.0.0.1:8080'), 502, { error: 'upstream_error' }],
    [new ProxyError(ErrorCode.UPSTREAM_ERROR, 'weird 10.0.0.1'), 502, { error: 'upstream_error' }],
    [new ProxyError(ErrorCode.UPSTREAM_TIMEOUT, 'headers timeout 10.0.0.1:8080'), 504, { error: 'upstream_timeout' }],
    [new ProxyError(ErrorCode.REQUEST_MALFORMED, 'bad host'), 400, { error: 'bad_request' }]
  ]
  for (const [error, status, body] of cases) {
    assert.deepEqual(errorReply(error), { status, body }, error.code)
    assert.doesNotMatch(JSON.stringify(errorReply(error)), /10\.0\.0\.1|ECONN/)
  }
})

test('a new environment past templatedBackends.newPerSecond: 503 template_rate_limited with Retry-After in whole seconds', () => {
  const error = new ProxyError(ErrorCode.TEMPLATE_RATE_LIMITED, 'web-pr-7: newPerSecond spent', 'web-pr-7', { retryAfterS: 2 })
  assert.deepEqual(errorReply(error), { status: 503, body: { error: 'template_rate_limited' }, retryAfterS: 2 })
  assert.equal(errorReply(new ProxyError(ErrorCode.TEMPLATE_RATE_LIMITED, 'x')).retryAfterS, 1, 'never without a Retry-After')
})

test('our error is found inside a chain of causes', () => {
  const ours = new ProxyError(ErrorCode.UPSTREAM_TIMEOUT, 'x')
  const wrapped = new Error('Internal Server Error', { cause: new Error('middle', { cause: ours }) })
  assert.equal(findProxyError(wrapped), ours)
  assert.equal(findProxyError(new Error('plain')), undefined)
  assert.equal(findProxyError(new DnsError(ErrorCode.DNS_TIMEOUT, 'x')), undefined)
})

test('forwarded request headers from an untrusted peer: hop-by-hop and Expect dropped, forwarding headers replaced, Host kept', () => {
  const client = {
    host: 'www.example.com', connection: 'keep-alive, x-hop', 'x-hop': '1', 'keep-alive': 'timeout=5', te: 'trailers', expect: '100-continue',
    upgrade: 'h2c', 'proxy-authorization': 'Basic x', 'x-forwarded-for': '203.0.113.1', 'x-forwarded-proto': 'https', 'x-kept': 'yes',
    'x-real-ip': '10.9.9.9', forwarded: 'for=10.9.9.9', 'x-forwarded-host': 'evil.example', 'x-forwarded-port': '1'
  }
  const headers = forwardRequestHeaders({ ...client }, client, { peerIp: '198.51.100.7', isPeerTrusted: false, clientIp: '198.51.100.7', host: 'www.example.com', proto: 'http', requestId: 'r-1' })
  assert.deepEqual(headers, {
    host: 'www.example.com',
    'x-forwarded-for': '198.51.100.7',
    'x-forwarded-proto': 'http',
    'x-forwarded-host': 'www.example.com',
    'x-real-ip': '198.51.100.7',
    forwarded: 'for=198.51.100.7;host="www.example.com";proto=http',
    'x-request-id': 'r-1',
    'x-kept': 'yes',
    // TE is hop-by-hop, but its "trailers" goes on: the client takes trailers, and gRPC instances ask for it.
    te: 'trailers'
  })
  const gzipOnly = forwardRequestHeaders({ te: 'gzip' }, { te: 'gzip' }, { peerIp: '198.51.100.7', isPeerTrusted: false, clientIp: '198.51.100.7', host: 'h', proto: 'http', requestId: 'r-2' })
  assert.equal(gzipOnly.te, undefined, 'a TE without trailers is dropped')
  const listed = forwardRequestHeaders({ te: 'trailers', connection: 'te' }, { te: 'trailers', connection: 'te' }, { peerIp: '198.51.100.7', isPeerTrusted: false, clientIp: '198.51.100.7', host: 'h', proto: 'http', requestId: 'r-3' })
  assert.equal(listed.te, undefined, 'a TE the client named in Connection is dropped')
})

test('forwarded request headers from a trusted proxy: the chain is extended, its proto and host kept', () => {
  const client = { host: 'www.example.com', 'x-forwarded-for': '203.0.113.1', 'x-forwarded-proto': 'https', 'x-forwarded-host': 'shop.example', forwarded: 'for=203.0.113.1' }
  const headers = forwardRequestHeaders({ ...client }, client, { peerIp: '10.0.0.5', isPeerTrusted: true, clientIp: '203.0.113.1', host: 'www.example.com', proto: 'http', requestId: 'r-2' })
  assert.equal(headers['x-forwarded-for'], '203.0.113.1, 10.0.0.5')
  assert.equal(headers['x-forwarded-proto'], 'https')
  assert.equal(headers['x-forwarded-host'], 'shop.example')
  assert.equal(headers['x-real-ip'], '203.0.113.1')
  assert.equal(headers.forwarded, 'for=203.0.113.1, for=10.0.0.5')
})

test('client IP: the peer unless it is trusted; then the right-most untrusted hop of X-Forwarded-For', () => {
  const trusted = (address: string): boolean => address.startsWith('10.')
  const rows: Array<[string, string | undefined, string]> = [
    ['198.51.100.7', '1.2.3.4', '198.51.100.7'],
    ['10.0.0.5', undefined, '10.0.0.5'],
    ['10.0.0.5', '203.0.113.1', '203.0.113.1'],
    ['10.0.0.5', '1.2.3.4, 203.0.113.1, 10.0.0.9', '203.0.113.1'],
    ['10.0.0.5', '10.0.0.1, 10.0.0.2', '10.0.0.1'],
    ['10.0.0.5', 'garbage, 10.0.0.2', '10.0.0.2'],
    // Ports some proxies add, and bracketed IPv6: the address, not the end of the chain.
    ['10.0.0.5', '203.0.113.9:51234', '203.0.113.9'],
    ['10.0.0.5', '1.2.3.4, 10.0.0.9:8080', '1.2.3.4'],
    ['10.0.0.5', '[2001:db8::1]:443', '2001:db8::1'],
    ['10.0.0.5', '[2001:db8::1]', '2001:db8::1'],
    ['10.0.0.5', '999.1.1.1:80', '10.0.0.5'],
    ['10.0.0.5', '[not-v6]:80', '10.0.0.5']
  ]
  for (const [peer, chain, expected] of rows) assert.equal(clientIpOf(peer, chain, trusted), expected, `${peer} ${String(chain)}`)
})

test('forwarded response headers: hop-by-hop dropped, including those named by Connection; repeated ones kept apart, in order', () => {
  const raw = ['Connection', 'close, X-Internal', 'X-Internal', 's', 'Keep-Alive', 'timeout=9', 'Proxy-Authenticate', 'Basic', 'Trailer', 'x', 'Transfer-Encoding', 'chunked',
    'Content-Type', 'text/plain', 'Set-Cookie', 'a=1', 'Set-Cookie', 'b=2', 'X-Request-Id', 'theirs'].map((text) => Buffer.from(text, 'latin1'))
  assert.deepEqual(forwardResponseRawHeaders(raw), ['Content-Type', 'text/plain', 'Set-Cookie', 'a=1', 'Set-Cookie', 'b=2'])
  assert.deepEqual(forwardResponseRawHeaders([Buffer.from('connection'), Buffer.from('keep-alive'), Buffer.from('ETag'), Buffer.from('"x"')]), ['ETag', '"x"'])
})

test('x-request-id: a sane client value is kept, anything else replaced by a UUID', () => {
  assert.equal(requestIdOf('abc-123_x.y:z'), 'abc-123_x.y:z')
  for (const bad of [undefined, '', 'has space', 'x'.repeat(200), ['a', 'b'], 'quote"d']) {
    assert.match(requestIdOf(bad as string | undefined), /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/, String(bad))
  }
})
