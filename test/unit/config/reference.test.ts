import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { configReference } from '../../../scripts/config-reference.js'

test('README.md\'s configuration reference is the one generated from the schema', () => {
  const readme = readFileSync('README.md', 'utf8')
  assert.ok(readme.includes(configReference()), 'run `npm run docs` to regenerate it')
})

test('the reference covers every field, with defaults', () => {
  const reference = configReference()
  for (const path of ['listen.http', 'resolvers.<name>.ttl.min', 'backends.<name>.retry.attempts', 'frontends[].env.pattern', 'backends.<name>.healthCheck.rise']) {
    assert.ok(reference.includes(`\`${path}\``), path)
  }
  assert.match(reference, /\| `resolvers\.<name>\.staleFor` \| duration \| `"60s"` \|/)
  assert.match(reference, /\| `listen` \| object \| required \|/)
  assert.match(reference, /\| `listen\.https` \| host:port \| +\| Public HTTPS listener/)
})
