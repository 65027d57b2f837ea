import { test } from 'node:test'
import assert from 'node:assert/strict'
import { compileConfig } from '../../../src/config/load.js'
import { changedListeners } from '../../../src/control-plane/restart-only.js'

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
  { name: 'what a reload applies (dns.ttl) is not restart-only', change: (d) => { d.dns.ttl = '9s' }, expected: [] }
]

for (const row of ROWS) {
  test(`restart-only fields: ${row.name}`, () => {
    const next = structuredClone(BASE) as Record<string, any>
    row.change(next)
    assert.deepEqual(changedListeners(compileConfig(BASE), compileConfig(next)), row.expected)
  })
}
