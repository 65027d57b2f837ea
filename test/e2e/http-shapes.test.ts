/** Request and response shapes a gateway must pass through unchanged: HEAD, chunked bodies, big downloads, odd paths. */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { request as httpRequest } from 'node:http'
import { createHash } from 'node:crypto'
import { ConsulLikeDnsServer, freePort } from '../helpers/dns-server.js'
import { Upstream } from '../helpers/upstream.js'
import { SpawnedGateway } from '../helpers/spawn-gateway.js'
import { send } from '../helpers/http.js'

test('HTTP shapes through srvgate', async (t) => {
  const dns = await ConsulLikeDnsServer.start(t)
  const upstream = await Upstream.start(t, 'shapes')
  const big = Buffer.alloc(20 * 1024 * 1024)
  for (let index = 0; index < big.length; index += 4096) big[index] = index % 251
  upstream.behaviour = (request, response, body) => {
    if (request.url === '/big') {
      response.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(big.length) })
      response.end(big)
      return true
    }
    if (request.url === '/echo-body') {
      response.writeHead(200, { 'content-type': 'application/json' })
      response.end(JSON.stringify({ sha: createHash('sha256').update(body).digest('hex'), te: request.headers['transfer-encoding'] ?? null }))
      return true
    }
    return false
  }
  dns.setService('_web._prod.service.consul', [{ address: '127.0.0.1', port: await freePort(), weight: 100 }, { address: '127.0.0.1', port: upstream.port, weight: 1 }])
  const gateway = await SpawnedGateway.start(t, `
listen: { http: "127.0.0.1:\${PORT}", admin: "127.0.0.1:\${ADMIN_PORT}" }
resolvers: { consul: { nameservers: ["${dns.address}"] } }
backends:
  web: { discovery: { resolver: consul, srv: _web._prod.service.consul }, outlier: { consecutiveFailures: 1000 } }
frontends:
  - { name: all, match: {}, backend: web }
`)

  await t.test('HEAD: headers only', async () => {
    const response = await send(`${gateway.url}/`, { host: 'x', method: 'HEAD' })
    assert.equal(response.status, 200)
    assert.equal(response.body, '')
  })

  await t.test('a 20 MB download arrives whole', async () => {
    const received = await new Promise<Buffer>((resolve, reject) => {
      httpRequest({ host: '127.0.0.1', port: gateway.port, path: '/big', headers: { host: 'x' } }, (response) => {
        const chunks: Buffer[] = []
        response.on('data', (chunk: Buffer) => chunks.push(chunk))
        response.on('end', () => resolve(Buffer.concat(chunks)))
      }).on('error', reject).end()
    })
    assert.equal(received.length, big.length)
    assert.ok(received.equals(big))
  })

  await t.test('a chunked upload (no content-length) fails over from a dead instance whole', async () => {
    const payload = Buffer.alloc(2 * 1024 * 1024, 9)
    const result = await new Promise<{ status: number, body: string }>((resolve, reject) => {
      const req = httpRequest({ host: '127.0.0.1', port: gateway.port, path: '/echo-body', method: 'POST', headers: { host: 'x', 'content-type': 'application/octet-stream', 'transfer-encoding': 'chunked' } }, (response) => {
        let body = ''
        response.on('data', (chunk: Buffer) => { body += chunk.toString() })
        response.on('end', () => resolve({ status: response.statusCode ?? 0, body }))
      })
      req.on('error', reject)
      for (let offset = 0; offset < payload.length; offset += 64 * 1024) req.write(payload.subarray(offset, offset + 64 * 1024))
      req.end()
    })
    assert.equal(result.status, 200, result.body)
    assert.equal((JSON.parse(result.body) as { sha: string }).sha, createHash('sha256').update(payload).digest('hex'))
  })

  await t.test('paths and queries pass through as sent; traversal is refused', async () => {
    const odd = await send(`${gateway.url}/a%20b/%E2%9C%93?q=a%26b&x=1&x=2`, { host: 'x' })
    assert.equal(odd.status, 200)
    assert.equal(odd.json().url, '/a%20b/%E2%9C%93?q=a%26b&x=1&x=2')
    const traversal = await send(`${gateway.url}/a/../../etc/passwd`, { host: 'x' })
    assert.ok(traversal.status === 400 || (traversal.status === 200 && !String(traversal.json().url).includes('..')), `${traversal.status} ${traversal.body}`)
  })
})
