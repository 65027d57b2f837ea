import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { relative } from 'node:path'
import { sourceFiles, valueImports } from '../../helpers/source-files.js'

// The TypeBox definition of the schema, and TypeBox itself: build-time and types only.
const SCHEMA_SOURCES = new Set(['config/schema.ts', 'config/schema-backend.ts', 'config/schema-policies.ts', 'config/schema-kit.ts', 'config/json-schema.ts'])
const SCHEMA_SPECIFIER = /^(@sinclair\/typebox(\/.*)?|\.{1,2}\/(config\/)?(schema|schema-backend|schema-policies|schema-kit|json-schema)\.js)$/

/**
 * The one run-time user, known and bounded: the explanation of an invalid
 * IPC message (cluster/message-errors.ts, imported only on demand) reads the
 * protocol's TypeBox schemas. The checks themselves are generated at build
 * time (cluster/generated-message-checks.ts).
 */
const RUNTIME_USERS = new Set(['cluster/protocol.ts', 'cluster/message-errors.ts'])
const PROTOCOL_SCHEMAS = /^\.{1,2}\/(cluster\/)?(protocol|message-errors)\.js$/

test('no module the gateway runs loads TypeBox or the schemas it builds, but the explanation of an invalid IPC message: only types come from there', () => {
  const violations = sourceFiles('src').flatMap((path) => {
    const file = relative('src', path)
    if (SCHEMA_SOURCES.has(file) || RUNTIME_USERS.has(file)) return []
    return valueImports(readFileSync(path, 'utf8')).filter((specifier) => SCHEMA_SPECIFIER.test(specifier) || PROTOCOL_SCHEMAS.test(specifier)).map((specifier) => `src/${file} imports ${specifier}`)
  })
  assert.deepEqual(violations, [])
})

test('the check sees a value import of the schema, and lets a type-only one through', () => {
  assert.deepEqual(valueImports("import { gatewaySchema } from './schema.js'\nimport type { GatewayDocument } from './schema.js'\n"), ['./schema.js'])
  assert.deepEqual(valueImports("import {\n  Type\n} from '@sinclair/typebox'\nexport type { X } from './schema-kit.js'\n"), ['@sinclair/typebox'])
})

test('no module the gateway runs compiles a schema with ajv: the configuration\'s validator is ajv\'s code, written at build time (generated-validate.ts)', () => {
  // ajv's runtime helpers (ajv/dist/runtime/*), which the generated code requires, are not its compiler.
  const compiler = /^ajv(\/(?!dist\/runtime\/).*)?$/
  const violations = sourceFiles('src').flatMap((path) =>
    valueImports(readFileSync(path, 'utf8')).filter((specifier) => compiler.test(specifier)).map((specifier) => `${path} imports ${specifier}`))
  assert.deepEqual(violations, [])
  assert.equal(compiler.test('ajv/dist/2020.js'), true)
  assert.equal(compiler.test('ajv/dist/runtime/equal'), false)
})
