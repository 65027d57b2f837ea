/** Rolling replacement with BIND9 as the SRV source, records changed live with nsupdate. */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { BindServer, ZONE } from '../helpers/bind-server.js'
import { Upstream } from '../helpers/upstream.js'
import { SpawnedGateway } from '../helpers/spawn-gateway.js'
import { load, send } from '../helpers/http.js'
import { replaceEveryInstanceInBind } from '../helpers/rolling.js'

const WEB = `_web._tcp.${ZONE}`
const sleep = async (ms: number) => { await new Promise((resolve) => setTimeout(resolve, ms)) }

test('BIND + nsupdate: every instance replaced under load, 0 failed requests', async (t) => {
  const upstreams = await Promise.all([0, 1].map(async (index) => await Upstream.start(t, `old${index}`)))
  const bind = await BindServer.start(t, upstreams.flatMap((upstream) => [
    `${WEB}. 0 IN SRV 1 1 ${upstream.port} ${upstream.name}.${ZONE}.`,
    `${upstream.name} 0 IN A 127.0.0.1`
  ]))
  const gateway = await SpawnedGateway.start(t, `
listen: { http: "127.0.0.1:\${PORT}", admin: "127.0.0.1:\${ADMIN_PORT}" }
resolvers:
  bind: { nameservers: ["${bind.address}", "${bind.address6}"], ttl: { min: 250ms, max: 1s }, timeout: 500ms }
backends:
  web: { discovery: { resolver: bind, srv: ${WEB} } }
frontends:
  - { name: all, match: {}, backend: web }
`)
  const get = async () => await send(`${gateway.url}/`, { host: 'www.example.com' })
  let isDone = false
  const running = load(get, { concurrency: 6, until: () => isDone, maxRequests: 50_000 })
  const replacements = await replaceEveryInstanceInBind(t, bind, WEB, upstreams)
  await sleep(1000)
  isDone = true
  const result = await running
  assert.deepEqual(result.failures, [], `${result.failures.length} of ${result.total} failed`)
  for (const next of replacements) assert.ok(next.requests > 0, `${next.name} got traffic`)
  assert.ok(result.total > 100)
})
