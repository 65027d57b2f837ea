/** Upstreams that reset or die mid-response: clear answers, never a crash, nothing after them breaks. */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { ConsulLikeDnsServer } from '../helpers/dns-server.js'
import { Upstream } from '../helpers/upstream.js'
import { SpawnedGateway } from '../helpers/spawn-gateway.js'
import { send } from '../helpers/http.js'

test('resets before and during responses', async (t) => {
  const dns = await ConsulLikeDnsServer.start(t)
  const resetting = await Upstream.start(t, 'resetting')
  const healthy = await Upstream.start(t, 'healthy')
  resetting.behaviour = (request, response) => {
    if (request.url === '/stall') {
      response.writeHead(200, { 'content-type': 'text/plain', 'content-length': '100' })
      response.write('first half')
      return true
    }
    if (request.url === '/midway') {
      response.writeHead(200, { 'content-type': 'text/plain', 'content-length': '1000000' })
      response.write('x'.repeat(1000))
      setTimeout(() => response.socket?.resetAndDestroy(), 20)
      return true
    }
    response.socket?.resetAndDestroy()
    return true
  }
  dns.setService('_web._prod.service.consul', [{ address: '127.0.0.1', port: resetting.port, weight: 100 }, { address: '127.0.0.1', port: healthy.port, weight: 1 }])
  const gateway = await SpawnedGateway.start(t, `
listen: { http: "127.0.0.1:\${PORT}", admin: "127.0.0.1:\${ADMIN_PORT}" }
resolvers: { consul: { nameservers: ["${dns.address}"] } }
backends:
  web: { discovery: { resolver: consul, srv: _web._prod.service.consul }, outlier: { consecutiveFailures: 1000 }, timeouts: { response: 500ms } }
frontends:
  - { name: all, match: {}, backend: web }
`)
  const url = `${gateway.url}/`

  await t.test('a GET reset before any response is retried on another instance', async () => {
    const response = await send(url, { host: 'x' })
    assert.equal(response.status, 200)
    assert.equal(response.json().instance, 'healthy')
  })

  await t.test('a POST reset after it was sent is not retried: 502 upstream_error', async () => {
    let saw502 = false
    for (let round = 0; round < 5 && !saw502; round++) {
      const response = await send(url, { host: 'x', method: 'POST', body: 'payload', headers: { 'content-type': 'text/plain' } })
      if (response.status === 502) {
        saw502 = true
        assert.deepEqual(response.json(), { error: 'upstream_error' })
      }
    }
    assert.ok(saw502)
  })

  await t.test('a body that stalls longer than timeouts.response is cut, not held open for minutes', async () => {
    const started = Date.now()
    let cut = false
    for (let round = 0; round < 5 && !cut; round++) {
      try {
        const response = await send(`${gateway.url}/stall`, { host: 'x', agent: false, timeoutMs: 5000 })
        cut = response.body.length < 100
      } catch (error) {
        cut = (error as Error).message !== 'client timeout'
      }
    }
    assert.ok(cut, 'the stalled response was cut by the gateway')
    assert.ok(Date.now() - started < 5000)
  })

  await t.test('a reset in the middle of a response body cuts that response only', async () => {
    let sawCut = false
    for (let round = 0; round < 5 && !sawCut; round++) {
      try {
        const response = await send(`${gateway.url}/midway`, { host: 'x', agent: false })
        if (response.body.length < 1_000_000) sawCut = true
      } catch {
        sawCut = true
      }
    }
    assert.ok(sawCut, 'the client saw the response cut')
    // Logged with the status the client got and the instance's error, not as a client that left (499).
    const line = await gateway.waitForLog((entry) => entry.msg === 'request' && entry.path === '/midway' && entry.error !== undefined)
    assert.deepEqual([line.status, line.error], [200, 'SG_ERR_UPSTREAM_RESET'])
    const after = await send(url, { host: 'x' })
    assert.equal(after.status, 200, 'the gateway goes on serving')
    assert.equal(gateway.process.exitCode, null)
  })
})
