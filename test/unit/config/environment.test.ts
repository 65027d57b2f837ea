import { test } from 'node:test'
import assert from 'node:assert/strict'
import { substituteEnvironment } from '../../../src/config/environment.js'

test('${NAME} in any string, at any depth, is the variable\'s value; other values and text are left alone', () => {
  const document = { listen: { http: '${HOST}:${PORT}' }, list: ['a-${HOST}', 3, true, null], cost: '$5 and ${ not a reference', plain: 'no reference' }
  const { value, issues } = substituteEnvironment(document, { HOST: '127.0.0.1', PORT: '8080' })
  assert.deepEqual(issues, [])
  assert.deepEqual(value, { listen: { http: '127.0.0.1:8080' }, list: ['a-127.0.0.1', 3, true, null], cost: '$5 and ${ not a reference', plain: 'no reference' })
})

test('the parsed document is not changed: substitution works on a copy', () => {
  const document = { admin: { token: '${TOKEN}' } }
  const { value } = substituteEnvironment(document, { TOKEN: 'secret' })
  assert.deepEqual(document, { admin: { token: '${TOKEN}' } })
  assert.deepEqual(value, { admin: { token: 'secret' } })
})

test('an unset variable is an issue at the path of its string, once per reference; a variable set to "" is not', () => {
  const document = { backends: { 'web.prod': { tls: { serverName: '${A}.${B}' } } }, frontends: [{ name: '${EMPTY}x' }] }
  const { value, issues } = substituteEnvironment(document, { EMPTY: '' })
  assert.deepEqual(issues, [
    { path: 'backends.web.prod.tls.serverName', message: 'environment variable A is not set' },
    { path: 'backends.web.prod.tls.serverName', message: 'environment variable B is not set' }
  ])
  assert.deepEqual(value, { backends: { 'web.prod': { tls: { serverName: '.' } } }, frontends: [{ name: 'x' }] })
})

test('array items get their index in the path', () => {
  const { issues } = substituteEnvironment({ resolvers: { consul: { nameservers: ['127.0.0.1:8600', '${NS}'] } } }, {})
  assert.deepEqual(issues.map((issue) => issue.path), ['resolvers.consul.nameservers[1]'])
})
