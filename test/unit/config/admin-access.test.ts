import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { readAdminAccess } from '../../../src/config/admin-access.js'
import { ConfigError } from '../../../src/errors.js'

function file (text: string): string {
  const path = join(mkdtempSync(join(tmpdir(), 'srvgate-admin-access-')), 'gateway.yaml')
  writeFileSync(path, text)
  return path
}

test('listen.admin and admin.token of a file, with the schema\'s default and ${ENV}, however broken the rest is', async () => {
  const defaults = await readAdminAccess(file('listen: { http: 127.0.0.1:8080 }\n'))
  assert.equal(defaults.address.label, '127.0.0.1:9901')
  assert.equal(defaults.token, undefined)
  const broken = file('listen: { admin: "[::1]:9911" }\nadmin: { token: "${TOKEN}" }\nbackends: { web: { discovery: { resolver: nowhere } } }\nworkers: many\n')
  const access = await readAdminAccess(broken, { TOKEN: 's3cret' })
  assert.equal(access.address.label, '[::1]:9911')
  assert.equal(access.token, 's3cret')
})

test('a file that is not YAML, or whose listen.admin or token is wrong, is a ConfigError with the line', async () => {
  await assert.rejects(readAdminAccess(file('listen: { admin: [\n')), (error) => error instanceof ConfigError && error.code === 'SG_ERR_CONFIG_PARSE')
  await assert.rejects(readAdminAccess(file('workers: 2\nlisten: { admin: nowhere }\n')), (error) => error instanceof ConfigError && /listen\.admin: .*\(line 2\)/.test(error.message))
  await assert.rejects(readAdminAccess(file('admin: { token: "${UNSET_TOKEN}" }\n'), {}), (error) => error instanceof ConfigError && /admin\.token: environment variable UNSET_TOKEN is not set \(line 1\)/.test(error.message))
})
