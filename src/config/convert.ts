import { parseAddress, type Address } from '../util/address.js'
import { parseDuration, type Milliseconds } from '../util/duration.js'
import { CidrSet, parseCidr, type Cidr } from '../util/cidr.js'
import type { AddressPolicyConfig, HashKey } from './types.js'
import type { AddressPolicyDocument } from './schema-backend.js'

/** Document values (already checked by the schema) as compiled values, and the name rules compiling shares. */

export const ENV_PLACEHOLDER = '{env}'
export const HOST_LABEL = /^(?!-)[a-z0-9_-]{1,63}(?<!-)$/

export function isDnsName (name: string): boolean {
  const labels = name.replace(/\.$/, '').split('.')
  return name.length <= 253 && labels.every((label) => HOST_LABEL.test(label))
}

/** ` (known: a, b)` after an unknown name, so the fix is in the message. */
export function knownNames (names: readonly string[]): string {
  return names.length === 0 ? ' (none are defined)' : ` (known: ${names.join(', ')})`
}

// The schema has already checked these formats; a failure here is a bug, not bad input.
export function duration (text: string): Milliseconds {
  const value = parseDuration(text)
  if (value === undefined) throw new Error(`schema let through a bad duration: ${text}`)
  return value
}

export function address (text: string): Address {
  const value = parseAddress(text)
  if (value === undefined) throw new Error(`schema let through a bad address: ${text}`)
  return value
}

export function cidr (text: string): Cidr {
  const value = parseCidr(text)
  if (value === undefined) throw new Error(`schema let through a bad CIDR block: ${text}`)
  return value
}

export function addressPolicy (input: AddressPolicyDocument | undefined): AddressPolicyConfig | undefined {
  if (input === undefined) return undefined
  return { allow: input.allow === undefined ? undefined : new CidrSet(input.allow.map(cidr)), deny: new CidrSet((input.deny ?? []).map(cidr)) }
}

export function hashKey (text: string): HashKey {
  if (text === 'client-ip') return { kind: 'client-ip' }
  if (text === 'path') return { kind: 'path' }
  const [kind, ...name] = text.split(':')
  return kind === 'header' ? { kind: 'header', name: name.join(':').toLowerCase() } : { kind: 'cookie', name: name.join(':') }
}
