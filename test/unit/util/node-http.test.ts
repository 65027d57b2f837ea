import { test } from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { pathToFileURL } from 'node:url'
import { sourceFiles, valueImports } from '../../helpers/source-files.js'
import { nodeHttp } from '../../../src/util/node-http.js'

// Why: src/util/node-http.ts. Node's bundled undici, which the namespace of an
// ES import of node:http loads through its WebSocket/CloseEvent/MessageEvent getters.
const NODE_UNDICI = 'internal/deps/undici/undici'

test('no module of src/ value-imports node:http: the module comes from util/node-http.ts, types from `import type`', () => {
  const violations = sourceFiles('src').flatMap((path) =>
    valueImports(readFileSync(path, 'utf8')).filter((specifier) => specifier === 'node:http' || specifier === 'http').map(() => path))
  assert.deepEqual(violations, [])
  assert.equal(typeof nodeHttp.createServer, 'function')
  assert.equal(nodeHttp.STATUS_CODES[503], 'Service Unavailable')
})

function loadsNodeUndici (script: string): boolean {
  const out = execFileSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e',
    `${script}\nprocess.stdout.write(String(process.moduleLoadList.some((name) => name.includes('${NODE_UNDICI}'))))`],
  { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], timeout: 30_000 })
  return out.trim().endsWith('true')
}

test('the primary\'s modules (the CLI, the server, the control plane) load no Node-bundled undici; an ES import of node:http would', () => {
  const commands = pathToFileURL('src/cli/commands.ts').href
  assert.equal(loadsNodeUndici(`await import(${JSON.stringify(commands)})`), false)
  // The check can fail: the import this module forbids loads it (on Node 24, where node:http has those getters).
  if ('WebSocket' in nodeHttp) assert.equal(loadsNodeUndici("await import('node:http')"), true)
})
