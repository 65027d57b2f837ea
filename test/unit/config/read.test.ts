import { test } from 'node:test'
import assert from 'node:assert/strict'
import { parseYamlText } from '../../../src/config/read.js'
import { readConfigText } from '../../../src/config/read-text.js'
import { ConfigError, formatIssue, type ConfigIssue } from '../../../src/errors.js'

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

/** The one issue a text's YAML error becomes. */
function syntaxIssue (text: string, file?: string): ConfigIssue {
  try {
    parseYamlText(text, file)
  } catch (error) {
    assert.ok(error instanceof ConfigError && error.code === 'SG_ERR_CONFIG_PARSE', String(error))
    assert.equal(error.issues.length, 1, 'one issue, not the parser\'s list')
    return error.issues[0] as ConfigIssue
  }
  assert.fail('the text parsed')
}

const README_SPLIT = `frontends:
  - name: preview
    backend: { template: web-{env}, split: [ { template: web-{env}-v2, weight: 10 } ] }
`

test('an unquoted {env} in a flow mapping: one issue saying which value to quote, at its line and column, with a caret excerpt', () => {
  const issue = syntaxIssue(README_SPLIT, 'gateway.yaml')
  assert.equal(formatIssue(issue), 'gateway.yaml:3:26: quote this value: "web-{env}" (inside { } or [ ], an unquoted { or } ends a value)')
  assert.deepEqual(issue.excerpt, [
    '    backend: { template: web-{env}, split: [ { template: web-{env}-v2, weight: 10 } ] }',
    '                         ^'
  ])
  // Quoted as the docs say, it parses.
  assert.deepEqual(parseYamlText(README_SPLIT.replace('web-{env},', '"web-{env}",').replace('web-{env}-v2', '"web-{env}-v2"')).value,
    { frontends: [{ name: 'preview', backend: { template: 'web-{env}', split: [{ template: 'web-{env}-v2', weight: 10 }] } }] })
})

test('the quote hint covers ${NAME} in a flow mapping and a block value starting with {env}; quoted placeholders are never blamed', () => {
  assert.equal(formatIssue(syntaxIssue('admin: { token: ${TOKEN} }\n')), 'line 1, column 17: quote this value: "${TOKEN}" (inside { } or [ ], an unquoted { or } ends a value)')
  const host = syntaxIssue('frontends:\n  - match:\n      host: {env}.preview.example.com\n')
  assert.equal(formatIssue(host), 'line 3, column 13: quote this value: "{env}.preview.example.com" (a value starting with { is read as a mapping)')
  assert.deepEqual(host.excerpt, ['      host: {env}.preview.example.com', '            ^'])
  // The error on this line is the unclosed flow mapping, not the quoted {env} or the one in the comment.
  const quoted = syntaxIssue('a: { b: "web-{env}", c: [1 }  # web-{env}\n')
  assert.doesNotMatch(quoted.message, /quote this value/)
  // In block context an unquoted web-{env} is valid YAML: no error at all.
  assert.deepEqual(parseYamlText('template: web-{env}\ntoken: ${TOKEN}\n').value, { template: 'web-{env}', token: '${TOKEN}' })
})

test('any YAML error is one message where the parser first stumbled, without its location words, with the line and a caret; long lines are cut around the column', () => {
  const duplicate = syntaxIssue('listen: {}\nresolvers: {}\nlisten: {}\n', 'g.yaml')
  assert.equal(formatIssue(duplicate), 'g.yaml:3:1: Map keys must be unique')
  assert.deepEqual(duplicate.excerpt, ['listen: {}', '^'])
  const unclosed = syntaxIssue('listen: [\n')
  assert.match(formatIssue(unclosed), /^line 1, column 10: Flow sequence in block collection must be sufficiently indented and end with a \]$/)
  const long = syntaxIssue(`a: { ${Array.from({ length: 40 }, (_, index) => `k${index}: 1, `).join('')}c: [ }\n`)
  const [shown = '', caret = ''] = long.excerpt ?? []
  assert.ok(shown.length <= 102 && shown.startsWith('…'), shown)
  assert.equal(shown[caret.indexOf('^')], '}', 'the caret stays under the character the parser named')
})
