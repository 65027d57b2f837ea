/**
 * Every YAML example an operator may paste parses (issue 22: the README's
 * inline templated split, `{ template: web-{env}, … }`, did not): fenced
 * yaml blocks of README.md and docs/*.md (CONFIG.md, GUIDE.md among them), inline code that writes a flow
 * mapping around a placeholder, and config/*.yaml.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync, readdirSync } from 'node:fs'
import { parseYamlText } from '../../../src/config/read.js'
import { ConfigError, formatIssue } from '../../../src/errors.js'

const DOCS = ['README.md', ...readdirSync('docs').filter((name) => name.endsWith('.md')).map((name) => `docs/${name}`)]

function parseError (text: string): string | undefined {
  try {
    parseYamlText(text)
    return undefined
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error
    return error.issues.map(formatIssue).join('; ')
  }
}

test('every fenced yaml block of the docs parses', () => {
  let blocks = 0
  for (const file of DOCS) {
    for (const match of readFileSync(file, 'utf8').matchAll(/^ *```ya?ml\n([\s\S]*?)^ *```/gm)) {
      blocks++
      assert.equal(parseError(match[1] ?? ''), undefined, `${file}: ${match[1]}`)
    }
  }
  assert.ok(blocks >= 4, `${blocks} blocks found`)
})

test('inline code writing a flow mapping around {env} or ${NAME} parses (the placeholders are quoted)', () => {
  let spans = 0
  for (const file of DOCS) {
    // A span may wrap across lines in Markdown source.
    for (const match of readFileSync(file, 'utf8').matchAll(/`([^`]*\{ [^`]*)`/g)) {
      const span = (match[1] ?? '').replace(/\s*\n\s*/g, ' ')
      if (!/\{env\}|\$\{/.test(span) || !/^[\w-]+: \{|^\{ /.test(span)) continue
      spans++
      assert.equal(parseError(span), undefined, `${file}: ${span}`)
    }
  }
  assert.ok(spans >= 1, 'the templated split of docs/GUIDE.md is among them')
})

test('config/*.yaml parse', () => {
  for (const name of readdirSync('config').filter((entry) => entry.endsWith('.yaml'))) {
    assert.equal(parseError(readFileSync(`config/${name}`, 'utf8')), undefined, name)
  }
})
