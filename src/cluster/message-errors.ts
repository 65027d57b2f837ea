/**
 * Why a message failed its check, field by field: TypeBox's error iterator
 * against the message's schema. Loaded (with TypeBox) only when an invalid
 * message arrives, which a healthy cluster never sees: the checks themselves
 * are generated at build time (generated-message-checks.ts).
 */
import { Errors } from '@sinclair/typebox/errors'
import { TO_PRIMARY, TO_WORKER } from './protocol.js'

/**
 * The first thing wrong with `raw` as a message of its `type`, with the
 * field's path (`/snapshot/status: …`), against the schema of the direction
 * it came (`srvgate:stats` exists in both).
 */
export function firstError (direction: 'to-worker' | 'to-primary', type: string, raw: unknown): string {
  const schemas: ReadonlyArray<(typeof TO_WORKER)[number] | (typeof TO_PRIMARY)[number]> = direction === 'to-worker' ? TO_WORKER : TO_PRIMARY
  const schema = schemas.find((candidate) => candidate.properties.type.const === type)
  if (schema === undefined) return 'unknown message type'
  const error = Errors(schema, [], raw).First()
  return error === undefined ? 'invalid' : `${error.path === '' ? '/' : error.path}: ${error.message}`
}
