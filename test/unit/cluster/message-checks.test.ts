/**
 * The message checks are generated at build time from protocol.ts
 * (scripts/write-message-checks.ts): this fails when the file in src/ is
 * not what the script writes from the current schemas (run `npm run
 * protocol`). test/unit/config/runtime-imports.test.ts checks that only the
 * explanation of an invalid message loads TypeBox.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { messageChecksSource } from '../../../scripts/message-checks-source.js'

test('generated-message-checks.ts is what the script writes from the current protocol schemas', () => {
  const onDisk = readFileSync(new URL('../../../src/cluster/generated-message-checks.ts', import.meta.url), 'utf8')
  assert.equal(onDisk, messageChecksSource(), 'stale: run `npm run protocol`')
})

test('the generated checks and the explanation agree: valid passes, invalid is explained with the field at fault', async () => {
  const { toPrimaryCheck, toWorkerCheck, InvalidMessage } = await import('../../../src/cluster/message-check.js')
  assert.deepEqual(toPrimaryCheck.read({ type: 'srvgate:hello', version: 1 }), { type: 'srvgate:hello', version: 1 })
  const invalid = toPrimaryCheck.read({ type: 'srvgate:hello', version: -1 })
  assert.ok(invalid instanceof InvalidMessage)
  assert.match(await invalid.reason(), /^\/version: /)
  // srvgate:stats exists both ways, with other fields: each direction is explained against its own schema.
  const stats = toWorkerCheck.read({ type: 'srvgate:stats', id: 'x' })
  assert.ok(stats instanceof InvalidMessage)
  assert.match(await stats.reason(), /^\/id: /)
  const unknown = toWorkerCheck.read({ type: 'srvgate:hello', version: 1 })
  assert.ok(unknown instanceof InvalidMessage)
  assert.equal(await unknown.reason(), 'unknown message type')
})
