/** `srvgate check` and `srvgate resolve` as a person (or a script) runs them. */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Packet } from 'dns2'
import { ConsulLikeDnsServer, freePort } from '../helpers/dns-server.js'
import { manyInstances } from '../helpers/resolver.js'
import { srvgate } from '../helpers/cli.js'

const WEB = '_web._prod.service.consul'

function tempFile (name: string, text: string): string {
  const path = join(mkdtempSync(join(tmpdir(), 'srvgate-cli-')), name)
  writeFileSync(path, text)
  return path
}

test('srvgate --help lists the commands; every command has --help', async () => {
  const help = await srvgate(['--help'])
  assert.equal(help.code, 0)
  assert.match(help.stdout, /check +validate a configuration file/)
  assert.match(help.stdout, /resolve +show what the resolver sees/)
  for (const command of ['check', 'resolve']) {
    const result = await srvgate([command, '--help'])
    assert.equal(result.code, 0, command)
    assert.match(result.stdout, new RegExp(`^Usage: srvgate ${command}`))
    assert.match(result.stdout, /Exit codes:/)
  }
})

test('srvgate --version is the package version', async () => {
  const { version } = JSON.parse(readFileSync('package.json', 'utf8')) as { version: string }
  const result = await srvgate(['--version'])
  assert.equal(result.code, 0)
  assert.equal(result.stdout.trim(), `srvgate ${version}`)
})

test('usage errors exit 2 with the usage line', async () => {
  for (const args of [['frobnicate'], ['check'], ['resolve'], ['resolve', 'a', '--type', 'MX'], ['check', '--bogus'], []]) {
    const result = await srvgate(args)
    assert.equal(result.code, 2, args.join(' '))
    assert.ok(result.stderr.length > 0 || result.stdout.includes('Usage'), args.join(' '))
  }
})

test('srvgate demo --churn-every says why a duration is wrong, as check does', async () => {
  const result = await srvgate(['demo', '--churn-every', '30m1h'])
  assert.equal(result.code, 2)
  assert.match(result.stderr, /--churn-every must be a duration of at least 100ms, not "30m1h": 30m1h has h after a smaller unit \(largest first: 1h30m, not 30m1h\)/)
})

test('srvgate check: a valid file prints a one-line summary and exits 0', async () => {
  const result = await srvgate(['check', '-c', 'config/gateway.yaml'])
  assert.equal(result.code, 0)
  assert.equal(result.stdout.trim().split('\n').length, 1)
  assert.match(result.stdout, /config\/gateway.yaml: ok: 8 frontends, 6 backends \(\+1 templated\), 1 split, 1 resolver;/)
})

test('srvgate check: an invalid file prints every error with its path and exits 1', async () => {
  const file = tempFile('bad.yaml', `
listen: { http: 127.0.0.1:8080 }
resolvers: { consul: { nameservers: [127.0.0.1:8600], attempts: 0 } }
backends:
  web-prod: { discovery: { resolver: consul, srv: x.consul }, retry: { attempts: -1 } }
`)
  const result = await srvgate(['check', '-c', file])
  assert.equal(result.code, 1)
  assert.match(result.stderr, /invalid configuration/)
  assert.match(result.stderr, /backends\.web-prod\.retry\.attempts: must be an integer >= 0/)
  assert.match(result.stderr, /resolvers\.consul\.attempts: must be an integer >= 1/)
  assert.match(result.stderr, /SG_ERR_CONFIG_INVALID/)
})

test('srvgate check: shape and reference errors in one pass, each with its YAML line; a bare number for a duration says so', async () => {
  const file = tempFile('many.yaml', `listen: { http: 127.0.0.1:8080 }
resolvers:
  consul:
    nameservers: [127.0.0.1:8600]
    timeout: 30
backends:
  web:
    discovery: { resolver: nowhere, srv: _web.service.consul }
    retry: { attempts: -1 }
frontends:
  - { name: www, match: { host: www.example.com }, backend: missing }
`)
  const result = await srvgate(['check', '-c', file])
  assert.equal(result.code, 1)
  assert.match(result.stderr, /resolvers\.consul\.timeout: must be a duration such as 30s or 30ms \(a number has no unit\) \(line 5\)/)
  assert.match(result.stderr, /backends\.web\.retry\.attempts: must be an integer >= 0 \(line 9\)/)
  assert.match(result.stderr, /backends\.web\.discovery\.resolver: unknown resolver "nowhere" \(known: consul\) \(line 8\)/)
  assert.match(result.stderr, /frontends\[0\]\.backend: unknown backend "missing" \(known: web\) \(line 11\)/)
})

