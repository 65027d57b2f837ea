/**
 * /metrics against Prometheus's own lint (`promtool check metrics`, from
 * Debian's prometheus package): a running srvgate with every area in use
 * (HTTP/1.1 and HTTP/2 over TLS, a certificate, a templated backend, the DNS
 * face) in one process and with workers, scraped, and not one finding.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { freePort } from '../helpers/dns-server.js'
import { httpsConfig, httpsSetup, h2Request, h2Session, startHttps } from '../helpers/https.js'
import { send } from '../helpers/http.js'
import { dig } from '../helpers/dns-client.js'

/** Lint findings of an exposition: promtool's lines (it exits 1 with any); the same lines for a missing promtool, naming the package. */
function promtoolFindings (exposition: string): string[] {
  const result = spawnSync('promtool', ['check', 'metrics'], { input: exposition, encoding: 'utf8', timeout: 20_000 })
  if (result.error !== undefined) return [`promtool did not run (${result.error.message}): apt-get install prometheus`]
  const lines = `${result.stdout}${result.stderr}`.split('\n').filter((line) => line.trim() !== '')
  return result.status === 0 ? lines : lines.length > 0 ? lines : [`promtool exited ${String(result.status)}`]
}

test('promtool check metrics reports what breaks its rules (so an empty list below means something)', () => {
  const findings = promtoolFindings('# HELP bad_count A counter misnamed.\n# TYPE bad_count counter\nbad_count 1\n# HELP late_expiry_milliseconds A time in ms.\n# TYPE late_expiry_milliseconds gauge\nlate_expiry_milliseconds 1\n')
  assert.ok(findings.some((line) => /bad_count counter metrics should have "_total" suffix/.test(line)), findings.join('\n'))
  assert.ok(findings.some((line) => /late_expiry_milliseconds use base unit "seconds"/.test(line)), findings.join('\n'))
})

for (const workers of [1, 2]) {
  test(`promtool check metrics finds nothing in /metrics, every area in use (workers: ${workers})`, async (t) => {
    const s = await httpsSetup(t)
    const facePort = await freePort()
    const { gateway, httpsPort } = await startHttps(t, httpsConfig(s, `
metrics: { perInstance: true }
dns:
  listen: ["127.0.0.1:${facePort}"]
  zone: srvgate.internal
  names: { web: { backend: web-prod } }
`), { workers })
    for (let index = 0; index < 3; index++) await send(`${gateway.url}/?n=${index}`, { host: 'www.example.com' })
    await send(`${gateway.url}/`, { host: 'nowhere.example.com' })
    const session = await h2Session(t, httpsPort, 'pr-1.preview.example.com', s.ca.caPem)
    assert.equal((await h2Request(session, { ':path': '/', ':authority': 'pr-1.preview.example.com' })).status, 200)
    assert.equal(dig(facePort, 'web.srvgate.internal', 'A').status, 'NOERROR')
    const exposition = (await send(`${gateway.adminUrl}/metrics`)).body
    // Series of each area, so their names and labels are linted too (assert.ok: a miss would print the whole exposition).
    for (const name of ['srvgate_tls_certificate_expiry_timestamp_seconds', 'srvgate_dns_face_queries_total', 'srvgate_http_protocol_requests_total', 'srvgate_upstream_latency_seconds_bucket', 'srvgate_upstream_instance_attempts_total']) {
      assert.ok(new RegExp(`^${name}\\{`, 'm').test(exposition), `${name} has a series`)
    }
    assert.deepEqual(promtoolFindings(exposition), [])
  })
}
