/**
 * One process is the control plane and one data plane joined by the
 * in-memory channel (cluster/in-process.ts): the same messages as a cluster.
 * The data plane's backend is its own ReplicaBackend, never the control
 * plane's ControlBackend; the control plane decides an ejection and the data plane sees it
 * through a health message, before the next request.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { ConsulLikeDnsServer } from '../../helpers/dns-server.js'
import { Upstream, type UpstreamReply } from '../../helpers/upstream.js'
import { startInProcess } from '../../helpers/gateway.js'
import { ControlBackend } from '../../../src/upstream/control-backend.js'
import { ReplicaBackend } from '../../../src/upstream/replica-backend.js'
import { send } from '../../helpers/http.js'

const WEB = '_web._prod.service.consul'

test('one process: the data plane has its own backends, fed by messages; an ejection the control plane decides reaches it before the next request', async (t) => {
  const dns = await ConsulLikeDnsServer.start(t)
  const bad = await Upstream.start(t, 'bad')
  const good = await Upstream.start(t, 'good')
  bad.behaviour = (_request, response) => { response.statusCode = 500; response.end('{}'); return true }
  dns.setService(WEB, [{ address: '127.0.0.1', port: bad.port }, { address: '127.0.0.1', port: good.port }])
  const { gateway, roles, url } = await startInProcess(t, `
listen: { http: 127.0.0.1:0 }
resolvers: { consul: { nameservers: ["${dns.address}"] } }
backends:
  web: { discovery: { resolver: consul, srv: ${WEB} }, balance: round-robin, outlier: { consecutiveFailures: 1, ejectFor: 30s } }
frontends:
  - { name: all, match: {}, backend: web }
`)
  const control = gateway.state.registry.named('web')
  const data = roles.inProcess.gateway.state.registry.named('web')
  assert.ok(control !== undefined && data !== undefined)
  assert.notEqual(control, data, 'two Backend objects: the control plane\'s and the data plane\'s')
  assert.ok(control instanceof ControlBackend, 'the control plane decides health')
  assert.ok(data instanceof ReplicaBackend, 'the data plane follows the control plane\'s facts')
  assert.deepEqual(data.set.instances.map((instance) => instance.key).sort(), control.set.instances.map((instance) => instance.key).sort(), 'the set came as a message')
  const seen: string[] = []
  for (let round = 0; round < 6; round++) {
    const response = await send(`${url}/`, { host: 'www.example.com' })
    seen.push(response.status === 200 ? (response.json() as unknown as UpstreamReply).instance : `status ${response.status}`)
  }
  assert.equal(seen.filter((outcome) => outcome === 'status 500').length, 1, `one 500, then the instance is out: ${seen.join(',')}`)
  const key = `127.0.0.1:${bad.port}`
  const now = performance.now()
  assert.equal(control.health.peek(key)?.isEjected(now), true, 'decided by the control plane')
  assert.equal(data.health.peek(key)?.isEjected(now), true, 'applied by the data plane')
})
