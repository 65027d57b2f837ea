/**
 * What a cluster worker loads (issue 21, a worker's memory): it compiles the
 * document its control plane checked (cluster/protocol.ts `document`), so
 * neither the YAML parser nor the configuration's validator (900 KB of
 * generated code, kept as source and bytecode in every worker's heap) is
 * loaded there. A static import that pulls one back into a worker fails here.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { reachable } from '../helpers/static-imports.js'

const ROOTS = ['src/cluster/worker-main.ts']
const NOT_IN_A_WORKER = [/^src\/config\/(load|read|validate|generated-validate|check-in-child|check-child)\.ts$/, /^(yaml|ajv|@sinclair\/typebox)(\/|$)/]

test('a cluster worker statically loads no YAML parser and no configuration validator', () => {
  const loaded = reachable(ROOTS)
  assert.ok(loaded.has('src/config/compile-checked.ts') && loaded.has('src/proxy/proxy-request.ts'), 'the walk reaches the compiler and the request path')
  const found = [...loaded].filter(([module]) => NOT_IN_A_WORKER.some((pattern) => pattern.test(module))).map(([module, parent]) => `${module} (imported by ${parent})`)
  assert.deepEqual(found, [])
})
