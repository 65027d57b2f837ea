import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseConfigText } from '../../../src/config/load.js'
import { readConfigFile } from '../../../src/config/load-file.js'
import { ConfigError, type ConfigIssue } from '../../../src/errors.js'

function issuesOf (run: () => unknown): readonly ConfigIssue[] {
  try {
    run()
  } catch (error) {
    assert.ok(error instanceof ConfigError, `expected ConfigError, got ${String(error)}`)
    assert.equal(error.code, 'SG_ERR_CONFIG_INVALID')
    return error.issues
  }
  assert.fail('the configuration was accepted')
}

// Schema-valid throughout: every problem is one compiling finds.
const TLS_AND_MORE = `listen:
  https: 127.0.0.1:8443
resolvers:
  consul: { nameservers: [127.0.0.1:8600], ttl: { min: 10s, max: 1s } }
backends:
  web: { discovery: { resolver: consul, srv: _web._tcp.consul }, balance: hash }
frontends:
  - { name: all, match: {}, backend: missing }
  - { name: all, match: { host: a.*.example.com }, backend: web }
dns:
  listen: [127.0.0.1:8443]
  zone: srvgate.internal
  ttl: 0s
  names: { web: { backend: nowhere } }
`

test('one pass: a missing tls block is reported with every other issue of the file, each with its path and line', () => {
  const issues = issuesOf(() => parseConfigText(TLS_AND_MORE, {}))
  assert.deepEqual(issues.map(({ path, message, line }) => `${path}: ${message} (${String(line)})`), [
    'frontends[0].backend: unknown backend "missing" (known: web) (8)',
    'resolvers.consul.ttl: min must not be greater than max (4)',
    'backends.web.hashOn: is required when balance is hash (6)',
    'frontends[1].name: duplicates the frontend name "all" (9)',
    'frontends[1].match.host: * is only allowed as the first label (*.example.com) (9)',
    'tls: is required when listen.https is set (tls.certificates) (1)',
    'dns.ttl: must be at least 1s (DNS TTLs are whole seconds; 0 would defeat caching) (13)',
    'dns.names.web.backend: unknown backend "nowhere" (known: web) (14)',
    'dns.listen[0]: same address as listen.https (127.0.0.1:8443) (11)'
  ])
})

test('one pass: the checks outside the file, nameserver host names and CA files, are reported together', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'srvgate-one-pass-'))
  const file = join(dir, 'gateway.yaml')
  writeFileSync(join(dir, 'not-a-ca.pem'), 'not PEM')
  writeFileSync(file, `listen: { http: 127.0.0.1:8080 }
resolvers:
  consul: { nameservers: [consul.invalid:8600] }
backends:
  web: { discovery: { resolver: consul, srv: _web._tcp.consul }, tls: { serverName: web.internal, ca: ${join(dir, 'not-a-ca.pem')} } }
`)
  const lookup = async (host: string): Promise<string> => { throw Object.assign(new Error(`no ${host}`), { code: 'ENOTFOUND' }) }
  await assert.rejects(readConfigFile(file, {}, lookup), (error: unknown) => {
    assert.ok(error instanceof ConfigError)
    assert.deepEqual(error.issues.map((issue) => issue.path), ['resolvers.consul.nameservers[0]', 'backends.web.tls.ca'])
    assert.match(error.message, /resolvers\.consul\.nameservers\[0\]: cannot resolve the host name "consul\.invalid": ENOTFOUND/)
    assert.match(error.message, /backends\.web\.tls\.ca: .*not-a-ca\.pem is not a readable PEM certificate/)
    return true
  })
})
