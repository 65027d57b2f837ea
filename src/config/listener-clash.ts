import type { ConfigIssue } from '../errors.js'
import type { Address } from '../util/address.js'

/** One configured listener: its field in the document and its address. */
export type ListenerField = {
  readonly path: string
  readonly address: Address
  /** `::` takes IPv6 only (the DNS face binds so); otherwise Node listens dual-stack. */
  readonly isIpv6Only?: boolean
}

/**
 * Listeners that would fight over one socket: every pair on the same port
 * whose hosts overlap. Every srvgate listener takes TCP (the DNS face takes
 * UDP and TCP), so any two on one port and one address clash. A wildcard
 * (`0.0.0.0`) takes every address of its family on its port; `::` takes
 * every address of both (Node listens dual-stack) unless the listener is
 * IPv6-only (the DNS face); `localhost` may be
 * 127.0.0.1 or ::1. Port 0 asks the kernel for a free port: never a clash.
 * The issue goes on the later field and names the earlier one, as a person
 * reads the file.
 */
export function listenerClashes (listeners: readonly ListenerField[]): ConfigIssue[] {
  const issues: ConfigIssue[] = []
  listeners.forEach((listener, index) => {
    if (listener.address.port === 0) return
    const earlier = listeners.slice(0, index).find((other) => other.address.port === listener.address.port && hostsOverlap(other, listener))
    if (earlier === undefined) return
    const message = sameHost(earlier.address, listener.address)
      ? `same address as ${earlier.path} (${earlier.address.label})`
      : `${listener.address.label} overlaps ${earlier.path} (${earlier.address.label}): ${whyOverlap(earlier.address, listener.address)}`
    issues.push({ path: listener.path, message })
  })
  return issues
}

type HostKind = { readonly v4: boolean, readonly v6: boolean, readonly isWildcard: boolean, readonly name: string }

function kindOf ({ address, isIpv6Only }: ListenerField): HostKind {
  const name = canonicalHost(address)
  if (name === '0.0.0.0') return { v4: true, v6: false, isWildcard: true, name }
  if (name === '::') return { v4: isIpv6Only !== true, v6: true, isWildcard: true, name }
  if (name === 'localhost') return { v4: true, v6: true, isWildcard: false, name }
  // A host name other than localhost: its family is unknown until it is resolved.
  if (address.family === 0) return { v4: true, v6: true, isWildcard: false, name }
  return { v4: address.family === 4, v6: address.family === 6, isWildcard: false, name }
}

function hostsOverlap (a: ListenerField, b: ListenerField): boolean {
  const x = kindOf(a)
  const y = kindOf(b)
  if (x.name === y.name) return true
  const shareFamily = (x.v4 && y.v4) || (x.v6 && y.v6)
  if (x.isWildcard || y.isWildcard) return shareFamily
  // localhost is the loopback address of either family.
  if (x.name === 'localhost') return y.name === '127.0.0.1' || y.name === '::1'
  if (y.name === 'localhost') return x.name === '127.0.0.1' || x.name === '::1'
  return false
}

function sameHost (a: Address, b: Address): boolean {
  return canonicalHost(a) === canonicalHost(b)
}

function whyOverlap (a: Address, b: Address): string {
  const wildcards = [a, b].map(canonicalHost)
  if (wildcards.includes('::')) return wildcards.includes('0.0.0.0') || a.family === 4 || b.family === 4 ? `:: listens on every address of port ${a.port}, IPv4 included (dual-stack)` : `:: listens on every IPv6 address of port ${a.port}`
  if (wildcards.includes('0.0.0.0')) return `0.0.0.0 listens on every IPv4 address of port ${a.port}`
  return `localhost is 127.0.0.1 or ::1 on port ${a.port}`
}

/** Lower case, and IPv6 literals in their short form (`0:0::1` is `::1`). */
function canonicalHost (address: Address): string {
  if (address.family !== 6) return address.host.toLowerCase().replace(/\.$/, '')
  return new URL(`http://[${address.host}]/`).hostname.slice(1, -1)
}
