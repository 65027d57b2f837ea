import { test } from 'node:test'
import assert from 'node:assert/strict'
import { classifyError, failureCode, healthOutcomeOf, judgeAttempt, shouldRetry, type AttemptFailure, type AttemptResult, type Verdict, mayLeaveMember } from '../../../src/proxy/retry-policy.js'
import { ErrorCode } from '../../../src/errors.js'
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

test('judgeAttempt: one verdict per result, for health, retry and the client\'s answer', () => {
  const context = { method: 'GET', retries: 0, policy: { attempts: 2, on: ALL }, canReplayBody: true }
  const error = (code: string): AttemptResult => ({ kind: 'error', error: Object.assign(new Error(code), { code }) })
  const rows: Array<[string, AttemptResult, typeof context, Verdict]> = [
    ['200 goes through', { kind: 'status', status: 200 }, context, { outcome: 'success', retryable: false, code: undefined }],
    ['404 goes through and is no failure', { kind: 'status', status: 404 }, context, { outcome: 'success', retryable: false, code: undefined }],
    ['503 for GET: another instance', { kind: 'status', status: 503 }, context, { outcome: 'status-5xx', retryable: true, code: undefined }],
    ['503 for POST: goes through', { kind: 'status', status: 503 }, { ...context, method: 'POST' }, { outcome: 'status-5xx', retryable: false, code: undefined }],
    ['500: counted, goes through', { kind: 'status', status: 500 }, context, { outcome: 'status-5xx', retryable: false, code: undefined }],
    ['refused: another instance, any method', error('ECONNREFUSED'), { ...context, method: 'POST' }, { outcome: 'connect-failure', retryable: true, code: ErrorCode.UPSTREAM_CONNECT }],
    ['refused with attempts used up: 502', error('ECONNREFUSED'), { ...context, retries: 2 }, { outcome: 'connect-failure', retryable: false, code: ErrorCode.UPSTREAM_CONNECT }],
    ['reset, GET: another instance', error('ECONNRESET'), context, { outcome: 'reset', retryable: true, code: ErrorCode.UPSTREAM_RESET }],
    ['reset, POST: 502', error('UND_ERR_SOCKET'), { ...context, method: 'POST' }, { outcome: 'reset', retryable: false, code: ErrorCode.UPSTREAM_RESET }],
    ['headers timeout: 504, never retried', error('UND_ERR_HEADERS_TIMEOUT'), context, { outcome: 'timeout', retryable: false, code: ErrorCode.UPSTREAM_TIMEOUT }],
    ['our own timer: 504', error(ErrorCode.UPSTREAM_TIMEOUT), context, { outcome: 'timeout', retryable: false, code: ErrorCode.UPSTREAM_TIMEOUT }],
    ['the client left: nothing counts against the instance', error(ErrorCode.CLIENT_GONE), context, { outcome: undefined, retryable: false, code: ErrorCode.CLIENT_GONE }],
    ['the client stalled its upload: 408, not the instance\'s fault', error(ErrorCode.CLIENT_TIMEOUT), context, { outcome: undefined, retryable: false, code: ErrorCode.CLIENT_TIMEOUT }],
    ['a malformed body: 400', error(ErrorCode.REQUEST_MALFORMED), context, { outcome: undefined, retryable: false, code: ErrorCode.REQUEST_MALFORMED }],
    ['anything else: 502, not retried, classified as such', error('EWHATEVER'), context, { outcome: 'unclassified', retryable: false, code: ErrorCode.UPSTREAM_ERROR }]
  ]
  for (const [name, result, rowContext, expected] of rows) assert.deepEqual(judgeAttempt(result, rowContext), expected, name)
})

test('healthOutcomeOf: an unclassified error counts against the instance as a reset; every other outcome as it is', () => {
  assert.equal(healthOutcomeOf('unclassified'), 'reset')
  for (const outcome of ['success', 'connect-failure', 'timeout', 'reset', 'status-5xx'] as const) assert.equal(healthOutcomeOf(outcome), outcome)
})

test('failureCode: our codes kept, undici\'s mapped once', () => {
  assert.equal(failureCode(Object.assign(new Error('x'), { code: ErrorCode.CLIENT_TIMEOUT })), ErrorCode.CLIENT_TIMEOUT)
  assert.equal(failureCode(Object.assign(new Error('x'), { code: 'UND_ERR_HEADERS_TIMEOUT' })), ErrorCode.UPSTREAM_TIMEOUT)
  assert.equal(failureCode(Object.assign(new Error('x'), { code: 'ECONNREFUSED' })), ErrorCode.UPSTREAM_CONNECT)
  assert.equal(failureCode(new Error('x')), ErrorCode.UPSTREAM_ERROR)
})

test('a split member is left only after a connect failure (nothing was sent), never after an answer, a reset or a timeout', () => {
  const rows: Array<[string, boolean]> = [['connect-failure', true], ['status-502', false], ['status-503', false], ['status-504', false], ['reset', false], ['timeout', false], ['error', false]]
  for (const [reason, expected] of rows) assert.equal(mayLeaveMember(reason), expected, reason)
})
