/** The one field of acme-client srvgate reads that its types do not declare (acme/acme-ca.ts). */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { acmeSettings } from '../../../src/acme/acme-ca.js'

test('acme-client keeps its retry settings on axios.defaults.acmeSettings (srvgate shortens them)', () => {
  const settings = acmeSettings()
  assert.equal(typeof settings.retryMaxAttempts, 'number')
  assert.equal(typeof settings.retryDefaultDelay, 'number')
})
