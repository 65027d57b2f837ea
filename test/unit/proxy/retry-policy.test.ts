import { test } from 'node:test'
import assert from 'node:assert/strict'
import { classifyError, shouldRetry, type AttemptFailure } from '../../../src/proxy/retry-policy.js'
import type { RetryOn } from '../../../src/config/types.js'

const ALL: ReadonlySet<RetryOn> = new Set(['connect-failure', 502, 503, 504])
const CONNECT: AttemptFailure = { kind: 'connect-failure' }
const status = (code: number): AttemptFailure => ({ kind: 'status', status: code })

// [name, failure, method, retries so far, attempts, on, body replayable, expected]
const CASES: Array<[string, AttemptFailure, string, number, number, ReadonlySet<RetryOn>, boolean, boolean]> = [
  ['connect failure, POST: the request was never sent', CONNECT, 'POST', 0, 2, ALL, true, true],
  ['connect failure after the body was partly sent: no', CONNECT, 'POST', 0, 2, ALL, false, false],
  ['connect failure, attempts used up', CONNECT, 'GET', 2, 2, ALL, true, false],
  ['connect failure not listed in retry.on', CONNECT, 'GET', 0, 2, new Set([503]), true, false],
  ['503 for GET', status(503), 'GET', 0, 2, ALL, true, true],
  ['503 for PUT (idempotent)', status(503), 'PUT', 0, 2, ALL, true, true],
  ['503 for POST: not idempotent', status(503), 'POST', 0, 2, ALL, true, false],
  ['503 for PATCH: not idempotent', status(503), 'PATCH', 0, 2, ALL, true, false],
  ['500 is not retryable', status(500), 'GET', 0, 2, ALL, true, false],
  ['502 not listed', status(502), 'GET', 0, 2, new Set(['connect-failure', 503]), true, false],
  ['reset for GET', { kind: 'reset' }, 'GET', 0, 2, ALL, true, true],
  ['reset for POST: it may have been processed', { kind: 'reset' }, 'POST', 0, 2, ALL, true, false],
  ['timeout: never (it would multiply the load)', { kind: 'timeout' }, 'GET', 0, 2, ALL, true, false],
  ['retry.attempts 0 turns retries off', status(503), 'GET', 0, 0, ALL, true, false]
]

for (const [name, failure, method, retries, attempts, on, canReplayBody, expected] of CASES) {
  test(`retry: ${name}`, () => {
    assert.equal(shouldRetry({ failure, method, retries, policy: { attempts, on }, canReplayBody }), expected)
  })
}

test('undici errors are classified once, by code', () => {
  const cases: Array<[string | undefined, string]> = [
    ['ECONNREFUSED', 'connect-failure'], ['UND_ERR_CONNECT_TIMEOUT', 'connect-failure'], ['EHOSTUNREACH', 'connect-failure'],
    ['ECONNRESET', 'reset'], ['UND_ERR_SOCKET', 'reset'], ['UND_ERR_HEADERS_TIMEOUT', 'timeout'], ['UND_ERR_BODY_TIMEOUT', 'timeout'],
    ['EWHATEVER', 'other'], [undefined, 'other']
  ]
  for (const [code, kind] of cases) assert.equal(classifyError(Object.assign(new Error('x'), { code })), kind, String(code))
})