test('srvgate check: a YAML error is one message with file:line:column and a caret; an unquoted {env} in a flow mapping says which value to quote', async () => {
  // The README's templated split as it was pasted before issue 22: yaml reported 33 errors for it.
  const file = tempFile('pasted.yaml', `listen: { http: 127.0.0.1:8080 }
resolvers: { consul: { nameservers: [127.0.0.1:8600] } }
frontends:
  - name: preview
    match: { host: "{env}.preview.example.com" }
    env: { pattern: "^pr-[0-9]+$" }
    backend: { template: web-{env}, split: [ { template: web-{env}-v2, weight: 10, discovery: { resolver: consul, srv: "_web._{env}.service.consul" } } ] }
`)
  const result = await srvgate(['check', '-c', file])
  assert.equal(result.code, 1)
  assert.deepEqual(result.stderr.trimEnd().split('\n'), [
    `${file}: invalid configuration`,
    `  ${file}:7:26: quote this value: "web-{env}" (inside { } or [ ], an unquoted { or } ends a value)`,
    '        backend: { template: web-{env}, split: [ { template: web-{env}-v2, weight: 10, discovery: { reso…',
    '                             ^',
    '(SG_ERR_CONFIG_PARSE)'
  ])
  const duplicate = tempFile('dup.yaml', 'listen: { http: 127.0.0.1:8080 }\nlisten: {}\n')
  const other = await srvgate(['check', '-c', duplicate])
  assert.equal(other.code, 1)
  assert.deepEqual(other.stderr.trimEnd().split('\n'), [`${duplicate}: invalid configuration`, `  ${duplicate}:2:1: Map keys must be unique`, '    listen: {}', '    ^', '(SG_ERR_CONFIG_PARSE)'])
})

test('srvgate check: warnings for frontends that can never match and for srv with port; counts read as English', async () => {
  const file = tempFile('shadowed.yaml', `listen: { http: 127.0.0.1:8080 }
resolvers: { consul: { nameservers: [127.0.0.1:8600] } }
backends:
  web: { discovery: { resolver: consul, srv: _web.service.consul, port: 8080 } }
frontends:
  - { name: everything, match: {}, backend: web }
  - { name: www, match: { host: www.example.com }, backend: web }
`)
  const result = await srvgate(['check', '-c', file])
  assert.equal(result.code, 0, result.stderr)
  assert.match(result.stderr, /warning: frontends\[1\]: can never match: frontends\[0\] \("everything"\) comes first and matches every request "www" would \(line 7\)/)
  assert.match(result.stderr, /warning: backends\.web\.discovery\.port: is ignored with srv/)
  assert.match(result.stdout, /ok: 2 frontends, 1 backend, 1 resolver; .*; 2 warnings/)
})

test('srvgate check: an admin listener open beyond loopback without a token is a warning, not an error', async () => {
  const file = tempFile('open.yaml', 'listen: { http: 127.0.0.1:8080, admin: 0.0.0.0:9901 }\n')
  const result = await srvgate(['check', '-c', file])
  assert.equal(result.code, 0)
  assert.match(result.stderr, /warning: listen\.admin: the admin listener \(0\.0\.0\.0:9901\) is reachable beyond loopback and has no token \(admin\.token\) \(line \d+\)/)
})

test('srvgate check: a missing file and broken YAML exit 1 with a clear message', async () => {
  const missing = await srvgate(['check', '-c', 'nope/missing.yaml'])
  assert.equal(missing.code, 1)
  assert.match(missing.stderr, /cannot read nope\/missing.yaml/)
  const broken = await srvgate(['check', '-c', tempFile('broken.yaml', 'listen: [\n')])
  assert.equal(broken.code, 1)
  assert.match(broken.stderr, /SG_ERR_CONFIG_PARSE/)
})

