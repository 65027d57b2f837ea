import type { BackendConfig, DnsFaceConfig, SplitConfig } from './types.js'
import type { GatewayDocument } from './schema.js'
import { address, duration, isDnsName, knownNames } from './convert.js'
import type { Findings } from './findings.js'

/** The label of the face's own name under its zone (ns.ZONE): not a name a configuration may give a backend. */
const NAMESERVER_LABEL = 'ns'

/** dns: the DNS face's zone, names (each a backend with discovery, or the gateway itself) and limits. */
export function compileDnsFace (input: NonNullable<GatewayDocument['dns']>, backends: ReadonlyMap<string, BackendConfig>, splits: ReadonlyMap<string, SplitConfig>, { issues }: Findings): DnsFaceConfig {
  const zone = input.zone.toLowerCase().replace(/\.$/, '')
  if (!isDnsName(zone)) issues.push({ path: 'dns.zone', message: 'must be a DNS name' })
  const ttlMs = duration(input.ttl)
  if (ttlMs < 1000) issues.push({ path: 'dns.ttl', message: 'must be at least 1s (DNS TTLs are whole seconds; 0 would defeat caching)' })
  const names = new Map(Object.entries(input.names).map(([label, entry]) => {
    const path = `dns.names.${label}`
    if (label === NAMESERVER_LABEL) issues.push({ path, message: `"${NAMESERVER_LABEL}" is the DNS face's own name (${NAMESERVER_LABEL}.${zone}: the zone's NS, answering with dns.listen's addresses); choose another label` })
    if ((entry.backend === undefined) === (entry.gateway === undefined)) issues.push({ path, message: 'needs one of backend or gateway: true' })
    if (entry.backend !== undefined && splits.has(entry.backend)) issues.push({ path: `${path}.backend`, message: `"${entry.backend}" is a split: a DNS name answers for a backend with discovery` })
    else if (entry.backend !== undefined && !backends.has(entry.backend)) issues.push({ path: `${path}.backend`, message: `unknown backend "${entry.backend}"${knownNames([...backends.keys()])}` })
    return [label, entry.backend === undefined ? { kind: 'gateway' as const } : { kind: 'backend' as const, backend: entry.backend }] as const
  }))
  const tcp = {
    messageTimeoutMs: duration(input.tcp.messageTimeout),
    idleTimeoutMs: duration(input.tcp.idleTimeout),
    maxConnections: input.tcp.maxConnections,
    maxConnectionsPerSource: input.tcp.maxConnectionsPerSource
  }
  // 0 would close every connection before its first query.
  if (tcp.messageTimeoutMs <= 0) issues.push({ path: 'dns.tcp.messageTimeout', message: 'must be more than 0s' })
  if (tcp.idleTimeoutMs <= 0) issues.push({ path: 'dns.tcp.idleTimeout', message: 'must be more than 0s' })
  const { perSecond, burst, globalPerSecond } = input.rateLimit
  return { listen: input.listen.map(address), zone, nameserver: `${NAMESERVER_LABEL}.${zone}`, ttlSeconds: Math.floor(ttlMs / 1000), names, rateLimit: { perSecond, burst, globalPerSecond }, tcp }
}
