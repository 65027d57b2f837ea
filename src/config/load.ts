import { readFile } from 'node:fs/promises'
import { X509Certificate } from 'node:crypto'
import { lookup } from 'node:dns/promises'
import { LineCounter, isMap, isScalar, isSeq, parseDocument, type Document as YamlDocument } from 'yaml'
import { ConfigError, ErrorCode, type ConfigIssue } from '../errors.js'
import { isLoopback, makeAddress, parseAddress, type Address } from '../util/address.js'
import { parseDuration, type Milliseconds } from '../util/duration.js'
import { CidrSet, parseCidr, type Cidr } from '../util/cidr.js'
import type {
  AddressPolicyConfig, BackendConfig, BackendOptions, BackendTemplateConfig, DiscoveryConfig, FrontendConfig,
  DnsFaceConfig, GatewayConfig, HashKey, HostMatch, ResolverConfig, SplitConfig, TemplateSplitConfig
} from './types.js'
import { validateAgainstSchema } from './validate.js'
import { listenerClashes } from './listener-clash.js'
import type { GatewayDocument as Document } from './schema.js'
import type { AddressPolicyDocument, BackendOptionsDocument, DiscoveryDocument, SplitDocument, TemplateSplitDocument } from './schema-backend.js'

type Environment = Readonly<Record<string, string | undefined>>

/** Turns a host name into one IP address (the system resolver: /etc/hosts, Docker's and Kubernetes' DNS). */
export type HostLookup = (host: string) => Promise<string>

const systemLookup: HostLookup = async (host) => (await lookup(host)).address

/**
 * Read, validate and compile a configuration file, then resolve nameservers
 * given as host names (`consul:8600`, as in a compose file). All or nothing:
 * throws ConfigError with every issue. Called at start and on every reload,
 * so a nameserver that moved is followed by a reload.
 */
export async function loadConfigFile (file: string, env: Environment = process.env, hostLookup: HostLookup = systemLookup): Promise<GatewayConfig> {
  return (await readConfigFile(file, env, hostLookup)).config
}

/** A configuration and the text it was compiled from (a cluster's workers compile the same bytes). */
export type LoadedConfig = { readonly config: GatewayConfig, readonly text: string }

/** loadConfigFile, keeping the text. */
export async function readConfigFile (file: string, env: Environment = process.env, hostLookup: HostLookup = systemLookup): Promise<LoadedConfig> {
  let text: string
  try {
    text = await readFile(file, 'utf8')
  } catch (cause) {
    throw new ConfigError(ErrorCode.CONFIG_READ, [{ path: '', message: `cannot read ${file}: ${(cause as Error).message}` }], { cause })
  }
  const config = await resolveNameserverHosts(parseConfigText(text, env), hostLookup)
  await checkBackendCas(config)
  return { config, text }
}

/** backends.*.tls.ca must be a readable PEM certificate: a bad path is a configuration error, not a failure per request. */
async function checkBackendCas (config: GatewayConfig): Promise<void> {
  const issues: ConfigIssue[] = []
  const withTls = [
    ...[...config.backends.values()].map((backend) => ({ path: `backends.${backend.name}.tls.ca`, tls: backend.tls })),
    ...config.frontends.flatMap((frontend, index) => frontend.backend.kind === 'template' ? [{ path: `frontends[${index}].backend.tls.ca`, tls: frontend.backend.template.tls }] : [])
  ]
  for (const { path, tls } of withTls) {
    if (tls?.caPath === undefined) continue
    try {
      // eslint-disable-next-line no-new
      new X509Certificate(await readFile(tls.caPath))
    } catch (error) {
      issues.push({ path, message: `${tls.caPath} is not a readable PEM certificate (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})` })
    }
  }
  if (issues.length > 0) throw new ConfigError(ErrorCode.CONFIG_INVALID, issues)
}

