import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { ErrorCode, GatewayError, DnsError, ConfigError } from '../../src/errors.js'

test('docs/ERRORS.md has one row per code of the registry: its class and when it happens', () => {
  const rows = readFileSync('docs/ERRORS.md', 'utf8').split('\n').filter((line) => line.startsWith('| `SG_ERR_'))
  const documented = rows.map((row) => /^\| `(SG_ERR_[A-Z0-9_]+)` \| ([A-Za-z]+Error) \| (.{10,}) \|$/.exec(row))
  assert.deepEqual(rows.filter((_, index) => documented[index] === null), [], 'rows not of the shape | `CODE` | Class | when |')
  const codes = documented.map((match) => (match as RegExpExecArray)[1] as string)
  assert.equal(new Set(codes).size, codes.length, 'a code documented twice')
  const registered = Object.values(ErrorCode) as string[]
  assert.deepEqual(registered.filter((code) => !codes.includes(code)), [], 'codes missing from docs/ERRORS.md')
  assert.deepEqual(codes.filter((code) => !registered.includes(code)), [], 'documented codes not in src/errors.ts')
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
