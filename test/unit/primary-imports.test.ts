/**
 * What a cluster's primary loads (issue 20: its RSS after start ≤ 75 MB):
 * the modules reachable by static imports from the CLI and server.ts. The
 * data plane, the proxy, undici, the YAML parser, ajv and TypeBox are loaded
 * only where they are needed, by `import()`: in a single process (roles.ts),
 * a configuration check thread (config/check-in-child.ts), the first active
 * check (health/active-checker.ts), an invalid IPC message's explanation
 * (cluster/message-check.ts), a configured DNS face (server.ts), --pid-file,
 * or the commands that need them (resolve, reload: cli/commands.ts). A static import
 * that pulls one of them back into the primary fails here.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { reachable, staticImports } from '../helpers/static-imports.js'

const ROOTS = ['src/main.ts', 'src/cli/commands.ts', 'src/server.ts']
const NOT_IN_THE_PRIMARY = [/^src\/data-plane\/(?!listeners\.ts)/, /^src\/proxy\//, /^src\/demo\/(?!registry\.ts)/, /^src\/config\/(load|read|validate)\.ts$/, /^src\/cluster\/(protocol|message-errors)\.ts$/, /^src\/cli\/(resolve|reload|pid-file)\.ts$/, /^src\/dns-face\//, /^src\/acme\/(acme-ca|redis-storage)\.ts$/, /^(undici|yaml|ajv|@sinclair\/typebox|acme-client|ioredis)(\/|$)/]

test('a cluster primary statically loads no data plane, proxy, undici, YAML parser, ajv, TypeBox, DNS face or other command', () => {
  const loaded = reachable(ROOTS)
  const found = [...loaded].filter(([module]) => NOT_IN_THE_PRIMARY.some((pattern) => pattern.test(module))).map(([module, parent]) => `${module} (imported by ${parent})`)
  assert.deepEqual(found, [])
})

test('the walk sees what it should: fastify, pino and the control plane are there; a value import is followed, a type import is not', () => {
  const loaded = reachable(ROOTS)
  for (const module of ['fastify', 'pino', 'src/control-plane/control-plane.ts', 'src/config/load-file.ts']) assert.ok(loaded.has(module), module)
  assert.deepEqual(staticImports("import { a } from './a.js'\nimport type { B } from './b.js'\nimport './c.js'\nexport { d } from './d.js'\n"), ['./a.js', './c.js', './d.js'])
})