/** Nameservers written as host names become IP addresses; a name that does not resolve is a configuration error with its path. */
async function resolveNameserverHosts (config: GatewayConfig, hostLookup: HostLookup = systemLookup): Promise<GatewayConfig> {
  const named = [...config.resolvers.values()].some((resolver) => resolver.nameservers.some((address) => address.family === 0))
  if (!named) return config
  const issues: ConfigIssue[] = []
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
  if (issues.length > 0) throw new ConfigError(ErrorCode.CONFIG_INVALID, issues)
  return deepFreeze({ ...config, resolvers })
}

/** Parse YAML or JSON text (JSON is read by the YAML parser) and compile it. */
export function parseConfigText (text: string, env: Environment = process.env): GatewayConfig {
  const lineCounter = new LineCounter()
  const document = parseDocument(text, { prettyErrors: true, uniqueKeys: true, lineCounter })
  if (document.errors.length > 0) {
    // yaml's messages already say "at line N, column M".
    throw new ConfigError(ErrorCode.CONFIG_PARSE, document.errors.map((error) => ({ path: '', message: error.message.split('\n')[0] ?? error.message })))
  }
  try {
    const config = compileConfig(document.toJS(), env)
    if (config.warnings.length === 0) return config
    return deepFreeze({ ...config, warnings: config.warnings.map((issue) => ({ ...issue, line: lineOf(document, lineCounter, issue.path) })) })
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error
    // Each issue gets the line of the deepest node its path reaches in the file.
    const issues = error.issues.map((issue) => ({ ...issue, line: lineOf(document, lineCounter, issue.path) }))
    throw new ConfigError(error.code, issues, { cause: error.cause })
  }
}

/** `backends.web.prod.retry.attempts` → the line of that node (keys may hold dots: the longest key that fits wins). */
function lineOf (document: YamlDocument.Parsed, lineCounter: LineCounter, path: string): number | undefined {
  let node: unknown = document.contents
  let rest = path
  let line = rangeLine(node, lineCounter)
  while (rest.length > 0) {
    const index = /^\[(\d+)\]\.?/.exec(rest)
    if (index !== null && isSeq(node)) {
      node = node.items[Number(index[1])]
      rest = rest.slice(index[0].length)
    } else if (isMap(node)) {
      const keys = node.items.map((pair) => String(isScalar(pair.key) ? pair.key.value : pair.key))
        .filter((key) => rest === key || rest.startsWith(`${key}.`) || rest.startsWith(`${key}[`))
        .sort((a, b) => b.length - a.length)
      const key = keys[0]
      if (key === undefined) break
      node = node.get(key, true)
      rest = rest.slice(key.length).replace(/^\./, '')
    } else {
      break
    }
    line = rangeLine(node, lineCounter) ?? line
  }
  return line
}

function rangeLine (node: unknown, lineCounter: LineCounter): number | undefined {
  const range = (node as { range?: [number, number, number] } | null | undefined)?.range
  return range === undefined ? undefined : lineCounter.linePos(range[0]).line
}

/** Validate a parsed document (a fresh copy is filled with defaults) and compile it. */
export function compileConfig (input: unknown, env: Environment = process.env): GatewayConfig {
  const envIssues: ConfigIssue[] = []
  const document = substituteEnvironment(structuredClone(input ?? {}), '', env, envIssues)
  const schemaIssues = validateAgainstSchema(document)
  // A value whose variable is unset is reported once, as unset, not again as malformed.
  const unsetPaths = new Set(envIssues.map((issue) => issue.path))
  // References are checked on the raw document too, so one pass reports shape and reference errors alike.
  const shapeIssues = [...envIssues, ...schemaIssues.filter((issue) => !unsetPaths.has(issue.path))]
  const references = referenceIssues(document)
  if (shapeIssues.length > 0) throw new ConfigError(ErrorCode.CONFIG_INVALID, [...shapeIssues, ...references])
  const compiler = new Compiler()
  const config = compiler.compile(document as Document)
  const issues = [...references, ...compiler.issues]
  if (issues.length > 0) throw new ConfigError(ErrorCode.CONFIG_INVALID, issues)
  return deepFreeze(config)
}

