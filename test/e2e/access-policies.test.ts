/**
 * A frontend's access policies (issue 24), through the CLI, with real
 * parts: an htpasswd file made by Apache's htpasswd -B, a real auth service
 * on loopback, two workers. A refused request is never forwarded (and, on a
 * templated frontend, asks no DNS), gets 401 with its challenge or 403, and
 * its access line says why without the password; WebSocket handshakes are
 * refused alike; a reload reads the users file again, and a broken one
 * refuses the reload with the old users still served.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { createServer, type IncomingMessage } from 'node:http'
import { mkdtempSync, writeFileSync } from 'node:fs'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ConsulLikeDnsServer } from '../helpers/dns-server.js'
import { Upstream, type UpstreamReply } from '../helpers/upstream.js'
import { SpawnedGateway } from '../helpers/spawn-gateway.js'
import { webBehindDns } from '../helpers/web-behind-dns.js'
import { rawHandshake as handshake, send } from '../helpers/http.js'
import { srvgate } from '../helpers/cli.js'

/** `htpasswd -B` as an operator runs it: bcrypt ($2y$), cost 5 to keep the test quick. */
function htpasswd (file: string, user: string, password: string, create = false): void {
  execFileSync('htpasswd', [...(create ? ['-c'] : []), '-b', '-B', '-C', '5', file, user, password], { stdio: 'ignore' })
}

const basic = (credentials: string): string => `Basic ${Buffer.from(credentials).toString('base64')}`

