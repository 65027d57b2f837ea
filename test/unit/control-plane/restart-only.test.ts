import { test } from 'node:test'
import assert from 'node:assert/strict'
import { compileConfig } from '../../../src/config/load.js'
import { changedListeners, withStartOnly } from '../../../src/control-plane/restart-only.js'

const BASE = {
  listen: { http: '127.0.0.1:8080', admin: '127.0.0.1:9901' },
  workers: 2,
  dns: { listen: ['127.0.0.1:8653'], zone: 'srvgate.internal', names: {} }
}

/** Every field a reload cannot apply, changed alone: the reload names exactly that one (issue 22, item 6). */
const ROWS: Array<{ name: string, change: (document: Record<string, any>) => void, expected: string[] }> = [
  { name: 'nothing', change: () => {}, expected: [] },
  { name: 'listen.http', change: (d) => { d.listen.http = '127.0.0.1:8081' }, expected: ['listen.http'] },
  { name: 'listen.https added', change: (d) => { d.listen.https = '127.0.0.1:8443'; d.tls = { certificates: [{ cert: '/etc/srvgate/a.pem', key: '/etc/srvgate/a-key.pem' }] } }, expected: ['listen.https'] },
  { name: 'listen.admin', change: (d) => { d.listen.admin = '127.0.0.1:9902' }, expected: ['listen.admin'] },
  { name: 'admin.token', change: (d) => { d.admin = { token: 't' } }, expected: ['admin.token'] },
  { name: 'admin.allowedHosts', change: (d) => { d.admin = { allowedHosts: ['srvgate'] } }, expected: ['admin.allowedHosts'] },
  { name: 'statePath', change: (d) => { d.statePath = '/tmp/state.json' }, expected: ['statePath'] },
  { name: 'workers', change: (d) => { d.workers = 4 }, expected: ['workers'] },
  { name: 'client.maxHeaderBytes', change: (d) => { d.client = { maxHeaderBytes: 8192 } }, expected: ['client.maxHeaderBytes'] },
  { name: 'dns.listen moved', change: (d) => { d.dns.listen = ['127.0.0.1:8654'] }, expected: ['dns.listen'] },
  { name: 'dns.listen grown', change: (d) => { d.dns.listen = ['127.0.0.1:8653', '[::1]:8653'] }, expected: ['dns.listen'] },
  { name: 'DNS face removed', change: (d) => { delete d.dns }, expected: ['dns.listen'] },
  { name: 'several at once, in one order', change: (d) => { d.workers = 1; d.listen.http = '127.0.0.1:8081'; d.dns.listen = ['127.0.0.1:8654'] }, expected: ['listen.http', 'workers', 'dns.listen'] },
  { name: 'tls.sessionTickets.enabled', change: (d) => { d.listen.https = '127.0.0.1:8443'; d.tls = { certificates: [{ cert: '/etc/srvgate/a.pem', key: '/etc/srvgate/a-key.pem' }], sessionTickets: { enabled: false } } }, expected: ['listen.https', 'tls.sessionTickets.enabled'] },
  { name: 'what a reload applies (dns.ttl) is not restart-only', change: (d) => { d.dns.ttl = '9s' }, expected: [] }
]

for (const row of ROWS) {
  test(`restart-only fields: ${row.name}`, () => {
    const next = structuredClone(BASE) as Record<string, any>
    row.change(next)
    assert.deepEqual(changedListeners(compileConfig(BASE), compileConfig(next)), row.expected)
  })
}

const TLS = { certificates: [{ cert: '/etc/srvgate/a.pem', key: '/etc/srvgate/a-key.pem' }] }

test('withStartOnly: a replacement worker keeps the listeners, the header cap and tickets on or off of the start; everything a reload applies comes from the new file', () => {
  const running = compileConfig({ ...BASE, listen: { ...BASE.listen, https: '127.0.0.1:8443' }, tls: TLS, client: { maxHeaderBytes: 16384 } })
  const next = compileConfig({ ...BASE, listen: { ...BASE.listen, http: '127.0.0.1:8081', https: '127.0.0.1:8444' }, tls: { ...TLS, sessionTickets: { enabled: false, rotateEvery: '1h' } }, client: { maxHeaderBytes: 8192, headersTimeout: '3s' }, templatedBackends: { max: 7 } })
  const kept = withStartOnly(running, next)
  assert.equal(kept.listen.http?.label, '127.0.0.1:8080')
  assert.equal(kept.listen.https?.label, '127.0.0.1:8443')
  assert.equal(kept.client.maxHeaderBytes, 16384)
  assert.equal(kept.tls?.sessionTickets.enabled, true)
  // What a reload applies is the new file's.
  assert.equal(kept.tls?.sessionTickets.rotateEveryMs, 3_600_000)
  assert.equal(kept.client.headersTimeoutMs, 3000)
  assert.equal(kept.templatedBackends.max, 7)
  assert.equal(kept.frontends, next.frontends)
  assert.equal(kept.backends, next.backends)
  // Nothing changed: the same values.
  assert.deepEqual(changedListeners(running, kept), [])
})

test('withStartOnly: https added by a reload stays unbound; tls removed by a reload leaves no certificates to read (the files of the start may be gone)', () => {
  const plain = compileConfig(BASE)
  const added = withStartOnly(plain, compileConfig({ ...BASE, listen: { ...BASE.listen, https: '127.0.0.1:8443' }, tls: TLS }))
  assert.equal(added.listen.https, undefined)
  const withHttps = compileConfig({ ...BASE, listen: { ...BASE.listen, https: '127.0.0.1:8443' }, tls: TLS })
  const removed = withStartOnly(withHttps, compileConfig(BASE))
  assert.equal(removed.listen.https?.label, '127.0.0.1:8443')
  assert.equal(removed.tls, undefined)
})
