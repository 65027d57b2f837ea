/** Active health checks against real instances: taken out on fall, back on rise, state kept across DNS refreshes. */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { ConsulLikeDnsServer } from '../../helpers/dns-server.js'
import { Upstream } from '../../helpers/upstream.js'
import { startInProcess, until } from '../../helpers/gateway.js'
import { ManualClock } from '../../../src/util/clock.js'
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
  // The checker's rounds and discovery's reads run on a ManualClock: the test moves time, and only waits for the HTTP checks to land.
  // Each round waits for both instances' checks to land and be read: a check to the well instance still in flight
  // on a busy box when the test moves time would time out (CI saw both instances out once).
  const clock = new ManualClock()
  const { url, gateway } = await startInProcess(t, `
listen: { http: 127.0.0.1:0 }
resolvers: { consul: { nameservers: ["${dns.address}"], ttl: { min: 200ms, max: 1s } } }
backends:
  web: { discovery: { resolver: consul, srv: ${WEB} }, balance: round-robin, healthCheck: { path: /healthz, interval: 100ms, timeout: 100ms, rise: 2, fall: 2 } }
frontends:
  - { name: all, match: {}, backend: web }
`, { clock })
  const instances = async (count: number) => await Promise.all(Array.from({ length: count }, async () => String((await send(`${url}/`, { host: 'x' })).json().instance)))
  assert.ok((await instances(6)).includes('sick'))
  isSick = true
  const backend = gateway.state.registry.get('web')
  const isFailing = (): boolean | undefined => backend?.health.peek(`127.0.0.1:${sick.port}`)?.isFailingActiveCheck
  // fall 2: two rounds (interval 100ms ± 20%), each answered over real sockets.
  for (let round = 0; round < 2; round++) {
    const checks = sick.requests
    const wellChecks = well.requests
    await clock.advanceAndSettle(120)
    await until(() => sick.requests > checks && well.requests > wellChecks)
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  await until(() => isFailing() === true)
  assert.deepEqual([...new Set(await instances(8))], ['well'])
  const queries = dns.queries.length
  await clock.advanceAndSettle(500)
  await until(() => dns.queries.length > queries)
  assert.deepEqual([...new Set(await instances(8))], ['well'], 'still out across DNS refreshes')
  isSick = false
  for (let round = 0; round < 3 && isFailing() !== false; round++) {
    const checks = sick.requests
    await clock.advanceAndSettle(120)
    await until(() => sick.requests > checks)
  }
  await until(() => isFailing() === false)
  assert.ok((await instances(8)).includes('sick'))
})
