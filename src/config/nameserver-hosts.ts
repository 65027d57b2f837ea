import { lookup } from 'node:dns/promises'
import type { ConfigIssue } from '../errors.js'
import { makeAddress } from '../util/address.js'
import type { GatewayConfig } from './types.js'

/** Turns a host name into one IP address (the system resolver: /etc/hosts, Docker's and Kubernetes' DNS). */
export type HostLookup = (host: string) => Promise<string>

export const systemLookup: HostLookup = async (host) => (await lookup(host)).address

/**
 * Nameservers written as host names (`consul:8600`, as in a compose file)
 * become IP addresses. A name that does not resolve is an issue with its path;
 * its entry is left as written. The configuration is unchanged when no
 * nameserver is a name.
 */
export async function resolveNameserverHosts (config: GatewayConfig, hostLookup: HostLookup): Promise<{ readonly config: GatewayConfig, readonly issues: ConfigIssue[] }> {
  const issues: ConfigIssue[] = []
  const named = [...config.resolvers.values()].some((resolver) => resolver.nameservers.some((address) => address.family === 0))
  if (!named) return { config, issues }
  const resolvers = new Map(await Promise.all([...config.resolvers].map(async ([name, resolver]) => {
    const nameservers = await Promise.all(resolver.nameservers.map(async (address, index) => {
      if (address.family !== 0) return address
      try {
        return makeAddress(await hostLookup(address.host), address.port)
      } catch (cause) {
        issues.push({ path: `resolvers.${name}.nameservers[${index}]`, message: `cannot resolve the host name "${address.host}": ${(cause as { code?: string }).code ?? (cause as Error).message}` })
        return address
      }
    }))
    return [name, { ...resolver, nameservers }] as const
  })))
  return { config: { ...config, resolvers }, issues }
}