/**
 * Cross-references (a frontend's backend, a discovery's resolver), read from
 * the document whatever its shape: a file with shape errors still gets its
 * reference errors in the same report.
 */
function referenceIssues (document: unknown): ConfigIssue[] {
  const issues: ConfigIssue[] = []
  const root = isRecord(document) ? document : {}
  const resolvers = isRecord(root.resolvers) ? root.resolvers : {}
  const backends = isRecord(root.backends) ? root.backends : {}
  const checkResolver = (discovery: unknown, path: string): void => {
    if (!isRecord(discovery) || typeof discovery.resolver !== 'string') return
    if (!Object.hasOwn(resolvers, discovery.resolver)) issues.push({ path: `${path}.resolver`, message: `unknown resolver "${discovery.resolver}"${knownNames(resolvers)}` })
  }
  for (const [name, backend] of Object.entries(backends)) {
    if (!isRecord(backend)) continue
    checkResolver(backend.discovery, `backends.${name}.discovery`)
    if (Array.isArray(backend.failover)) backend.failover.forEach((target, index) => { checkResolver(target, `backends.${name}.failover[${index}]`) })
    if (!Array.isArray(backend.split)) continue
    backend.split.forEach((member: unknown, index) => {
      if (!isRecord(member) || typeof member.backend !== 'string' || Object.hasOwn(backends, member.backend)) return
      issues.push({ path: `backends.${name}.split[${index}].backend`, message: `unknown backend "${member.backend}"${knownNames(backends)}` })
    })
  }
  const frontends = Array.isArray(root.frontends) ? root.frontends : []
  frontends.forEach((frontend: unknown, index) => {
    if (!isRecord(frontend)) return
    const path = `frontends[${index}].backend`
    if (typeof frontend.backend === 'string' && !Object.hasOwn(backends, frontend.backend)) {
      issues.push({ path, message: `unknown backend "${frontend.backend}"${knownNames(backends)}` })
    }
    if (isRecord(frontend.backend)) checkResolver(frontend.backend.discovery, `${path}.discovery`)
  })
  return issues
}

function isRecord (value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value)
}

function knownNames (record: Record<string, unknown>): string {
  const names = Object.keys(record)
  return names.length === 0 ? ' (none are defined)' : ` (known: ${names.join(', ')})`
}

const ENV_REFERENCE = /\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g

/** Spec §2: `${NAME}` inside a string is the environment variable NAME; an unset one is an error. */
function substituteEnvironment (value: unknown, path: string, env: Environment, issues: ConfigIssue[]): unknown {
  if (typeof value === 'string') {
    return value.replace(ENV_REFERENCE, (_, name: string) => {
      const replacement = env[name]
      if (replacement === undefined) {
        issues.push({ path, message: `environment variable ${name} is not set` })
        return ''
      }
      return replacement
    })
  }
  if (Array.isArray(value)) return value.map((item, index) => substituteEnvironment(item, `${path}[${index}]`, env, issues))
  if (value !== null && typeof value === 'object') {
    for (const [key, item] of Object.entries(value)) {
      (value as Record<string, unknown>)[key] = substituteEnvironment(item, path === '' ? key : `${path}.${key}`, env, issues)
    }
  }
  return value
}

const ENV_PLACEHOLDER = '{env}'
const HOST_LABEL = /^(?!-)[a-z0-9_-]{1,63}(?<!-)$/

/** Checks that span fields (references, orderings) and builds the frozen structures. */
class Compiler {
  readonly issues: ConfigIssue[] = []
  readonly warnings: ConfigIssue[] = []

