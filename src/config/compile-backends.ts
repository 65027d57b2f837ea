import type { BackendConfig, BackendOptions, BackendTemplateConfig, DiscoveryConfig, SplitConfig, TemplateSplitConfig } from './types.js'
import type { BackendOptionsDocument, DiscoveryBackendDocument, DiscoveryDocument, SplitDocument, TemplateSplitDocument } from './schema-backend.js'
import { ENV_PLACEHOLDER, addressPolicy, duration, hashKey, isDnsName } from './convert.js'
import type { Findings } from './findings.js'

/** backends: those with discovery, and the splits of them (splits do not nest). */
export function compileBackends (input: Record<string, DiscoveryBackendDocument | SplitDocument>, findings: Findings): { backends: Map<string, BackendConfig>, splits: Map<string, SplitConfig> } {
  const backends = new Map<string, BackendConfig>()
  const splitDocuments: Array<[string, SplitDocument]> = []
  for (const [name, backend] of Object.entries(input)) {
    if ('split' in backend) {
      splitDocuments.push([name, backend])
      continue
    }
    const path = `backends.${name}`
    backends.set(name, {
      name,
      discovery: compileDiscovery(backend.discovery, `${path}.discovery`, false, findings),
      failover: (backend.failover ?? []).map((target, index) => compileDiscovery(target, `${path}.failover[${index}]`, false, findings)),
      ...compileBackendOptions(backend, path, findings)
    })
  }
  const splitNames = new Set(splitDocuments.map(([name]) => name))
  const splits = new Map(splitDocuments.map(([name, split]) => [name, compileSplit(name, split, splitNames, findings)] as const))
  return { backends, splits }
}

function compileSplit (name: string, input: SplitDocument, splitNames: ReadonlySet<string>, { issues }: Findings): SplitConfig {
  const path = `backends.${name}.split`
  const seen = new Set<string>()
  input.split.forEach((member, index) => {
    // Unknown names are reported by referenceIssues; here: what a known name may not be.
    if (splitNames.has(member.backend)) {
      issues.push({ path: `${path}[${index}].backend`, message: `"${member.backend}" is a split: a split's members are backends with discovery (splits do not nest)` })
    }
    if (seen.has(member.backend)) issues.push({ path: `${path}[${index}].backend`, message: `names "${member.backend}" twice` })
    seen.add(member.backend)
  })
  if (input.split.every((member) => member.weight === 0)) issues.push({ path, message: 'needs a member with a weight above 0' })
  return {
    name,
    members: input.split.map(({ backend, weight }) => ({ backend, weight })),
    stickyOn: input.stickyOn === undefined ? undefined : hashKey(input.stickyOn)
  }
}

/** A frontend's templated split: members are templated backends, one per env each. */
export function compileTemplateSplit (input: TemplateSplitDocument, path: string, findings: Findings): TemplateSplitConfig {
  const seen = new Set<string>([input.template])
  const members = input.split.map((member, index) => {
    const memberPath = `${path}.split[${index}]`
    if (seen.has(member.template)) findings.issues.push({ path: `${memberPath}.template`, message: `"${member.template}" is used twice in this split: each member is a backend of its own` })
    seen.add(member.template)
    const template: BackendTemplateConfig = {
      template: member.template,
      discovery: compileDiscovery(member.discovery, `${memberPath}.discovery`, true, findings),
      ...compileBackendOptions(member, memberPath, findings)
    }
    return { template, weight: member.weight }
  })
  if (members.every((member) => member.weight === 0)) findings.issues.push({ path: `${path}.split`, message: 'needs a member with a weight above 0' })
  return { template: input.template, members, stickyOn: input.stickyOn === undefined ? undefined : hashKey(input.stickyOn) }
}

export function compileDiscovery (input: DiscoveryDocument, path: string, isTemplate: boolean, { issues, warnings }: Findings): DiscoveryConfig {
  if (input.srv !== undefined && input.port !== undefined) {
    warnings.push({ path: `${path}.port`, message: 'is ignored with srv: each SRV record carries its instance\'s port' })
  }
  const name = (input.srv ?? input.a ?? '').toLowerCase()
  const field = input.srv !== undefined ? 'srv' : 'a'
  if (isTemplate && !name.includes(ENV_PLACEHOLDER)) issues.push({ path: `${path}.${field}`, message: 'must contain {env}' })
  if (!isTemplate && name.includes(ENV_PLACEHOLDER)) issues.push({ path: `${path}.${field}`, message: '{env} is only allowed in a frontend backend template' })
  const sample = name.replaceAll(ENV_PLACEHOLDER, 'env')
  if (!isDnsName(sample)) issues.push({ path: `${path}.${field}`, message: 'must be a DNS name (labels of letters, digits, _ and -)' })
  return input.srv !== undefined
    ? { kind: 'srv', resolver: input.resolver, name }
    : { kind: 'address', resolver: input.resolver, name, port: input.port as number }
}

export function compileBackendOptions (input: BackendOptionsDocument, path: string, { issues }: Findings): BackendOptions {
  if (input.balance === 'hash' && input.hashOn === undefined) issues.push({ path: `${path}.hashOn`, message: 'is required when balance is hash' })
  if (input.balance !== 'hash' && input.hashOn !== undefined) issues.push({ path: `${path}.hashOn`, message: 'is only used with balance: hash' })
  const check = input.healthCheck
  const healthCheck = check === undefined
    ? undefined
    : { path: check.path, intervalMs: duration(check.interval), timeoutMs: duration(check.timeout), rise: check.rise, fall: check.fall }
  if (healthCheck !== undefined && healthCheck.timeoutMs > healthCheck.intervalMs) {
    issues.push({ path: `${path}.healthCheck.timeout`, message: 'must not be longer than interval' })
  }
  if (input.protocol === 'h2' && input.tls === undefined) {
    issues.push({ path: `${path}.protocol`, message: 'h2 is HTTP/2 over TLS and needs tls (serverName); for HTTP/2 without TLS use h2c' })
  }
  if (input.protocol === 'h2c' && input.tls !== undefined) {
    issues.push({ path: `${path}.protocol`, message: 'h2c is HTTP/2 without TLS, but tls is set; for HTTP/2 over TLS use h2' })
  }
  return {
    balance: input.balance,
    hashOn: input.hashOn === undefined ? undefined : hashKey(input.hashOn),
    healthCheck,
    outlier: {
      consecutiveFailures: input.outlier.consecutiveFailures,
      ejectForMs: duration(input.outlier.ejectFor),
      maxEjectedPercent: input.outlier.maxEjectedPercent
    },
    retry: { attempts: input.retry.attempts, on: new Set(input.retry.on) },
    timeouts: { connectMs: duration(input.timeouts.connect), responseMs: duration(input.timeouts.response) },
    maxConnectionsPerInstance: input.maxConnectionsPerInstance,
    protocol: input.protocol,
    tls: input.tls === undefined ? undefined : { serverName: input.tls.serverName, caPath: input.tls.ca, verify: input.tls.verify },
    maxConnectionAgeMs: input.maxConnectionAge === undefined ? undefined : duration(input.maxConnectionAge),
    addressPolicy: addressPolicy(input.addressPolicy),
    slowStartMs: input.slowStart === undefined ? undefined : duration(input.slowStart)
  }
}