test('basicAuth and allow/deny: refused requests get 401 (challenge, {env} realm) or 403, are never forwarded nor resolved, and are logged without the password; a reload reads the users file again', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'srvgate-access-'))
  const users = join(dir, 'preview.htpasswd')
  htpasswd(users, 'alice', 'wonderland', true)
  htpasswd(users, 'bob', 'builder')
  const dns = await ConsulLikeDnsServer.start(t)
  const upstream = await Upstream.start(t, 'web')
  const record = [{ address: '127.0.0.1', port: upstream.port }]
  dns.setService('_web._tcp.service.consul', record)
  dns.setService('_web._pr-7.service.consul', record)
  const gateway = await SpawnedGateway.start(t, `
listen: { http: "127.0.0.1:\${PORT}", admin: "127.0.0.1:\${ADMIN_PORT}" }
trustedProxies: [127.0.0.1]
resolvers: { consul: { nameservers: ["${dns.address}"], ttl: { min: 250ms, max: 1s } } }
backends: { web: { discovery: { resolver: consul, srv: _web._tcp.service.consul } } }
frontends:
  - name: preview
    match: { host: "{env}.preview.example.com" }
    env: { pattern: "pr-[0-9]+" }
    backend: { template: "web-{env}", discovery: { resolver: consul, srv: "_web._{env}.service.consul" } }
    access: { basicAuth: { realm: "preview {env}", usersFile: "${users}" } }
  - name: office
    match: { host: office.example.com }
    backend: web
    access: { allow: [10.0.0.0/8, "2001:db8::/32"], deny: [10.6.6.0/24] }
  - { name: plain, match: {}, backend: web }
`, { workers: 2 })
  const preview = 'pr-7.preview.example.com'
  for (const [authorization, why] of [[undefined, 'basicAuth: no credentials'], [basic('alice:guessed-wrong'), 'basicAuth: unknown user or wrong password'], [basic('mallory:wonderland'), 'basicAuth: unknown user or wrong password'], ['Basic %%%', 'basicAuth: malformed credentials']] as const) {
    const refused = await send(`${gateway.url}/x?token=1`, { host: preview, headers: authorization === undefined ? {} : { authorization } })
    assert.equal(refused.status, 401, why)
    assert.equal(refused.headers['www-authenticate'], 'Basic realm="preview pr-7", charset="UTF-8"')
    assert.deepEqual(refused.json(), { error: 'unauthorized' })
    const line = await gateway.waitForLog((entry) => entry.msg === 'request' && entry.requestId === refused.headers['x-request-id'])
    assert.deepEqual([line.status, line.frontend, line.error, line.errorDetail], [401, 'preview', 'SG_ERR_AUTH_REQUIRED', why])
    assert.ok(!JSON.stringify(line).includes('guessed-wrong') && !JSON.stringify(line).includes('wonderland'), 'no password in the access line')
  }
  assert.equal(upstream.requests, 0, 'nothing forwarded')
  assert.equal(dns.queries.filter((query) => query.name.includes('pr-7')).length, 0, 'no DNS asked for an env nobody got into')
  const ws = await handshake(gateway.port, preview)
  assert.match(ws, /^HTTP\/1\.1 401 Unauthorized\r\n/)
  assert.match(ws, /\r\nwww-authenticate: Basic realm="preview pr-7", charset="UTF-8"\r\n/)

  const allowed = await send(`${gateway.url}/x`, { host: preview, headers: { authorization: basic('alice:wonderland') } })
  assert.equal(allowed.status, 200)
  assert.equal((allowed.json() as unknown as UpstreamReply).headers.authorization, basic('alice:wonderland'), 'forwarded as sent (headers.request.remove can drop it)')
  // Each worker checks once, then remembers: a run of requests passes on both.
  for (let index = 0; index < 6; index++) assert.equal((await send(`${gateway.url}/x`, { host: preview, headers: { authorization: basic('bob:builder') }, agent: false })).status, 200)

  const office = async (client: string): Promise<number> => (await send(`${gateway.url}/`, { host: 'office.example.com', headers: { 'x-forwarded-for': client } })).status
  assert.deepEqual([await office('10.1.2.3'), await office('2001:db8::7'), await office('10.6.6.6'), await office('192.0.2.1')], [200, 200, 403, 403])
  const denied = await gateway.waitForLog((entry) => entry.msg === 'request' && entry.status === 403 && entry.clientIp === '10.6.6.6')
  assert.equal(denied.errorDetail, 'access.deny: 10.6.6.6 is in 10.6.6.0/24')
  assert.equal((await send(`${gateway.url}/`, { host: 'other.example.com' })).status, 200, 'a frontend without access is open')

  // A reload reads the file again: alice's new password passes, the old one no longer does.
  htpasswd(users, 'alice', 'looking-glass')
  assert.equal((await send(`${gateway.adminUrl}/admin/reload`, { method: 'POST' })).status, 200)
  for (let index = 0; index < 4; index++) {
    assert.equal((await send(`${gateway.url}/x`, { host: preview, headers: { authorization: basic('alice:wonderland') }, agent: false })).status, 401)
    assert.equal((await send(`${gateway.url}/x`, { host: preview, headers: { authorization: basic('alice:looking-glass') }, agent: false })).status, 200)
  }
  // A users file srvgate cannot use refuses the reload; the users before it still get in.
  writeFileSync(users, 'alice:$apr1$abcdefgh$0123456789012345678901\n')
  const refusedReload = await send(`${gateway.adminUrl}/admin/reload`, { method: 'POST' })
  assert.notEqual(refusedReload.status, 200)
  assert.match(refusedReload.body, /alice's hash is not bcrypt/)
  assert.equal((await send(`${gateway.url}/x`, { host: preview, headers: { authorization: basic('bob:builder') } })).status, 200)
})

