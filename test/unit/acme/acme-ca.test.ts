/** acme/acme-ca.ts: the one door to acme-client, against a real (stub) CA on loopback. */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { AcmeCa, acmeSettings } from '../../../src/acme/acme-ca.js'
import { retryAfterMs } from '../../../src/acme/ari.js'
import { AcmeError, ErrorCode } from '../../../src/errors.js'
import type { AcmeConfig } from '../../../src/config/types.js'
import { RateLimitingCa } from '../../helpers/stub-acme.js'

test('acme-client keeps its retry settings on axios.defaults.acmeSettings (srvgate sets them)', () => {
  const settings = acmeSettings()
  assert.equal(typeof settings.retryMaxAttempts, 'number')
  assert.equal(typeof settings.retryDefaultDelay, 'number')
})

test('Retry-After: seconds or an HTTP date, as milliseconds from now; anything else is not understood', () => {
  const nowMs = Date.parse('2026-12-05T12:00:00Z')
  assert.equal(retryAfterMs('120', nowMs), 120_000)
  assert.equal(retryAfterMs(' 0 ', nowMs), 0)
  assert.equal(retryAfterMs('Sat, 05 Dec 2026 13:00:00 GMT', nowMs), 3_600_000)
  assert.equal(retryAfterMs('Sat, 05 Dec 2026 11:00:00 GMT', nowMs), 0, 'a date past is now')
  assert.equal(retryAfterMs('2026', nowMs), 2_026_000, 'digits are seconds')
  for (const value of [undefined, '', '-5', '1.5', 'soon', ['120']]) assert.equal(retryAfterMs(value, nowMs), undefined, String(value))
})

function configFor (directoryUrl: string): AcmeConfig {
  return { directoryUrl, directoryCaPath: undefined, email: undefined, eab: undefined, storage: { kind: 'dir', dir: '/nonexistent' }, names: [], challenges: ['http-01'], renewBeforeMs: 0, onDemand: undefined } as unknown as AcmeConfig
}

test('a CA that answers 429 rateLimited with Retry-After: the order fails at once with ACME_RATE_LIMITED and the wait, and nothing is asked again', async (t) => {
  const ca = await RateLimitingCa.start()
  t.after(async () => { await ca.stop() })
  const client = new AcmeCa(configFor(ca.directoryUrl), await AcmeCa.newAccountKey())
  const started = Date.now()
  const failure = await client.order('a.example.com', { put: async () => {}, remove: () => {} }).then(() => undefined, (error: unknown) => error)
  assert.ok(failure instanceof AcmeError, String(failure))
  assert.equal(failure.code, ErrorCode.ACME_RATE_LIMITED)
  assert.match(failure.message, /too many new registrations/)
  assert.ok(failure.retryAfterMs !== undefined && failure.retryAfterMs > 3_590_000 && failure.retryAfterMs <= 3_600_000, `retryAfterMs ${String(failure.retryAfterMs)}`)
  assert.ok(Date.now() - started < 5000, 'no Retry-After slept out inside the request')
  assert.deepEqual(ca.signedRequests, ['POST /account'], 'the rate-limited request is not repeated')
})

test('an HTTP date in Retry-After counts too; a failure with none is ACME_ORDER_FAILED', async (t) => {
  const ca = await RateLimitingCa.start()
  t.after(async () => { await ca.stop() })
  ca.retryAfter = new Date(Date.now() + 7_200_000).toUTCString()
  const client = new AcmeCa(configFor(ca.directoryUrl), await AcmeCa.newAccountKey())
  const dated = await client.order('a.example.com', { put: async () => {}, remove: () => {} }).then(() => undefined, (error: unknown) => error) as AcmeError
  assert.equal(dated.code, ErrorCode.ACME_RATE_LIMITED)
  assert.ok(dated.retryAfterMs !== undefined && dated.retryAfterMs > 7_100_000, `retryAfterMs ${String(dated.retryAfterMs)}`)
  ca.retryAfter = 'later'
  const undated = await client.order('a.example.com', { put: async () => {}, remove: () => {} }).then(() => undefined, (error: unknown) => error) as AcmeError
  assert.equal(undated.code, ErrorCode.ACME_ORDER_FAILED, 'a Retry-After not understood is no promise: the usual schedule')
  assert.equal(undated.retryAfterMs, undefined)
})
