/** /readyz answers 200 only once the gateway is warm and every listener answers (issue: ready before the DNS face). */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { ConsulLikeDnsServer } from '../../helpers/dns-server.js'
import { singleProcess } from '../../../src/roles.js'
import { loadConfigText } from '../../../src/config/load.js'

test('ready needs both: the first resolutions done, and the word that every listener is up; draining ends it', async (t) => {
  const dns = await ConsulLikeDnsServer.start(t)
  dns.setService('_web._prod.service.consul', [{ address: '127.0.0.1', port: 9 }])
  const text = `
listen: { http: 127.0.0.1:0 }
resolvers: { consul: { nameservers: ["${dns.address}"] } }
backends: { web: { discovery: { resolver: consul, srv: _web._prod.service.consul } } }
frontends: [ { name: all, match: {}, backend: web } ]
`
  const gateway = await singleProcess(loadConfigText(text, {}))
  t.after(async () => { await gateway.close() })
  const readyz = async (): Promise<number> => (await gateway.admin.inject({ url: '/readyz' })).statusCode
  assert.equal(await readyz(), 503, 'cold')
  await gateway.start()
  assert.equal(gateway.control.isReady, false, 'warm, but no listener has been said to answer yet')
  assert.equal(await readyz(), 503)
  await gateway.data.app.listen({ host: '127.0.0.1', port: 0 })
  gateway.control.setListening()
  assert.equal(gateway.control.isReady, true)
  assert.equal(await readyz(), 200)
  gateway.control.setDraining()
  assert.equal(await readyz(), 503)
})
