import type { TestContext } from 'node:test'
import { ConsulLikeDnsServer } from './dns-server.js'
import { Upstream } from './upstream.js'

/**
 * The setting most policy tests start from: a Consul-like DNS server with one
 * upstream registered as `_web._tcp.service.consul`, and `config(rest)`, a
 * gateway file whose listeners, resolver and `web` backend name them, `rest`
 * after (frontends, and anything else the test needs).
 */
export async function webBehindDns (t: TestContext): Promise<{ readonly dns: ConsulLikeDnsServer, readonly upstream: Upstream, readonly config: (rest: string) => string }> {
  const dns = await ConsulLikeDnsServer.start(t)
  const upstream = await Upstream.start(t, 'web')
  dns.setService('_web._tcp.service.consul', [{ address: '127.0.0.1', port: upstream.port }])
  const config = (rest: string): string => `
listen: { http: "127.0.0.1:\${PORT}", admin: "127.0.0.1:\${ADMIN_PORT}" }
resolvers: { consul: { nameservers: ["${dns.address}"] } }
backends: { web: { discovery: { resolver: consul, srv: _web._tcp.service.consul } } }
${rest}`
  return { dns, upstream, config }
}