test('forwardAuth: a 2xx lets the request through with copyHeaders (a client\'s own X-User never reaches the instance); any other answer is the client\'s; an auth service that is down is 503', async (t) => {
  const asked: IncomingMessage[] = []
  const auth = createServer((request, response) => {
    asked.push(request)
    if (request.headers.authorization === 'Bearer good') {
      response.setHeader('x-user', 'alice')
      response.end()
      return
    }
    if (request.headers.authorization === 'Bearer anonymous') {
      response.statusCode = 204
      response.end()
      return
    }
    response.statusCode = 401
    response.setHeader('www-authenticate', 'Bearer realm="shop"')
    response.setHeader('content-type', 'application/json')
    response.end('{"login":"https://login.example.com"}')
  })
  await new Promise<void>((resolve) => auth.listen(0, '127.0.0.1', resolve))
  t.after(() => { auth.closeAllConnections(); auth.close() })
  const authPort = (auth.address() as AddressInfo).port
  const { upstream, config } = await webBehindDns(t)
  const gateway = await SpawnedGateway.start(t, config(`
frontends:
  - name: shop
    match: { host: shop.example.com }
    backend: web
    access: { forwardAuth: { url: "http://127.0.0.1:${authPort}/verify", copyHeaders: [X-User], timeout: 1s } }
  - name: down
    match: { host: down.example.com }
    backend: web
    access: { forwardAuth: { url: "http://127.0.0.1:1/verify" } }
`), { workers: 2 })
  const through = await send(`${gateway.url}/orders?id=7`, { host: 'shop.example.com', method: 'POST', body: 'order', headers: { authorization: 'Bearer good', 'x-user': 'mallory' } })
  assert.equal(through.status, 200)
  const seen = through.json() as unknown as UpstreamReply
  assert.deepEqual([seen.headers['x-user'], seen.method, seen.url, seen.bodyBytes], ['alice', 'POST', '/orders?id=7', 5])
  const question = asked.at(-1) as IncomingMessage
  assert.deepEqual([question.method, question.url, question.headers['x-forwarded-method'], question.headers['x-forwarded-uri'], question.headers['x-forwarded-host']], ['GET', '/verify', 'POST', '/orders?id=7', 'shop.example.com'])
  const anonymous = await send(`${gateway.url}/`, { host: 'shop.example.com', headers: { authorization: 'Bearer anonymous', 'x-user': 'mallory' } })
  assert.equal((anonymous.json() as unknown as UpstreamReply).headers['x-user'], undefined, 'the answer had no X-User: the client\'s is removed')

  const requestsBefore = upstream.requests
  const refused = await send(`${gateway.url}/orders`, { host: 'shop.example.com', headers: { authorization: 'Bearer bad' } })
  assert.deepEqual([refused.status, refused.headers['www-authenticate'], refused.headers['content-type'], refused.body], [401, 'Bearer realm="shop"', 'application/json', '{"login":"https://login.example.com"}'])
  assert.ok(typeof refused.headers['x-request-id'] === 'string')
  const line = await gateway.waitForLog((entry) => entry.msg === 'request' && entry.requestId === refused.headers['x-request-id'])
  assert.deepEqual([line.status, line.error, line.errorDetail], [401, 'SG_ERR_AUTH_REFUSED', 'forwardAuth answered 401'])
  const ws = await handshake(gateway.port, 'shop.example.com', 'Authorization: Bearer bad\r\n')
  assert.match(ws, /^HTTP\/1\.1 401 Unauthorized\r\n/)
  assert.match(ws, /\{"login":"https:\/\/login\.example\.com"\}$/)

  const down = await send(`${gateway.url}/`, { host: 'down.example.com' })
  assert.deepEqual([down.status, down.json(), down.headers['retry-after']], [503, { error: 'auth_unavailable' }, '1'])
  assert.equal(upstream.requests, requestsBefore, 'nothing refused was forwarded')
})

test('srvgate check refuses a users file that is not bcrypt, naming file and line (exit 1)', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'srvgate-access-check-'))
  writeFileSync(join(dir, 'users'), '# team\nalice:{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=\n')
  const file = join(dir, 'gateway.yaml')
  writeFileSync(file, `
listen: { http: "127.0.0.1:8080" }
resolvers: { consul: { nameservers: ["127.0.0.1:8600"] } }
backends: { web: { discovery: { resolver: consul, srv: _web._tcp.service.consul } } }
frontends: [ { name: all, match: {}, backend: web, access: { basicAuth: { usersFile: "${join(dir, 'users')}" } } } ]
`)
  const result = await srvgate(['check', '-c', file])
  assert.equal(result.code, 1)
  assert.match(result.stderr, /frontends\[0\]\.access\.basicAuth\.usersFile: .*users:2: alice's hash is not bcrypt \(make it with htpasswd -B\)/)
})

