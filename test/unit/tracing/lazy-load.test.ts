/**
 * OpenTelemetry's modules cost a process about 25 MB of RSS: a data plane
 * (every worker) loads them only when `tracing` is configured, by import()
 * (data-plane.ts). A static import that pulls them into every worker fails
 * here.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { dirname, relative, resolve } from 'node:path'

function staticImports (text: string): string[] {
  return [...text.matchAll(/^(?:import|export)(?!\s+type\s)[^'"]*?from\s+'([^']+)'|^import\s+'([^']+)'/gms)].map((match) => (match[1] ?? match[2]) as string)
}

function reachable (roots: readonly string[]): Set<string> {
  const seen = new Set<string>(roots)
  const queue = [...roots]
  while (queue.length > 0) {
    const file = queue.shift() as string
    for (const specifier of staticImports(readFileSync(file, 'utf8'))) {
      const target = specifier.startsWith('.') ? relative('.', resolve(dirname(file), specifier.replace(/\.js$/, '.ts'))) : specifier
      if (seen.has(target)) continue
      seen.add(target)
      if (target.startsWith('src/')) queue.push(target)
    }
  }
  return seen
}

test('a data plane (a worker, or the single process) statically loads no OpenTelemetry module and no tracing/ module', () => {
  const loaded = reachable(['src/cluster/worker-gateway.ts', 'src/roles.ts', 'src/data-plane/data-plane.ts'])
  assert.ok(loaded.has('src/proxy/proxy-request.ts') && loaded.has('fastify'), 'the walk reaches the request path')
  assert.deepEqual([...loaded].filter((module) => module.startsWith('@opentelemetry/') || module.startsWith('src/tracing/')), [])
})
