#!/usr/bin/env node
// One runner for every tier (unit, integration, e2e): node:test with tsx.
// Node 20 expands no globs and finds no .ts tests by itself, so the files are listed here.
// Usage: node scripts/run-tests.mjs [unit|integration|e2e|FILE...]
import { spawnSync } from 'node:child_process'
import { readdirSync, statSync } from 'node:fs'
import { join } from 'node:path'

const TIERS = ['unit', 'integration', 'e2e']

function testFiles (dir) {
  return readdirSync(dir).sort().flatMap((name) => {
    const path = join(dir, name)
    if (statSync(path).isDirectory()) return testFiles(path)
    return name.endsWith('.test.ts') ? [path] : []
  })
}

const args = process.argv.slice(2)
const selected = args.length === 0 ? TIERS : args
const files = selected.flatMap((arg) => TIERS.includes(arg) ? testFiles(join('test', arg)) : [arg])
if (files.length === 0) {
  console.error('run-tests: no test files found')
  process.exit(1)
}
const result = spawnSync(process.execPath, [
  '--import', 'tsx',
  '--test',
  '--test-reporter=spec',
  // Node applies this to each test file as a whole too: dns-face.test.ts runs ~110 s of real
  // deadlines (TCP trickles, rate limits), so 120 s left no margin on a busy machine.
  '--test-timeout=300000',
  '--test-concurrency=1',
  // A file whose tests (and their after hooks) have all finished exits even if something it
  // started still holds the event loop: a CI run once sat 12 minutes after a file's last test
  // passed. --test-timeout covers tests, not that.
  '--test-force-exit',
  ...files
], { stdio: 'inherit' })
process.exit(result.status ?? 1)
