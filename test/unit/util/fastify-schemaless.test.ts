import { test } from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import Fastify from 'fastify'
import { schemaless } from '../../../src/util/fastify-schemaless.js'

test('a schemaless app serves a route without a schema', async () => {
  const app = Fastify({ ...schemaless })
  app.get('/', async () => 'ok')
  try {
    const answer = await app.inject({ method: 'GET', url: '/' })
    assert.equal(answer.statusCode, 200)
    assert.equal(answer.body, 'ok')
  } finally {
    await app.close()
  }
})

test('a route given a schema fails at ready() and names the reason, never at its first request', async () => {
  const app = Fastify({ ...schemaless })
  app.post('/', { schema: { body: { type: 'object' } } }, async () => 'never')
  await assert.rejects(async () => { await app.ready() }, /schemaless \(src\/util\/fastify-schemaless\.ts\)/)
  await app.close().catch(() => {})
})

test('a response schema is refused too (the serializer side)', async () => {
  const app = Fastify({ ...schemaless })
  app.get('/', { schema: { response: { 200: { type: 'string' } } } }, async () => 'never')
  await assert.rejects(async () => { await app.ready() }, /schemaless/)
  await app.close().catch(() => {})
})

test('building a schemaless app loads neither ajv nor fast-json-stringify\'s compiler (what it is for; fastify\'s error serializer keeps its small runtime)', () => {
  const script = `import Fastify from 'fastify'
import { schemaless } from ${JSON.stringify(new URL('../../../src/util/fastify-schemaless.ts', import.meta.url).href)}
import { createRequire } from 'node:module'
const app = Fastify({ ...schemaless })
app.get('/', async () => 'ok')
await app.ready()
const loaded = Object.keys(createRequire(import.meta.url).cache)
process.stdout.write(JSON.stringify(loaded.filter((path) => /node_modules\\/(ajv\\/|@fastify\\/ajv-compiler\\/|@fastify\\/fast-json-stringify-compiler\\/|fast-json-stringify\\/index\\.js)/.test(path))))
await app.close()`
  const out = execFileSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script],
    { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], timeout: 30_000 })
  assert.deepEqual(JSON.parse(out), [])
})
