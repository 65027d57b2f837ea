import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { ErrorCode, GatewayError, DnsError, ConfigError } from '../../src/errors.js'

test('docs/ERRORS.md lists exactly the codes of the registry', () => {
  const documented = new Set(readFileSync('docs/ERRORS.md', 'utf8').match(/SG_ERR_[A-Z0-9_]+/g) ?? [])
  const registered = new Set(Object.values(ErrorCode))
  assert.deepEqual([...registered].filter((code) => !documented.has(code)), [], 'codes missing from docs/ERRORS.md')
  assert.deepEqual([...documented].filter((code) => !registered.has(code as ErrorCode)), [], 'documented codes not in src/errors.ts')
})

test('codes are unique and follow SG_ERR_<AREA>_<WHAT>', () => {
  const codes = Object.values(ErrorCode)
  assert.equal(new Set(codes).size, codes.length)
  for (const [key, code] of Object.entries(ErrorCode)) assert.equal(code, `SG_ERR_${key}`)
})

test('area errors are GatewayErrors with their code and structured fields', () => {
  const dns = new DnsError(ErrorCode.DNS_SERVFAIL, 'x', { nameserver: '127.0.0.1:53', rcode: 2 })
  assert.ok(dns instanceof GatewayError)
  assert.equal(dns.code, 'SG_ERR_DNS_SERVFAIL')
  assert.equal(dns.nameserver, '127.0.0.1:53')
  assert.equal(dns.rcode, 2)
  const config = new ConfigError(ErrorCode.CONFIG_INVALID, [{ path: 'a.b', message: 'is required' }, { path: 'c', message: 'bad' }])
  assert.equal(config.message, 'a.b: is required\nc: bad')
  assert.equal(config.issues.length, 2)
})
