/**
 * The module map of docs/ARCHITECTURE.md, enforced: imports point down the
 * layers only, and each third-party package stays behind its one door.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { join, relative, dirname, normalize } from 'node:path'
import { sourceFiles } from '../helpers/source-files.js'

/** Lower layers first. A module imports from its own folder or from a strictly lower layer. */
const LAYER: Record<string, number> = {
  errors: 0, util: 0, log: 1,
  config: 1, dns: 1, edge: 1,
  discovery: 2, routing: 2, tls: 2,
  balance: 3, health: 3, tracing: 3,
  upstream: 4, policy: 4,
  proxy: 5,
  admin: 6,
  client: 7, 'data-plane': 7, process: 7,
  'dns-face': 8, acme: 8,
  'control-plane': 9,
  cluster: 10,
  roles: 11,
  server: 12, demo: 12,
  cli: 13,
  main: 14
}

/** Which modules may import a package (prefix match on the path under src/). */
const PACKAGE_DOORS: Record<string, string[]> = {
  dns2: ['dns/transport.ts', 'dns/responder.ts', 'dns/error-answers.ts', 'dns/address-answer.ts', 'demo/'],
  'lru-cache': ['dns/cache.ts'],
  fastify: ['proxy/', 'admin/', 'data-plane/', 'control-plane/admin-app.ts', 'util/fastify-schemaless.ts'],
  pino: ['log/'],
  ajv: ['config/validate.ts', 'config/generated-validate.ts'],
  yaml: ['config/read.ts'],
  '@sinclair/typebox': ['config/', 'cluster/'],
  undici: ['proxy/', 'health/active-checker.ts', 'client/', 'policy/forward-auth.ts'],
  bcryptjs: ['policy/bcrypt-threads.ts'],
  'acme-client': ['acme/acme-ca.ts'],
  ioredis: ['acme/redis-storage.ts', 'policy/redis-rates.ts'],
  '@peculiar/x509': ['acme/ari.ts'],
  // OpenTelemetry's SDK, propagator and exporters: tracing/ alone (the request object holds a RequestTrace).
  '@opentelemetry/api': ['tracing/'],
  '@opentelemetry/core': ['tracing/'],
  '@opentelemetry/resources': ['tracing/'],
  '@opentelemetry/sdk-trace': ['tracing/'],
  '@opentelemetry/otlp-exporter-base': ['tracing/otlp-transport.ts'],
  '@opentelemetry/otlp-transformer': ['tracing/otlp-transport.ts']
}

function area (file: string): string {
  const first = file.split('/')[0] as string
  return first.replace(/\.ts$/, '')
}

const files = sourceFiles('src').map((path) => relative('src', path))
const IMPORT = /^\s*(import|export)\s+(type\s+)?[^'"]*?from\s+['"]([^'"]+)['"]/gm

test('imports point down the layers only', () => {
  const violations: string[] = []
  for (const file of files) {
    const text = readFileSync(join('src', file), 'utf8')
    for (const match of text.matchAll(IMPORT)) {
      const specifier = match[3] as string
      if (!specifier.startsWith('.')) continue
      const target = normalize(join(dirname(file), specifier)).replace(/\.js$/, '.ts')
      const from = area(file)
      const to = area(target)
      assert.ok(from in LAYER, `src/${file}: its folder is not on the module map`)
      assert.ok(to in LAYER, `src/${target}: its folder is not on the module map`)
      if (from !== to && (LAYER[to] as number) >= (LAYER[from] as number)) violations.push(`src/${file} → src/${target}`)
    }
  }
  assert.deepEqual(violations, [])
})

test('each package is imported only behind its door', () => {
  const violations: string[] = []
  for (const file of files) {
    const text = readFileSync(join('src', file), 'utf8')
    for (const match of text.matchAll(IMPORT)) {
      const specifier = match[3] as string
      for (const [pkg, doors] of Object.entries(PACKAGE_DOORS)) {
        if (specifier !== pkg && !specifier.startsWith(`${pkg}/`)) continue
        if (!doors.some((door) => file.startsWith(door))) violations.push(`src/${file} imports ${pkg}`)
      }
    }
  }
  assert.deepEqual(violations, [])
})

test('no index.ts barrels and kebab-case file names', () => {
  for (const file of files) {
    assert.notEqual(file.split('/').pop(), 'index.ts', file)
    assert.match(file.split('/').pop() as string, /^[a-z0-9]+(-[a-z0-9]+)*\.ts$/, file)
  }
})

test('domain modules take time and randomness injected', () => {
  const allowed = new Set(['util/clock.ts', 'util/random.ts'])
  for (const file of files.filter((name) => /^(dns|discovery|health|balance|upstream)\//.test(name))) {
    const text = readFileSync(join('src', file), 'utf8')
    if (allowed.has(file)) continue
    assert.doesNotMatch(text, /Date\.now\(\)|Math\.random\(\)/, `src/${file} reads the clock or randomness directly`)
  }
})

test('time goes through the Clock: no direct setTimeout, setInterval, Date.now, new Date or performance.now outside util/', () => {
  // The dashboard page is browser code shipped as a string: its timers are the browser's.
  const exempt = new Set(['admin/dashboard-page.ts'])
  const direct = /(?<![.\w$#])(setTimeout|setInterval)\(|Date\.now\(|new Date\(|performance\.now\(/
  const violations = files
    .filter((file) => !file.startsWith('util/') && !exempt.has(file))
    .flatMap((file) => readFileSync(join('src', file), 'utf8').split('\n')
      .map((line, index) => ({ line, index }))
      .filter(({ line }) => !/^\s*(\*|\/\/)/.test(line) && direct.test(line))
      .map(({ index }) => `src/${file}:${index + 1}`))
  assert.deepEqual(violations, [])
})
