import { test } from 'node:test'
import assert from 'node:assert/strict'
import { compileHeaderRules } from '../../../src/config/compile-headers.js'
import { applyRequestRules, applyResponseRules } from '../../../src/proxy/header-rules.js'
import type { ConfigIssue } from '../../../src/errors.js'
import type { HeaderRules } from '../../../src/config/types.js'

function compiled (input: Parameters<typeof compileHeaderRules>[0], capturesEnv = false): { rules: ReturnType<typeof compileHeaderRules>, issues: string[] } {
  const issues: ConfigIssue[] = []
  const rules = compileHeaderRules(input, 'frontends[0].headers', capturesEnv, issues)
  return { rules, issues: issues.map((issue) => `${issue.path}: ${issue.message}`) }
}

test('header rules: remove, then set (replacing every value of that name), names case-insensitive; {env} filled where the frontend captured one', () => {
  const { rules, issues } = compiled({ request: { set: { 'X-Env': 'env-{env}', 'X-Team': 'web' }, remove: ['Cookie', 'x-debug'] } }, true)
  assert.deepEqual(issues, [])
  const request = rules?.request as HeaderRules
  const cases: Array<[Record<string, string | string[]>, string | undefined, Record<string, string | string[]>]> = [
    [{ host: 'a', cookie: 's=1', 'x-debug': '1', 'x-team': ['old', 'older'] }, 'pr-7', { host: 'a', 'x-env': 'env-pr-7', 'x-team': 'web' }],
    [{ host: 'a', accept: '*/*' }, undefined, { host: 'a', accept: '*/*', 'x-env': 'env-{env}', 'x-team': 'web' }],
    [{}, 'prod', { 'x-env': 'env-prod', 'x-team': 'web' }]
  ]
  for (const [input, env, expected] of cases) {
    const before = JSON.stringify(input)
    assert.deepEqual(applyRequestRules(input, request, env), expected, JSON.stringify(input))
    assert.equal(JSON.stringify(input), before, 'the edge\'s object is left as it was')
  }
})

test('header rules on an answer: a flat list keeps repeated headers apart and in order; removed and replaced names go whatever their case', () => {
  const { rules } = compiled({ response: { set: { 'Cache-Control': 'no-store' }, remove: ['Server', 'x-powered-by'] } })
  const response = rules?.response as HeaderRules
  assert.deepEqual(applyResponseRules(['Content-Type', 'text/html', 'Server', 'nginx', 'Set-Cookie', 'a=1', 'X-Powered-By', 'php', 'cache-control', 'max-age=60', 'Set-Cookie', 'b=2'], response, undefined),
    ['Content-Type', 'text/html', 'Set-Cookie', 'a=1', 'Set-Cookie', 'b=2', 'cache-control', 'no-store'])
  assert.equal(rules?.request, undefined)
})

test('header rules refused: hop-by-hop names, the headers srvgate writes itself, names that are not tokens, CR/LF in values, {env} without a capture', () => {
  const { issues } = compiled({
    request: { set: { 'X-Forwarded-For': '1.2.3.4', Connection: 'close', 'Bad Name': 'x', 'X-Split': 'a\r\nInjected: 1', 'X-Env': '{env}' }, remove: ['x-request-id', 'Transfer-Encoding', 'traceparent'] },
    response: { set: { 'Strict-Transport-Security': 'max-age=1', 'X-Fine': 'ok' }, remove: ['Content-Length'] }
  })
  assert.deepEqual(issues, [
    'frontends[0].headers.request.set.X-Forwarded-For: srvgate writes x-forwarded-for itself on every request: it cannot be set or removed here',
    'frontends[0].headers.request.set.Connection: connection is hop-by-hop or framing: it belongs to the connection, not to a frontend',
    'frontends[0].headers.request.set.Bad Name: is not a header name',
    'frontends[0].headers.request.set.X-Split: must not contain CR, LF or NUL',
    'frontends[0].headers.request.set.X-Env: {env} needs a match.host that captures {env}',
    'frontends[0].headers.request.remove[0]: srvgate writes x-request-id itself on every request: it cannot be set or removed here',
    'frontends[0].headers.request.remove[1]: transfer-encoding is hop-by-hop or framing: it belongs to the connection, not to a frontend',
    'frontends[0].headers.request.remove[2]: srvgate writes traceparent itself on every request: it cannot be set or removed here',
    'frontends[0].headers.response.set.Strict-Transport-Security: srvgate writes strict-transport-security itself on every response: it cannot be set or removed here',
    'frontends[0].headers.response.remove[0]: content-length is hop-by-hop or framing: it belongs to the connection, not to a frontend'
  ])
})
