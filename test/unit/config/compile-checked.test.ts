/**
 * A cluster worker compiles the document its control plane checked, after
 * the document has crossed IPC as JSON (cluster/protocol.ts `document`). The
 * configuration it builds must be the one the control plane built from the
 * file: the example file, and one with the sections the example leaves out
 * (tls.acme, the DNS face, tracing, header rules, an access policy).
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { loadConfigText } from '../../../src/config/load.js'
import { compileChecked } from '../../../src/config/compile-checked.js'

const MORE = `
listen: { http: "127.0.0.1:8080", https: "127.0.0.1:8443" }
tls:
  acme: { agreeToTerms: true, names: [www.example.com], storage: { dir: /tmp/srvgate-acme-unused }, onDemand: { frontends: [preview] } }
resolvers: { consul: { nameservers: ["127.0.0.1:8600"] } }
tracing: { sampleRatio: 0.25, serviceName: edge }
dns:
  listen: ["127.0.0.1:5353"]
  zone: srvgate.internal
  names: { web: { backend: web } }
backends:
  web: { discovery: { resolver: consul, srv: _web._tcp.service.consul }, protocol: h2c }
frontends:
  - name: www
    match: { host: www.example.com }
    backend: web
    headers: { request: { set: { x-from: edge } }, response: { remove: [server] } }
    access: { allow: [10.0.0.0/8, "::1/128"] }
  - name: preview
    match: { host: "{env}.preview.example.com" }
    env: { pattern: "pr-[0-9]+" }
    backend: { template: "web-{env}", discovery: { resolver: consul, srv: "_web._{env}.service.consul" } }
`

for (const [name, text] of [['config/gateway.yaml', readFileSync('config/gateway.yaml', 'utf8')], ['the sections the example leaves out', MORE]] as const) {
  test(`the document after a JSON round trip compiles to the configuration the control plane compiled: ${name}`, () => {
    const { config, document } = loadConfigText(text, process.env)
    const crossed = JSON.parse(JSON.stringify(document)) as typeof document
    assert.deepStrictEqual(compileChecked({ document: crossed, warnings: config.warnings }), config)
  })
}
