/** tls.acme's fields, compiled: what a person reads when one is wrong. */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { parseConfigText } from '../../../src/config/load.js'
import { ConfigError, formatIssue } from '../../../src/errors.js'

function issuesOf (acme: string, listen = 'http: "127.0.0.1:8080", https: "127.0.0.1:8443"'): string[] {
  try {
    parseConfigText(`listen: { ${listen} }\ntls:\n  acme: ${acme}\n`)
    return []
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error
    return error.issues.map(formatIssue)
  }
}

test('tls.acme: names srvgate cannot get a certificate for are refused with the reason; storage takes dir or redis', () => {
  assert.deepEqual(issuesOf('{ agreeToTerms: true, names: [www.example.com], storage: { dir: /tmp/x } }'), [])
  assert.match(issuesOf('{ agreeToTerms: true, names: ["*.example.com"] }').join('\n'), /tls\.acme\.names\[0\].*wildcard needs the DNS-01 challenge/)
  assert.match(issuesOf('{ agreeToTerms: true, names: [1.2.3.4] }').join('\n'), /tls\.acme\.names\[0\].*an IP address/)
  assert.match(issuesOf('{ agreeToTerms: true, names: [localhost] }').join('\n'), /tls\.acme\.names\[0\].*not a DNS name with at least two labels/)
  assert.match(issuesOf('{ agreeToTerms: true, storage: { dir: /tmp/x, redis: { url: "redis://127.0.0.1:6379" } } }').join('\n'), /tls\.acme\.storage.*dir or redis, not both/)
  assert.match(issuesOf('{ agreeToTerms: true, challenges: [http-01] }', 'https: "127.0.0.1:8443"').join('\n'), /tls\.acme\.challenges.*http-01 needs listen\.http/)
  assert.match(issuesOf('{ agreeToTerms: true, onDemand: { frontends: [nope] } }').join('\n'), /tls\.acme\.onDemand\.frontends\[0\].*no frontend is named "nope"/)
  assert.match(issuesOf('{ agreeToTerms: false }').join('\n'), /tls\.acme\.agreeToTerms/)
})
