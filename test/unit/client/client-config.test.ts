import { test } from 'node:test'
import assert from 'node:assert/strict'
import { compileClientConfig } from '../../../src/client/client-config.js'
import { ConfigError } from '../../../src/errors.js'

test('client configuration: the gateway\'s schema and defaults for resolvers and services; errors name services.* paths', () => {
  const config = compileClientConfig({
    resolvers: { consul: { nameservers: ['127.0.0.1:8600'] } },
    services: { web: { discovery: { resolver: 'consul', srv: '_web._prod.service.consul' }, balance: 'least-request' } }
  })
  const web = config.backends.get('web')
  assert.equal(web?.balance, 'least-request')
  assert.equal(web?.retry.attempts, 2, 'the gateway\'s default')
  assert.equal(config.resolvers.get('consul')?.ttl.minMs, 1000)

  assert.throws(() => compileClientConfig({
    resolvers: { consul: { nameservers: ['127.0.0.1:8600'] } },
    services: { web: { discovery: { resolver: 'dc9', srv: '_web.service.consul' }, balance: 'fastest' } }
  }), (error: unknown) => {
    assert.ok(error instanceof ConfigError)
    assert.deepEqual(error.issues.map((issue) => issue.path).sort(), ['services.web.balance', 'services.web.discovery.resolver'])
    return true
  })
})
