import { CidrSet } from '../util/cidr.js'
import type { GatewayConfig, ResolverConfig } from './types.js'
import type { GatewayDocument } from './schema.js'
import { address, addressPolicy, cidr, duration } from './convert.js'
import { compileBackends } from './compile-backends.js'
import type { Findings } from './findings.js'
import { compileFrontends } from './compile-frontends.js'
import { checkListeners, checkOnDemandFrontends, compileListen, compileTls } from './compile-listeners.js'
import { compileDnsFace } from './compile-dns.js'
import { compileTracing } from './compile-tracing.js'
import type { Environment } from './environment.js'

/**
 * A validated document (defaults filled) → the compiled configuration, with
 * the checks that span fields (orderings, what a name may refer to). Never
 * throws on bad input: every section is compiled and every finding collected,
 * so one pass reports them all; the caller decides what the issues mean.
 */
export function compileDocument (document: GatewayDocument, env: Environment = process.env): { readonly config: GatewayConfig, readonly findings: Findings } {
  const findings: Findings = { issues: [], warnings: [] }
  const resolvers = compileResolvers(document.resolvers, findings)
  const { backends, splits } = compileBackends(document.backends, findings)
  const frontends = compileFrontends(document.frontends, splits, findings)
  const listen = compileListen(document.listen)
  const tls = compileTls(document.tls, listen, findings)
  checkOnDemandFrontends(tls?.acme, frontends, findings)
  const dns = document.dns === undefined ? undefined : compileDnsFace(document.dns, backends, splits, findings)
  checkListeners(listen, dns, document.admin.token, findings)
  const config: GatewayConfig = {
    warnings: findings.warnings,
    listen,
    tls,
    ...compileAdmin(document.admin),
    drain: { delayMs: duration(document.drain.delay), timeoutMs: duration(document.drain.timeout) },
    client: compileClient(document.client),
    trustedProxies: new CidrSet(document.trustedProxies.map(cidr)),
    templatedBackends: { max: document.templatedBackends.max, idleTimeoutMs: duration(document.templatedBackends.idleTimeout), newPerSecond: document.templatedBackends.newPerSecond },
    accessLog: { format: document.accessLog.format, query: typeof document.accessLog.query === 'boolean' ? document.accessLog.query : new Set(document.accessLog.query) },
    statePath: document.statePath,
    metrics: { perInstance: document.metrics.perInstance },
    workers: document.workers,
    resolvers,
    backends,
    splits,
    frontends,
    dns,
    tracing: compileTracing(document.tracing, findings, env)
  }
  return { config, findings }
}

function compileResolvers (input: GatewayDocument['resolvers'], { issues }: Findings): Map<string, ResolverConfig> {
  return new Map(Object.entries(input).map(([name, resolver]) => {
    const path = `resolvers.${name}`
    const ttl = { minMs: duration(resolver.ttl.min), maxMs: duration(resolver.ttl.max) }
    if (ttl.minMs > ttl.maxMs) issues.push({ path: `${path}.ttl`, message: 'min must not be greater than max' })
    const targetTtl = { minMs: duration(resolver.targetTtl.min), maxMs: duration(resolver.targetTtl.max) }
    if (targetTtl.minMs > targetTtl.maxMs) issues.push({ path: `${path}.targetTtl`, message: 'min must not be greater than max' })
    const compiled: ResolverConfig = {
      name,
      nameservers: resolver.nameservers.map(address),
      timeoutMs: duration(resolver.timeout),
      attempts: resolver.attempts,
      ttl,
      targetTtl,
      staleForMs: duration(resolver.staleFor),
      negativeTtlMs: duration(resolver.negativeTtl),
      emptyGraceMs: duration(resolver.emptyGrace),
      ednsPayload: resolver.ednsPayload,
      addressPolicy: addressPolicy(resolver.addressPolicy) ?? { allow: undefined, deny: new CidrSet([]) }
    }
    return [name, compiled] as const
  }))
}

function compileAdmin (input: GatewayDocument['admin']): Pick<GatewayConfig, 'adminToken' | 'adminAllowedHosts'> {
  return {
    adminToken: input.token,
    adminAllowedHosts: new Set(input.allowedHosts.map((name) => name.toLowerCase().replace(/\.$/, '')))
  }
}

function compileClient (input: GatewayDocument['client']): GatewayConfig['client'] {
  return {
    headersTimeoutMs: duration(input.headersTimeout),
    bodyIdleTimeoutMs: duration(input.bodyIdleTimeout),
    keepAliveTimeoutMs: duration(input.keepAliveTimeout),
    sendTimeoutMs: duration(input.sendTimeout),
    maxHeaderCount: input.maxHeaderCount,
    maxHeaderBytes: input.maxHeaderBytes,
    maxConnections: input.maxConnections,
    maxConnectionsPerIp: input.maxConnectionsPerIp,
    maxConcurrentStreams: input.maxConcurrentStreams,
    bufferBodyBytes: input.bufferBodyBytes,
    bufferTotalBytes: input.bufferTotalBytes,
    minBodyRate: input.minBodyRate
  }
}
