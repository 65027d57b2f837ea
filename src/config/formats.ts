import { parseAddress } from '../util/address.js'
import { parseCidr } from '../util/cidr.js'
import { parseDuration } from '../util/duration.js'

/**
 * The schema's own string formats (`format: duration` etc.), as ajv format
 * definitions: the generated validator (generated-validate.ts) checks values
 * with these, and scripts/validator-source.ts gives them to ajv when it
 * writes that file.
 */
export const FORMATS = {
  duration: { type: 'string', validate: (text: string) => parseDuration(text) !== undefined },
  address: { type: 'string', validate: (text: string) => parseAddress(text) !== undefined },
  cidr: { type: 'string', validate: (text: string) => parseCidr(text) !== undefined },
  'http-url': { type: 'string', validate: (text: string) => isHttpUrl(text) }
} as const

/** An absolute http:// or https:// URL with a host (what an OTLP/HTTP endpoint is). */
export function isHttpUrl (text: string): boolean {
  try {
    const url = new URL(text)
    return (url.protocol === 'http:' || url.protocol === 'https:') && url.hostname !== ''
  } catch {
    return false
  }
}