test('what an attacker tried: other spellings of a protected prefix, a 600 from the auth service, a 2xx that breaks off, forged address headers, X_User and Connection tricks', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'srvgate-access-attack-'))
  const users = join(dir, 'users')
  htpasswd(users, 'alice', 'wonderland', true)
  const asked: IncomingMessage[] = []
  const auth = createServer((request, response) => {
    asked.push(request)
    if (request.url === '/s600') {
      // Node refuses to write a status above 599: the bytes go out as a broken service would send them.
      response.socket?.end('HTTP/1.1 600 Weird\r\ncontent-length: 0\r\n\r\n')
      return
    }
    if (request.url === '/breaks') {
      response.writeHead(200, { 'content-length': '100' })
      response.write('x')
      setTimeout(() => { response.socket?.resetAndDestroy() }, 20)
      return
    }
    response.setHeader('x-user', 'alice')
    response.end()
  })
  await new Promise<void>((resolve) => auth.listen(0, '127.0.0.1', resolve))
  t.after(() => { auth.closeAllConnections(); auth.close() })
  const authUrl = `http://127.0.0.1:${(auth.address() as AddressInfo).port}`
  const { upstream, config } = await webBehindDns(t)
  const gateway = await SpawnedGateway.start(t, config(`
frontends:
  - { name: admin, match: { host: static.example.com, pathPrefix: /admin/ }, backend: web, access: { basicAuth: { usersFile: "${users}" } } }
  - { name: public, match: { host: static.example.com }, backend: web }
  - { name: weird, match: { host: weird.example.com }, backend: web, access: { forwardAuth: { url: "${authUrl}/s600" } } }
  - { name: breaks, match: { host: breaks.example.com }, backend: web, access: { forwardAuth: { url: "${authUrl}/breaks" } } }
  - { name: shop, match: { host: shop.example.com }, backend: web, access: { forwardAuth: { url: "${authUrl}/ok", copyHeaders: [X-User, X-Role] } } }
`), { workers: 1 })
  for (const path of ['/admin/secret.txt', '/%61dmin/secret.txt', '/./admin/secret.txt', '//admin/secret.txt', '/admin//secret.txt']) {
    assert.equal((await send(`${gateway.url}${path}`, { host: 'static.example.com' })).status, 401, path)
  }
  for (const path of ['/admin%2fsecret.txt', '/x/..%2fadmin/secret.txt', '/admin%5csecret.txt']) {
    assert.equal((await send(`${gateway.url}${path}`, { host: 'static.example.com' })).status, 400, path)
  }
  // The WebSocket path does its own parsing (no fastify before it): the same form, the same refusals.
  for (const path of ['/%%36%31dmin/secret.txt', '/pub/%2%46..%2%46admin/secret.txt', '/admin%2fsecret.txt']) {
    assert.match(await handshake(gateway.port, 'static.example.com', '', path), /^HTTP\/1\.1 400 /, path)
  }
  assert.match(await handshake(gateway.port, 'static.example.com', '', '/%61dmin/chat'), /^HTTP\/1\.1 401 /)
  const undecodable = await send(`${gateway.url}/%zz`, { host: 'static.example.com' })
  assert.deepEqual([undecodable.status, undecodable.json()], [400, { error: 'bad_request' }], 'our shape, not fastify\'s echo of the path')
  assert.ok(typeof undecodable.headers['x-request-id'] === 'string')
  const withPassword = await send(`${gateway.url}/%61dmin/./secret.txt`, { host: 'static.example.com', headers: { authorization: basic('alice:wonderland') } })
  assert.equal((withPassword.json() as unknown as UpstreamReply).url, '/admin/secret.txt', 'the instance gets the path that was checked')
  assert.equal(upstream.requests, 1)

  for (let index = 0; index < 3; index++) {
    const weird = await send(`${gateway.url}/`, { host: 'weird.example.com' })
    assert.deepEqual([weird.status, weird.json()], [503, { error: 'auth_unavailable' }], 'a status HTTP has no class for is a broken service, and the worker lives')
  }
  assert.equal((await send(`${gateway.url}/`, { host: 'breaks.example.com' })).status, 503, 'a 2xx whose body breaks off is no yes')
  assert.equal(upstream.requests, 1)

  const tricked = await send(`${gateway.url}/`, { host: 'shop.example.com', headers: { 'x-real-ip': '10.1.1.1', forwarded: 'for=10.1.1.1', 'true-client-ip': '10.1.1.1', x_user: 'admin', x_role: 'root', connection: 'x-user, x-role' } })
  assert.equal(tricked.status, 200)
  const question = asked.at(-1) as IncomingMessage
  assert.deepEqual([question.headers['x-real-ip'], question.headers.forwarded, question.headers['true-client-ip'], question.headers['x-forwarded-for']], [undefined, undefined, undefined, '127.0.0.1'], 'the auth service hears srvgate\'s address only')
  const seen = (tricked.json() as unknown as UpstreamReply).headers
  assert.deepEqual([seen['x-user'], seen['x-role'], seen.x_user, seen.x_role], ['alice', undefined, undefined, undefined], 'the service\'s X-User arrives despite Connection; look-alikes with underscores do not')
})
