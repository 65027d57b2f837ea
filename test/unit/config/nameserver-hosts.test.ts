import { test } from 'node:test'
import assert from 'node:assert/strict'
import { Resolver } from 'node:dns/promises'
import { resolveNameserverHosts, type HostLookup } from '../../../src/config/nameserver-hosts.js'
import { parseConfigText } from '../../../src/config/load.js'
import { ConsulLikeDnsServer } from '../../helpers/dns-server.js'

// In this worktree's range: a fixed port, so a test never races another for a free one.
const DNS_PORT = 22053

const CONFIG = `
listen: { http: 127.0.0.1:8080 }
resolvers:
  consul: { nameservers: [consul.internal:8600, 127.0.0.2:53, nowhere.internal:8600] }
  fixed: { nameservers: [127.0.0.3:53] }
`

/** The system resolver's part played by a real DNS server on loopback: what a compose file's service name is to Docker's DNS. */
async function loopbackLookup (t: Parameters<typeof ConsulLikeDnsServer.start>[0]): Promise<HostLookup> {
  const server = await ConsulLikeDnsServer.start(t, { port: DNS_PORT })
  server.setAddresses('consul.internal', ['127.0.0.9'])
  const resolver = new Resolver({ timeout: 1000, tries: 1 })
  resolver.setServers([server.address])
  return async (host) => {
    const [address] = await resolver.resolve4(host)
    if (address === undefined) throw Object.assign(new Error(`no address for ${host}`), { code: 'ENODATA' })
    return address
  }
}

test('nameservers written as host names become their addresses, keeping their port; addresses are left as they are', async (t) => {
  const lookup = await loopbackLookup(t)
  const config = parseConfigText(CONFIG.replace(', nowhere.internal:8600', ''), {})
  const { config: resolved, issues } = await resolveNameserverHosts(config, lookup)
  assert.deepEqual(issues, [])
  assert.deepEqual(resolved.resolvers.get('consul')?.nameservers.map((address) => address.label), ['127.0.0.9:8600', '127.0.0.2:53'])
  assert.deepEqual(resolved.resolvers.get('fixed')?.nameservers.map((address) => address.label), ['127.0.0.3:53'])
})

test('a name that does not resolve is an issue with its path and the resolver\'s code; the others still resolve', async (t) => {
  const lookup = await loopbackLookup(t)
  const { config, issues } = await resolveNameserverHosts(parseConfigText(CONFIG, {}), lookup)
  assert.equal(issues.length, 1)
  assert.equal(issues[0]?.path, 'resolvers.consul.nameservers[2]')
  assert.match(issues[0]?.message ?? '', /^cannot resolve the host name "nowhere\.internal": E[A-Z]+$/)
  assert.deepEqual(config.resolvers.get('consul')?.nameservers.map((address) => address.label), ['127.0.0.9:8600', '127.0.0.2:53', 'nowhere.internal:8600'])
})

test('without a host name among the nameservers nothing is looked up and the configuration is the same object', async () => {
  const config = parseConfigText(CONFIG.replace('consul.internal:8600, ', '').replace(', nowhere.internal:8600', ''), {})
  const lookup: HostLookup = async () => { throw new Error('looked up') }
  const resolved = await resolveNameserverHosts(config, lookup)
  assert.equal(resolved.config, config)
  assert.deepEqual(resolved.issues, [])
})