test('srvgate resolve prints instances, priority, weight, TTL received and clamped, nameserver and transport', async (t) => {
  const server = await ConsulLikeDnsServer.start(t)
  server.setService(WEB, [
    { address: '10.0.0.1', port: 8001, priority: 1, weight: 10 },
    { address: '10.0.0.2', port: 8002, priority: 2, weight: 1 }
  ])
  const result = await srvgate(['resolve', WEB, '--server', server.address])
  assert.equal(result.code, 0, result.stderr)
  const out = result.stdout
  assert.match(out, new RegExp(`2 instance\\(s\\), answered by ${server.address.replaceAll('.', '\\.')} over UDP`))
  assert.match(out, /TTL 0s as received, 1s as clamped \(ttl.min 1s, ttl.max 30s\)/)
  assert.match(out, /priority 1 \(active\)\n +10\.0\.0\.1:8001 +weight 10/)
  assert.match(out, /priority 2 \(backup[^\n]*\n +10\.0\.0\.2:8002 +weight 1/)
})

test('srvgate resolve shows TCP for a cut answer, and why answers were rejected', async (t) => {
  const server = await ConsulLikeDnsServer.start(t)
  server.setService(WEB, manyInstances(200))
  server.tamper = (_request, answer, transport) => {
    if (transport === 'tcp') return undefined
    const forged = Packet.parse(answer.toBuffer())
    forged.header.id = (forged.header.id + 1) & 0xffff
    return [forged, answer]
  }
  // The stand-in Consul cuts its answer by encoding it over and over (dns2): 100-500 ms on a busy box.
  const result = await srvgate(['resolve', WEB, '--server', server.address, '--timeout', '3s'])
  assert.equal(result.code, 0, result.stderr)
  assert.match(result.stdout, /200 instance\(s\), answered by [^ ]+ over TCP \(near-size-limit\)/)
  assert.match(result.stdout, /rejected answer from [^ ]+\/udp: id-mismatch: id \d+, expected \d+/)
})

test('srvgate resolve --json is one document for scripts', async (t) => {
  const server = await ConsulLikeDnsServer.start(t, { host: '::1' })
  server.setService(WEB, manyInstances(2))
  const result = await srvgate(['resolve', WEB, '-s', server.address, '--json'])
  assert.equal(result.code, 0, result.stderr)
  const report = JSON.parse(result.stdout) as { outcome: string, instances: unknown[], nameserver: string, transport: string, ttlSeconds: number, ttlClampedMs: number }
  assert.equal(report.outcome, 'answer')
  assert.equal(report.instances.length, 2)
  assert.equal(report.nameserver, server.address)
  assert.equal(report.transport, 'udp')
  assert.equal(report.ttlClampedMs, 1000)
})

test('srvgate resolve: NXDOMAIN exits 1; a dead nameserver exits 3 with the error code', async (t) => {
  const server = await ConsulLikeDnsServer.start(t)
  server.setService(WEB, [])
  const nx = await srvgate(['resolve', WEB, '--server', server.address])
  assert.equal(nx.code, 1)
  assert.match(nx.stdout, /NXDOMAIN/)
  const dead = await srvgate(['resolve', WEB, '--server', `127.0.0.1:${await freePort()}`, '--timeout', '200ms'])
  assert.equal(dead.code, 3)
  assert.match(dead.stderr, /SG_ERR_DNS_UNREACHABLE/)
})

test('srvgate resolve --type A and --config take the resolver from a file', async (t) => {
  const server = await ConsulLikeDnsServer.start(t, { ttl: 120 })
  server.setAddresses('billing.legacy.internal', ['10.9.0.1', '10.9.0.2'])
  const file = tempFile('gateway.yaml', `
listen: { http: 127.0.0.1:8080 }
resolvers: { consul: { nameservers: ["${server.address}"], ttl: { min: 2s, max: 1m } } }
`)
  const result = await srvgate(['resolve', 'billing.legacy.internal', '--type', 'A', '-c', file])
  assert.equal(result.code, 0, result.stderr)
  assert.match(result.stdout, /TTL 120s as received, 1m as clamped \(ttl.min 2s, ttl.max 1m\)/)
  assert.match(result.stdout, /10\.9\.0\.1/)
  assert.match(result.stdout, /10\.9\.0\.2/)
})

test('srvgate run refuses an invalid file with every error (exit 1) and listens on nothing', async () => {
  const port = await freePort()
  const file = tempFile('bad-run.yaml', `listen: { http: "127.0.0.1:${port}" }\nresolvers: { consul: { nameservers: [] } }\nbackends: { web: { discovery: { resolver: nope, srv: x.consul } } }\n`)
  const result = await srvgate(['run', '-c', file])
  assert.equal(result.code, 1)
  assert.match(result.stderr, /invalid configuration/)
  assert.match(result.stderr, /resolvers\.consul\.nameservers: must have at least 1 item\(s\)/)
})

test('srvgate run on a port already in use exits 3 with a clear message', async (t) => {
  const { createServer } = await import('node:net')
  const busy = createServer()
  await new Promise<void>((resolve) => busy.listen(0, '127.0.0.1', resolve))
  t.after(() => busy.close())
  const port = (busy.address() as { port: number }).port
  const adminPort = await freePort()
  const file = tempFile('busy.yaml', `listen: { http: "127.0.0.1:${port}", admin: "127.0.0.1:${adminPort}" }\n`)
  const result = await srvgate(['run', '-c', file])
  assert.equal(result.code, 3)
  assert.match(result.stderr, /could not start: .*EADDRINUSE/)
})

test('srvgate check and run: two listeners on one address (or a wildcard over it) are a configuration error naming both fields, exit 1', async () => {
  const port = await freePort()
  const same = tempFile('clash.yaml', `listen: { http: "127.0.0.1:${port}", admin: "127.0.0.1:${port}" }\n`)
  for (const command of ['check', 'run']) {
    const result = await srvgate([command, '-c', same])
    assert.equal(result.code, 1, `${command}: ${result.stderr}`)
    assert.match(result.stderr, new RegExp(`listen\\.admin: same address as listen\\.http \\(127\\.0\\.0\\.1:${port}\\) \\(line 1\\)`))
  }
  const dnsPort = await freePort()
  const wildcard = tempFile('wildcard.yaml', `listen: { http: "0.0.0.0:${port}", admin: "127.0.0.1:${dnsPort}" }\ndns: { listen: ["127.0.0.1:${port}"], zone: srvgate.internal, names: {} }\n`)
  const result = await srvgate(['check', '-c', wildcard])
  assert.equal(result.code, 1)
  assert.match(result.stderr, new RegExp(`dns\\.listen\\[0\\]: 127\\.0\\.0\\.1:${port} overlaps listen\\.http \\(0\\.0\\.0\\.0:${port}\\): 0\\.0\\.0\\.0 listens on every IPv4 address of port ${port}`))
})

test('srvgate run: a listener whose address another socket holds names its field and address (http with workers, admin, a DNS face UDP port), exit 3', async (t) => {
  const { createServer } = await import('node:net')
  const { createSocket } = await import('node:dgram')
  const busy = createServer()
  await new Promise<void>((resolve) => busy.listen(0, '127.0.0.1', resolve))
  const udp = createSocket('udp4')
  await new Promise<void>((resolve) => udp.bind(0, '127.0.0.1', resolve))
  t.after(() => { busy.close(); udp.close() })
  const taken = (busy.address() as { port: number }).port
  const takenUdp = udp.address().port
  const [free, freeAdmin, freeDns] = [await freePort(), await freePort(), await freePort()]
  const cases = [
    { field: 'listen.http', port: taken, workers: '2', text: `listen: { http: "127.0.0.1:${taken}", admin: "127.0.0.1:${freeAdmin}" }\n` },
    { field: 'listen.admin', port: taken, workers: '1', text: `listen: { http: "127.0.0.1:${free}", admin: "127.0.0.1:${taken}" }\n` },
    { field: 'dns.listen[1]', port: takenUdp, workers: '1', text: `listen: { http: "127.0.0.1:${free}", admin: "127.0.0.1:${freeAdmin}" }\ndns: { listen: ["127.0.0.1:${freeDns}", "127.0.0.1:${takenUdp}"], zone: srvgate.internal, names: {} }\n` }
  ]
  for (const row of cases) {
    const result = await srvgate(['run', '-c', tempFile('busy.yaml', row.text)], { env: { SRVGATE_WORKERS: row.workers } })
    assert.equal(result.code, 3, `${row.field}: ${result.stderr}`)
    const field = row.field.replace(/[.[\]]/g, '\\$&')
    assert.match(result.stderr, new RegExp(`could not start: .*${field}: 127\\.0\\.0\\.1:${row.port}: already in use \\(EADDRINUSE\\): stop what listens there, or choose another address for ${field}`), result.stderr)
  }
})
