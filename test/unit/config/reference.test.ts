import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { configReference } from '../../../scripts/config-reference.js'

test('docs/CONFIG.md\'s configuration reference is the one generated from the schema', () => {
  const readme = readFileSync('docs/CONFIG.md', 'utf8')
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

test('a backend\'s fields are documented once, with where else they apply (issue 22)', () => {
  const reference = configReference()
  for (const repeated of ['frontends[].backend.retry', 'frontends[].backend.split[].healthCheck', 'frontends[].backend.discovery.srv', 'backends.<name>.failover[].srv']) {
    assert.ok(!reference.includes(`\`${repeated}`), `${repeated} is documented once, under backends.<name>`)
  }
  assert.match(reference, /\| `backends\.<name>\.retry` \|.*Applies to backends \(`backends\.<name>`\), templated backends \(`frontends\[\]\.backend`\), templated split members \(`frontends\[\]\.backend\.split\[\]`\)\. \|/)
  assert.match(reference, /\| `backends\.<name>\.discovery\.srv` \|.*failover targets \(`backends\.<name>\.failover\[\]`\)/)
  assert.match(reference, /\| `frontends\[\]\.backend` \|.*Also takes `discovery`, .*`retry`.*as documented under backends \(`backends\.<name>`\)/)
})
