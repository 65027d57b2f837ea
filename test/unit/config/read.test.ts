import { test } from 'node:test'
import assert from 'node:assert/strict'
import { parseYamlText } from '../../../src/config/read.js'
import { readConfigText } from '../../../src/config/read-text.js'
import { ConfigError } from '../../../src/errors.js'

const TEXT = `listen:
  http: 127.0.0.1:8080
backends:
  web.prod:
    retry:
      attempts: -1
  web:
    discovery: { resolver: consul, srv: _web._tcp.consul }
frontends:
  - name: first
    backend: web
  - name: second
    match:
      method: [GET, get]
`

const lineOf = (path: string): number | undefined => parseYamlText(TEXT).withLines([{ path, message: 'm' }])[0]?.line

test('an issue\'s path is mapped to the line of its node: maps, sequences, flow collections', () => {
  assert.equal(lineOf('listen.http'), 2)
  assert.equal(lineOf('backends.web.discovery.srv'), 8)
  assert.equal(lineOf('frontends[1].name'), 12)
  assert.equal(lineOf('frontends[1].match.method[1]'), 14)
})

test('a key holding dots is found whole: the longest key that fits wins', () => {
  assert.equal(lineOf('backends.web.prod.retry.attempts'), 6)
  assert.equal(lineOf('backends.web.discovery'), 8)
})

test('a path that goes beyond the file (a default, a missing field) gets the line of the deepest node it reaches', () => {
  assert.equal(lineOf('frontends[0].match.host'), 10)
  assert.equal(lineOf('backends.web.retry.attempts'), 8)
  assert.equal(lineOf('frontends[5].name'), 10)
  assert.equal(lineOf('tls'), 1)
  assert.equal(lineOf(''), 1)
})

test('the parsed value is plain data; issues keep their path and message', () => {
  const parsed = parseYamlText('a: { b: [1, "x"] }\n')
  assert.deepEqual(parsed.value, { a: { b: [1, 'x'] } })
  assert.deepEqual(parsed.withLines([{ path: 'a.b[1]', message: 'bad' }]), [{ path: 'a.b[1]', message: 'bad', line: 1 }])
})

test('YAML errors and duplicate keys are parse errors that say where; an unreadable file is a read error naming it', async () => {
  assert.throws(() => parseYamlText('a: 1\na: 2\n'), (error: unknown) => error instanceof ConfigError && error.code === 'SG_ERR_CONFIG_PARSE' && /line 2/.test(error.message))
  await assert.rejects(readConfigText('no/such/gateway.yaml'), (error: unknown) =>
    error instanceof ConfigError && error.code === 'SG_ERR_CONFIG_READ' && error.message.includes('no/such/gateway.yaml'))
})
