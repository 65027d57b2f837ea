/** proxy/grpc.ts's tables: grpc-timeout, statuses for srvgate's answers and for broken-off ones, trailers-only answers, grpc-message's encoding. */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { deadlineOf, grpcMessage, grpcStatusOf, isGrpc, midAnswerStatus, takeTrailersOnly } from '../../../src/proxy/grpc.js'
import { mayTrail } from '../../../src/proxy/headers.js'

test('grpc-timeout: each unit, at most 8 digits, rounded up to a millisecond; anything else sets no deadline', () => {
  const rows: Array<[string | string[] | undefined, number | undefined]> = [
    ['1H', 3_600_000], ['2M', 120_000], ['3S', 3000], ['250m', 250], ['1500u', 2], ['1n', 1], ['99999999m', 99_999_999],
    ['0m', 1], ['123456789m', undefined], ['1x', undefined], ['m', undefined], ['-1S', undefined], [' 1S', undefined], ['1.5S', undefined], [undefined, undefined], [['1S', '2S'], undefined]
  ]
  for (const [value, ms] of rows) assert.equal(deadlineOf(value, 1000), ms === undefined ? undefined : 1000 + ms, String(value))
})

test('statuses: srvgate\'s own answers by HTTP status (gRPC\'s mapping, with the deadline\'s and the rate limit\'s own), broken-off answers by how they broke', () => {
  assert.deepEqual([400, 401, 403, 404, 405, 408, 421, 429, 431, 502, 503, 504, 500].map(grpcStatusOf), [13, 16, 7, 12, 12, 4, 14, 8, 8, 14, 14, 4, 2])
  assert.equal(midAnswerStatus({ code: 'SG_ERR_DEADLINE_EXCEEDED' }), 4)
  assert.equal(midAnswerStatus({ code: 'SG_ERR_UPSTREAM_RESET', cause: { rstCode: 8 } }), 1, 'CANCEL is CANCELLED')
  assert.equal(midAnswerStatus({ code: 'SG_ERR_UPSTREAM_RESET', cause: { rstCode: 7 } }), 14)
  assert.equal(midAnswerStatus({ code: 'SG_ERR_UPSTREAM_RESET', cause: { rstCode: 11 } }), 8)
  assert.equal(midAnswerStatus({ code: 'SG_ERR_UPSTREAM_RESET', cause: { rstCode: 2 } }), 13)
  assert.equal(midAnswerStatus({ code: 'SG_ERR_UPSTREAM_RESET', cause: { code: 'ECONNRESET' } }), 14, 'a lost connection is UNAVAILABLE')
  assert.equal(isGrpc('application/grpc'), true)
  assert.equal(isGrpc('application/grpc+proto'), true)
  assert.equal(isGrpc('application/json'), false)
  assert.equal(isGrpc(undefined), false)
})

test('grpc-message: printable ASCII as it is, % and everything else percent-encoded UTF-8', () => {
  assert.equal(grpcMessage('no such thing: 7'), 'no such thing: 7')
  assert.equal(grpcMessage('100% sûr\n'), '100%25 s%C3%BBr%0A')
})

test('a trailers-only answer\'s status and metadata move to trailers; framing fields stay; an answer without grpc-status is untouched', () => {
  const headers = ['content-type', 'application/grpc', 'Grpc-Status', '5', 'grpc-message', 'gone', 'x-served-by', 'a', 'x-served-by', 'b', 'content-length', '0', 'x-request-id', 'r']
  assert.deepEqual(takeTrailersOnly(headers, mayTrail), { 'grpc-status': '5', 'grpc-message': 'gone', 'x-served-by': 'a, b' })
  assert.deepEqual(headers, ['content-type', 'application/grpc', 'content-length', '0', 'x-request-id', 'r'])
  const plain = ['content-type', 'application/grpc', 'x-served-by', 'a']
  assert.equal(takeTrailersOnly(plain, mayTrail), undefined)
  assert.deepEqual(plain, ['content-type', 'application/grpc', 'x-served-by', 'a'])
})
