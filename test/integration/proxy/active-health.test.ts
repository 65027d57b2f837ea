/** Active health checks against real instances: taken out on fall, back on rise, state kept across DNS refreshes. */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { ConsulLikeDnsServer } from '../../helpers/dns-server.js'
import { Upstream } from '../../helpers/upstream.js'
import { startInProcess } from '../../helpers/gateway.js'
import { send } from '../../helpers/http.js'

const WEB = '_web._prod.service.consul'

test('an instance failing its health check gets no traffic until it passes rise checks again', async (t) => {
  const dns = await ConsulLikeDnsServer.start(t)
  const sick = await Upstream.start(t, 'sick')
  const well = await Upstream.start(t, 'well')
  let isSick = false
  sick.behaviour = (request, response) => {
    if (request.url !== '/healthz') return false
    response.statusCode = isSick ? 503 : 200
    response.end()
    return true
  }
  dns.setService(WEB, [{ address: '127.0.0.1', port: sick.port }, { address: '127.0.0.1', port: well.port }])
  const { url, gateway } = await startInProcess(t, `
listen: { http: 127.0.0.1:0 }
resolvers: { consul: { nameservers: ["${dns.address}"], ttl: { min: 200ms, max: 1s } } }
backends:
  web: { discovery: { resolver: consul, srv: ${WEB} }, balance: round-robin, healthCheck: { path: /healthz, interval: 100ms, timeout: 50ms, rise: 2, fall: 2 } }
frontends:
  - { name: all, match: {}, backend: web }
`)
  const instances = async (count: number) => await Promise.all(Array.from({ length: count }, async () => String((await send(`${url}/`, { host: 'x' })).json().instance)))
  assert.ok((await instances(6)).includes('sick'))
  isSick = true
  const backend = gateway.state.registry.get('web')
  const deadline = Date.now() + 3000
  while (Date.now() < deadline && backend?.health.peek(`127.0.0.1:${sick.port}`)?.isFailingActiveCheck !== true) await new Promise((resolve) => setTimeout(resolve, 20))
  assert.deepEqual([...new Set(await instances(8))], ['well'])
  await new Promise((resolve) => setTimeout(resolve, 500))
  assert.deepEqual([...new Set(await instances(8))], ['well'], 'still out across DNS refreshes')
  isSick = false
  const back = Date.now() + 3000
  while (Date.now() < back && backend?.health.peek(`127.0.0.1:${sick.port}`)?.isFailingActiveCheck !== false) await new Promise((resolve) => setTimeout(resolve, 20))
  assert.ok((await instances(8)).includes('sick'))
})