  compile (document: Document): GatewayConfig {
    const resolvers = new Map(Object.entries(document.resolvers).map(([name, resolver]) => {
      const path = `resolvers.${name}`
      const ttl = { minMs: duration(resolver.ttl.min), maxMs: duration(resolver.ttl.max) }
      if (ttl.minMs > ttl.maxMs) this.issues.push({ path: `${path}.ttl`, message: 'min must not be greater than max' })
      const targetTtl = { minMs: duration(resolver.targetTtl.min), maxMs: duration(resolver.targetTtl.max) }
      if (targetTtl.minMs > targetTtl.maxMs) this.issues.push({ path: `${path}.targetTtl`, message: 'min must not be greater than max' })
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

    const backends = new Map<string, BackendConfig>()
    const splitDocuments: Array<[string, SplitDocument]> = []
    for (const [name, backend] of Object.entries(document.backends)) {
      if ('split' in backend) {
        splitDocuments.push([name, backend])
        continue
      }
      const path = `backends.${name}`
      backends.set(name, {
        name,
        discovery: this.discovery(backend.discovery, `${path}.discovery`, resolvers, false),
        failover: (backend.failover ?? []).map((target, index) => this.discovery(target, `${path}.failover[${index}]`, resolvers, false)),
        ...this.backendOptions(backend, path)
      })
    }
    const splitNames = new Set(splitDocuments.map(([name]) => name))
    const splits = new Map(splitDocuments.map(([name, split]) => [name, this.split(name, split, splitNames)] as const))

    const frontendNames = new Set<string>()
    const frontends = document.frontends.map((frontend, index): FrontendConfig => {
      const path = `frontends[${index}]`
      if (frontendNames.has(frontend.name)) this.issues.push({ path: `${path}.name`, message: `duplicates the frontend name "${frontend.name}"` })
      frontendNames.add(frontend.name)
      const host = frontend.match.host === undefined ? undefined : this.hostMatch(frontend.match.host, `${path}.match.host`)
      const capturesEnv = host?.kind === 'capture'
      const envPattern = frontend.env === undefined ? undefined : this.envPattern(frontend.env.pattern, `${path}.env.pattern`)
      if (capturesEnv && envPattern === undefined && frontend.env === undefined) {
        // Spec §3: no query name is ever built from unchecked client input.
        this.issues.push({ path: `${path}.env.pattern`, message: 'is required when match.host captures {env}' })
      }
      if (!capturesEnv && frontend.env !== undefined) {
        this.issues.push({ path: `${path}.env`, message: 'needs a match.host that captures {env}' })
      }
      let backend: FrontendConfig['backend']
      if (typeof frontend.backend === 'string') {
        backend = { kind: splits.has(frontend.backend) ? 'split' : 'static', name: frontend.backend }
      } else if ('split' in frontend.backend) {
        if (!capturesEnv) this.issues.push({ path: `${path}.backend.template`, message: 'needs a match.host that captures {env}' })
        backend = { kind: 'template-split', split: this.templateSplit(frontend.backend, `${path}.backend`, resolvers) }
      } else {
        if (!capturesEnv) this.issues.push({ path: `${path}.backend.template`, message: 'needs a match.host that captures {env}' })
        const template: BackendTemplateConfig = {
          template: frontend.backend.template,
          discovery: this.discovery(frontend.backend.discovery, `${path}.backend.discovery`, resolvers, true),
          ...this.backendOptions(frontend.backend, `${path}.backend`)
        }
        backend = { kind: 'template', template }
      }
      const methodList = frontend.match.method === undefined ? [] : [frontend.match.method].flat()
      return {
        name: frontend.name,
        match: {
          host,
          pathPrefix: frontend.match.pathPrefix,
          headers: new Map(Object.entries(frontend.match.headers ?? {}).map(([name, value]) => [name.toLowerCase(), value])),
          methods: new Set(methodList)
        },
        envPattern,
        backend,
        rewrite: { stripPrefix: frontend.rewrite?.stripPrefix }
      }
    })

    this.warnings.push(...unreachableFrontends(frontends))
    const listen = {
      http: document.listen.http === undefined ? undefined : address(document.listen.http),
      https: document.listen.https === undefined ? undefined : address(document.listen.https),
      admin: address(document.listen.admin)
    }
    if (listen.https !== undefined && document.tls === undefined) {
      throw new ConfigError(ErrorCode.CONFIG_INVALID, [{ path: 'tls', message: 'is required when listen.https is set (tls.certificates)' }])
    }
    if (listen.https === undefined && document.tls !== undefined) this.warnings.push({ path: 'tls', message: 'is ignored without listen.https' })
    if (document.tls?.redirectHttp === true && listen.http === undefined) this.warnings.push({ path: 'tls.redirectHttp', message: 'has no http listener to redirect from' })
    const tls = document.tls === undefined
      ? undefined
      : {
          certificates: document.tls.certificates.map(({ cert, key }) => ({ certPath: cert, keyPath: key })),
          defaultName: document.tls.default?.toLowerCase(),
          minVersion: document.tls.minVersion,
          redirectHttp: document.tls.redirectHttp,
          hsts: document.tls.hsts === undefined ? undefined : `max-age=${Math.floor(duration(document.tls.hsts.maxAge) / 1000)}${document.tls.hsts.includeSubDomains ? '; includeSubDomains' : ''}`
        }
    const dns = document.dns === undefined ? undefined : this.dnsFace(document.dns, backends, splits)
    this.issues.push(...listenerClashes([
      ...(['http', 'https', 'admin'] as const).flatMap((field) => listen[field] === undefined ? [] : [{ path: `listen.${field}`, address: listen[field] }]),
      ...(dns?.listen ?? []).map((address, index) => ({ path: `dns.listen[${index}]`, address, isIpv6Only: true }))
    ]))
    if (document.admin.token === undefined && !isLoopback(listen.admin)) {
      this.warnings.push({ path: 'listen.admin', message: `the admin listener (${listen.admin.label}) is reachable beyond loopback and has no token (admin.token)` })
    }
    return {
      warnings: this.warnings,
      listen,
      tls,
      adminToken: document.admin.token,
      adminAllowedHosts: new Set(document.admin.allowedHosts.map((name) => name.toLowerCase().replace(/\.$/, ''))),
      drain: { delayMs: duration(document.drain.delay), timeoutMs: duration(document.drain.timeout) },
      client: {
        headersTimeoutMs: duration(document.client.headersTimeout),
        bodyIdleTimeoutMs: duration(document.client.bodyIdleTimeout),
        keepAliveTimeoutMs: duration(document.client.keepAliveTimeout),
        sendTimeoutMs: duration(document.client.sendTimeout),
        maxHeaderCount: document.client.maxHeaderCount,
        maxHeaderBytes: document.client.maxHeaderBytes,
        maxConnections: document.client.maxConnections,
        maxConnectionsPerIp: document.client.maxConnectionsPerIp,
        maxConcurrentStreams: document.client.maxConcurrentStreams,
        bufferBodyBytes: document.client.bufferBodyBytes,
        bufferTotalBytes: document.client.bufferTotalBytes,
        minBodyRate: document.client.minBodyRate
      },
      trustedProxies: new CidrSet(document.trustedProxies.map(cidr)),
      templatedBackends: { max: document.templatedBackends.max, idleTimeoutMs: duration(document.templatedBackends.idleTimeout), newPerSecond: document.templatedBackends.newPerSecond },
      accessLog: { format: document.accessLog.format },
      statePath: document.statePath,
      workers: document.workers,
      resolvers,
      backends,
      splits,
      frontends,
      dns
    }
  }

  dnsFace (input: NonNullable<Document['dns']>, backends: ReadonlyMap<string, BackendConfig>, splits: ReadonlyMap<string, SplitConfig>): DnsFaceConfig {
    const zone = input.zone.toLowerCase().replace(/\.$/, '')
    if (!isDnsName(zone)) this.issues.push({ path: 'dns.zone', message: 'must be a DNS name' })
    const ttlMs = duration(input.ttl)
    if (ttlMs < 1000) this.issues.push({ path: 'dns.ttl', message: 'must be at least 1s (DNS TTLs are whole seconds; 0 would defeat caching)' })
    const names = new Map(Object.entries(input.names).map(([label, entry]) => {
      const path = `dns.names.${label}`
      if ((entry.backend === undefined) === (entry.gateway === undefined)) this.issues.push({ path, message: 'needs one of backend or gateway: true' })
      if (entry.backend !== undefined && splits.has(entry.backend)) this.issues.push({ path: `${path}.backend`, message: `"${entry.backend}" is a split: a DNS name answers for a backend with discovery` })
      else if (entry.backend !== undefined && !backends.has(entry.backend)) this.issues.push({ path: `${path}.backend`, message: `unknown backend "${entry.backend}"${backends.size === 0 ? ' (none are defined)' : ` (known: ${[...backends.keys()].join(', ')})`}` })
      return [label, entry.backend === undefined ? { kind: 'gateway' as const } : { kind: 'backend' as const, backend: entry.backend }] as const
    }))
    const tcp = {
      messageTimeoutMs: duration(input.tcp.messageTimeout),
      idleTimeoutMs: duration(input.tcp.idleTimeout),
      maxConnections: input.tcp.maxConnections,
      maxConnectionsPerSource: input.tcp.maxConnectionsPerSource
    }
    // 0 would close every connection before its first query.
    if (tcp.messageTimeoutMs <= 0) this.issues.push({ path: 'dns.tcp.messageTimeout', message: 'must be more than 0s' })
    if (tcp.idleTimeoutMs <= 0) this.issues.push({ path: 'dns.tcp.idleTimeout', message: 'must be more than 0s' })
    const { perSecond, burst, globalPerSecond } = input.rateLimit
    return { listen: input.listen.map(address), zone, ttlSeconds: Math.floor(ttlMs / 1000), names, rateLimit: { perSecond, burst, globalPerSecond }, tcp }
  }

  templateSplit (input: TemplateSplitDocument, path: string, resolvers: ReadonlyMap<string, ResolverConfig>): TemplateSplitConfig {
    const seen = new Set<string>([input.template])
    const members = input.split.map((member, index) => {
      const memberPath = `${path}.split[${index}]`
      if (seen.has(member.template)) this.issues.push({ path: `${memberPath}.template`, message: `"${member.template}" is used twice in this split: each member is a backend of its own` })
      seen.add(member.template)
      const template: BackendTemplateConfig = {
        template: member.template,
        discovery: this.discovery(member.discovery, `${memberPath}.discovery`, resolvers, true),
        ...this.backendOptions(member, memberPath)
      }
      return { template, weight: member.weight }
    })
    if (members.every((member) => member.weight === 0)) this.issues.push({ path: `${path}.split`, message: 'needs a member with a weight above 0' })
    return { template: input.template, members, stickyOn: input.stickyOn === undefined ? undefined : hashKey(input.stickyOn) }
  }

  split (name: string, input: SplitDocument, splitNames: ReadonlySet<string>): SplitConfig {
    const path = `backends.${name}.split`
    const seen = new Set<string>()
    input.split.forEach((member, index) => {
      // Unknown names are reported by referenceIssues; here: what a known name may not be.
      if (splitNames.has(member.backend)) {
        this.issues.push({ path: `${path}[${index}].backend`, message: `"${member.backend}" is a split: a split's members are backends with discovery (splits do not nest)` })
      }
      if (seen.has(member.backend)) this.issues.push({ path: `${path}[${index}].backend`, message: `names "${member.backend}" twice` })
      seen.add(member.backend)
    })
    if (input.split.every((member) => member.weight === 0)) this.issues.push({ path, message: 'needs a member with a weight above 0' })
    return {
      name,
      members: input.split.map(({ backend, weight }) => ({ backend, weight })),
      stickyOn: input.stickyOn === undefined ? undefined : hashKey(input.stickyOn)
    }
  }

  discovery (input: DiscoveryDocument, path: string, resolvers: ReadonlyMap<string, ResolverConfig>, isTemplate: boolean): DiscoveryConfig {
    if (input.srv !== undefined && input.port !== undefined) {
      this.warnings.push({ path: `${path}.port`, message: 'is ignored with srv: each SRV record carries its instance\'s port' })
    }
    const name = (input.srv ?? input.a ?? '').toLowerCase()
    const field = input.srv !== undefined ? 'srv' : 'a'
    if (isTemplate && !name.includes(ENV_PLACEHOLDER)) this.issues.push({ path: `${path}.${field}`, message: 'must contain {env}' })
    if (!isTemplate && name.includes(ENV_PLACEHOLDER)) this.issues.push({ path: `${path}.${field}`, message: '{env} is only allowed in a frontend backend template' })
    const sample = name.replaceAll(ENV_PLACEHOLDER, 'env')
    if (!isDnsName(sample)) this.issues.push({ path: `${path}.${field}`, message: 'must be a DNS name (labels of letters, digits, _ and -)' })
    return input.srv !== undefined
      ? { kind: 'srv', resolver: input.resolver, name }
      : { kind: 'address', resolver: input.resolver, name, port: input.port as number }
  }

  backendOptions (input: BackendOptionsDocument, path: string): BackendOptions {
    if (input.balance === 'hash' && input.hashOn === undefined) this.issues.push({ path: `${path}.hashOn`, message: 'is required when balance is hash' })
    if (input.balance !== 'hash' && input.hashOn !== undefined) this.issues.push({ path: `${path}.hashOn`, message: 'is only used with balance: hash' })
    const check = input.healthCheck
    const healthCheck = check === undefined
      ? undefined
      : { path: check.path, intervalMs: duration(check.interval), timeoutMs: duration(check.timeout), rise: check.rise, fall: check.fall }
    if (healthCheck !== undefined && healthCheck.timeoutMs > healthCheck.intervalMs) {
      this.issues.push({ path: `${path}.healthCheck.timeout`, message: 'must not be longer than interval' })
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
      tls: input.tls === undefined ? undefined : { serverName: input.tls.serverName, caPath: input.tls.ca, verify: input.tls.verify },
      maxConnectionAgeMs: input.maxConnectionAge === undefined ? undefined : duration(input.maxConnectionAge),
      addressPolicy: addressPolicy(input.addressPolicy),
      slowStartMs: input.slowStart === undefined ? undefined : duration(input.slowStart)
    }
  }

  hostMatch (host: string, path: string): HostMatch | undefined {
    const lower = host.toLowerCase().replace(/\.$/, '')
    const labels = lower.split('.')
    const captureAt = labels.indexOf(ENV_PLACEHOLDER)
    const rest = labels.filter((_, index) => index !== captureAt && !(index === 0 && labels[0] === '*'))
    if (lower.split(ENV_PLACEHOLDER).length > 2 || (lower.includes(ENV_PLACEHOLDER) && captureAt < 0)) {
      this.issues.push({ path, message: '{env} must be one whole label, used once' })
      return undefined
    }
    if (labels.slice(1).includes('*') || (labels[0] === '*' && captureAt >= 0)) {
      this.issues.push({ path, message: '* is only allowed as the first label (*.example.com)' })
      return undefined
    }
    if (!rest.every((label) => HOST_LABEL.test(label))) {
      this.issues.push({ path, message: 'must be a host name, *.suffix or a name with an {env} label' })
      return undefined
    }
    if (labels[0] === '*') return { kind: 'suffix', suffix: lower.slice(1) }
    if (captureAt >= 0) {
      return { kind: 'capture', prefix: labels.slice(0, captureAt).map((label) => `${label}.`).join(''), suffix: labels.slice(captureAt + 1).map((label) => `.${label}`).join('') }
    }
    return { kind: 'exact', host: lower }
  }

  envPattern (pattern: string, path: string): RegExp | undefined {
    try {
      // Anchored whole: a pattern written without ^…$ must still match the whole value.
      return new RegExp(`^(?:${pattern})$`)
    } catch (cause) {
      this.issues.push({ path, message: `is not a valid regular expression: ${(cause as Error).message}` })
      return undefined
    }
  }
}

/** Frontends an earlier one always takes first (first match wins): almost always a mistake in the order. */
function unreachableFrontends (frontends: readonly FrontendConfig[]): ConfigIssue[] {
  const warnings: ConfigIssue[] = []
  frontends.forEach((later, laterIndex) => {
    const earlierIndex = frontends.slice(0, laterIndex).findIndex((earlier) => covers(earlier, later))
    if (earlierIndex < 0) return
    const earlier = frontends[earlierIndex] as FrontendConfig
    warnings.push({ path: `frontends[${laterIndex}]`, message: `can never match: frontends[${earlierIndex}] ("${earlier.name}") comes first and matches every request "${later.name}" would` })
  })
  return warnings
}

/** True when every request `later` matches is matched by `earlier` too. */
function covers (earlier: FrontendConfig, later: FrontendConfig): boolean {
  const { match } = earlier
  if (match.headers.size > 0) return false
  if (match.methods.size > 0 && (later.match.methods.size === 0 || ![...later.match.methods].every((method) => match.methods.has(method)))) return false
  if (match.pathPrefix !== undefined && match.pathPrefix !== '/' && !(later.match.pathPrefix?.startsWith(match.pathPrefix) ?? false)) return false
  const host = match.host
  const laterHost = later.match.host
  if (host === undefined) return true
  if (laterHost === undefined) return false
  if (host.kind === 'exact') return laterHost.kind === 'exact' && laterHost.host === host.host
  if (host.kind === 'suffix') return (laterHost.kind === 'exact' && laterHost.host.endsWith(host.suffix)) || (laterHost.kind === 'suffix' && laterHost.suffix.endsWith(host.suffix))
  return false
}

function isDnsName (name: string): boolean {
  const labels = name.replace(/\.$/, '').split('.')
  return name.length <= 253 && labels.every((label) => HOST_LABEL.test(label))
}


// The schema has already checked these formats; a failure here is a bug, not bad input.
function duration (text: string): Milliseconds {
  const value = parseDuration(text)
  if (value === undefined) throw new Error(`schema let through a bad duration: ${text}`)
  return value
}

function address (text: string): Address {
  const value = parseAddress(text)
  if (value === undefined) throw new Error(`schema let through a bad address: ${text}`)
  return value
}

function cidr (text: string): Cidr {
  const value = parseCidr(text)
  if (value === undefined) throw new Error(`schema let through a bad CIDR block: ${text}`)
  return value
}

function addressPolicy (input: AddressPolicyDocument | undefined): AddressPolicyConfig | undefined {
  if (input === undefined) return undefined
  return { allow: input.allow === undefined ? undefined : new CidrSet(input.allow.map(cidr)), deny: new CidrSet((input.deny ?? []).map(cidr)) }
}

function hashKey (text: string): HashKey {
  if (text === 'client-ip') return { kind: 'client-ip' }
  if (text === 'path') return { kind: 'path' }
  const [kind, ...name] = text.split(':')
  return kind === 'header' ? { kind: 'header', name: name.join(':').toLowerCase() } : { kind: 'cookie', name: name.join(':') }
}

/**
 * Freeze the compiled configuration all the way down. Object.freeze does not
 * stop Map#set or Set#add (their entries are not properties), so those methods
 * are replaced on each instance by one that throws: read-only for real, not
 * only in the ReadonlyMap type.
 */
function readOnly (): never {
  throw new TypeError('the compiled configuration is read-only: a reload builds a new one')
}

function deepFreeze<T> (value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value) && !(value instanceof RegExp)) {
    if (value instanceof Map || value instanceof Set) {
      const names = value instanceof Map ? ['set', 'delete', 'clear'] : ['add', 'delete', 'clear']
      for (const name of names) Object.defineProperty(value, name, { value: readOnly })
    }
    Object.freeze(value)
    const children = value instanceof Map ? [...value.values()] : value instanceof Set ? [] : Object.values(value)
    for (const child of children) deepFreeze(child)
  }
  return value
}
