import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync, readdirSync, statSync } from 'node:fs'
import { join, relative } from 'node:path'

// The TypeBox definition of the schema, and TypeBox itself: build-time and types only.
const SCHEMA_SOURCES = new Set(['config/schema.ts', 'config/schema-backend.ts', 'config/schema-kit.ts', 'config/json-schema.ts'])
const SCHEMA_SPECIFIER = /^(@sinclair\/typebox(\/.*)?|\.{1,2}\/(config\/)?(schema|schema-backend|schema-kit|json-schema)\.js)$/

function sourceFiles (dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name)
    return statSync(path).isDirectory() ? sourceFiles(path) : path.endsWith('.ts') ? [path] : []
  })
}

/** `import … from 'x'` and `export … from 'x'` statements that survive compiling (not `import type`). */
function valueImports (text: string): string[] {
  return [...text.matchAll(/^(import|export)(?!\s+type\s)[^'"]*?from\s+'([^']+)'/gms)].map((match) => match[2] as string)
}

/**
 * The one run-time user, known and bounded: the cluster's IPC messages are
 * checked on receipt with TypeCompiler (cluster/message-check.ts), ~13 MB per
 * process. Generating those checks at build time (TypeCompiler.Code) would
 * take TypeBox out of run time here too: the issue 20 follow-up.
 */
const RUNTIME_USERS = new Set(['cluster/protocol.ts', 'cluster/message-check.ts'])

test('no module the gateway runs loads TypeBox or the schema it builds, but the IPC checks: only types come from there', () => {
  const violations = sourceFiles('src').flatMap((path) => {
    const file = relative('src', path)
    if (SCHEMA_SOURCES.has(file) || RUNTIME_USERS.has(file)) return []
    return valueImports(readFileSync(path, 'utf8')).filter((specifier) => SCHEMA_SPECIFIER.test(specifier)).map((specifier) => `src/${file} imports ${specifier}`)
  })
  assert.deepEqual(violations, [])
})

test('the check sees a value import of the schema, and lets a type-only one through', () => {
  assert.deepEqual(valueImports("import { gatewaySchema } from './schema.js'\nimport type { GatewayDocument } from './schema.js'\n"), ['./schema.js'])
  assert.deepEqual(valueImports("import {\n  Type\n} from '@sinclair/typebox'\nexport type { X } from './schema-kit.js'\n"), ['@sinclair/typebox'])
})
