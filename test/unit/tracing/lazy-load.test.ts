/**
 * OpenTelemetry's modules cost a process about 25 MB of RSS: a data plane
 * (every worker) loads them only when `tracing` is configured, by import()
 * (data-plane.ts). A static import that pulls them into every worker fails
 * here.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { reachable } from '../../helpers/static-imports.js'

test('a data plane (a worker, or the single process) statically loads no OpenTelemetry module and no tracing/ module', () => {
  const loaded = reachable(['src/cluster/worker-gateway.ts', 'src/roles.ts', 'src/data-plane/data-plane.ts'])
  assert.ok(loaded.has('src/proxy/proxy-request.ts') && loaded.has('fastify'), 'the walk reaches the request path')
  assert.deepEqual([...loaded.keys()].filter((module) => module.startsWith('@opentelemetry/') || module.startsWith('src/tracing/')), [])
})
