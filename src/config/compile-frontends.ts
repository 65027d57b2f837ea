import type { ConfigIssue } from '../errors.js'
import type { BackendTemplateConfig, FrontendConfig, HostMatch, SplitConfig } from './types.js'
import type { GatewayDocument } from './schema.js'
import { ENV_PLACEHOLDER, HOST_LABEL } from './convert.js'
import { compileBackendOptions, compileDiscovery, compileTemplateSplit } from './compile-backends.js'
import type { Findings } from './findings.js'
import { compileHeaderRules } from './compile-headers.js'
import { compileAccess, compileCompress, compileRateLimit } from './compile-policies.js'

/** frontends, in file order; then the ones an earlier frontend always takes first are warned of. */
export function compileFrontends (input: GatewayDocument['frontends'], splits: ReadonlyMap<string, SplitConfig>, findings: Findings): FrontendConfig[] {
  const names = new Set<string>()
  const frontends = input.map((frontend, index) => {
    const path = `frontends[${index}]`
    if (names.has(frontend.name)) findings.issues.push({ path: `${path}.name`, message: `duplicates the frontend name "${frontend.name}"` })
    names.add(frontend.name)
    return compileFrontend(frontend, path, splits, findings)
  })
  findings.warnings.push(...unreachableFrontends(frontends))
  return frontends
}

function compileFrontend (frontend: GatewayDocument['frontends'][number], path: string, splits: ReadonlyMap<string, SplitConfig>, findings: Findings): FrontendConfig {
  const { issues } = findings
  const host = frontend.match.host === undefined ? undefined : hostMatch(frontend.match.host, `${path}.match.host`, issues)
  const capturesEnv = host?.kind === 'capture'
  const envPattern = frontend.env === undefined ? undefined : compileEnvPattern(frontend.env.pattern, `${path}.env.pattern`, issues)
  if (capturesEnv && envPattern === undefined && frontend.env === undefined) {
    // Spec §3: no query name is ever built from unchecked client input.
    issues.push({ path: `${path}.env.pattern`, message: 'is required when match.host captures {env}' })
  }
  if (!capturesEnv && frontend.env !== undefined) {
    issues.push({ path: `${path}.env`, message: 'needs a match.host that captures {env}' })
  }
  let backend: FrontendConfig['backend']
  if (typeof frontend.backend === 'string') {
    backend = { kind: splits.has(frontend.backend) ? 'split' : 'static', name: frontend.backend }
  } else if ('split' in frontend.backend) {
    if (!capturesEnv) issues.push({ path: `${path}.backend.template`, message: 'needs a match.host that captures {env}' })
    backend = { kind: 'template-split', split: compileTemplateSplit(frontend.backend, `${path}.backend`, findings) }
  } else {
    if (!capturesEnv) issues.push({ path: `${path}.backend.template`, message: 'needs a match.host that captures {env}' })
    const template: BackendTemplateConfig = {
      template: frontend.backend.template,
      discovery: compileDiscovery(frontend.backend.discovery, `${path}.backend.discovery`, true, findings),
      ...compileBackendOptions(frontend.backend, `${path}.backend`, findings)
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
    access: compileAccess(frontend.access, `${path}.access`, capturesEnv, issues),
    rateLimit: compileRateLimit(frontend.rateLimit, `${path}.rateLimit`, issues),
    compress: compileCompress(frontend.compress),
    rewrite: { stripPrefix: frontend.rewrite?.stripPrefix, addPrefix: frontend.rewrite?.addPrefix?.replace(/\/$/, '') },
    redirect: compileRedirect(frontend.redirect, `${path}.redirect`, capturesEnv, issues),
    headers: compileHeaderRules(frontend.headers, `${path}.headers`, capturesEnv, issues)
  }
}

/** `redirect.to`: its placeholders are {host}, {path}, {query} and (with a capture) {env}; no CR or LF. */
function compileRedirect (input: GatewayDocument['frontends'][number]['redirect'], path: string, capturesEnv: boolean, issues: ConfigIssue[]): FrontendConfig['redirect'] {
  if (input === undefined) return undefined
  const unknown = [...input.to.matchAll(/\{([^}]*)\}/g)].map((match) => match[1] as string).filter((name) => !['host', 'path', 'query', 'env'].includes(name))
  if (unknown.length > 0) issues.push({ path: `${path}.to`, message: `{${unknown[0] as string}} is not a placeholder: {host}, {path}, {query}${capturesEnv ? ', {env}' : ''}` })
  if (input.to.includes('{env}') && !capturesEnv) issues.push({ path: `${path}.to`, message: '{env} needs a match.host that captures {env}' })
  if (/[\r\n\0]/.test(input.to)) issues.push({ path: `${path}.to`, message: 'must not contain CR, LF or NUL' })
  return { to: input.to, status: input.status }
}

function hostMatch (host: string, path: string, issues: ConfigIssue[]): HostMatch | undefined {
  const lower = host.toLowerCase().replace(/\.$/, '')
  const labels = lower.split('.')
  const captureAt = labels.indexOf(ENV_PLACEHOLDER)
  const rest = labels.filter((_, index) => index !== captureAt && !(index === 0 && labels[0] === '*'))
  if (lower.split(ENV_PLACEHOLDER).length > 2 || (lower.includes(ENV_PLACEHOLDER) && captureAt < 0)) {
    issues.push({ path, message: '{env} must be one whole label, used once' })
    return undefined
  }
  if (labels.slice(1).includes('*') || (labels[0] === '*' && captureAt >= 0)) {
    issues.push({ path, message: '* is only allowed as the first label (*.example.com)' })
    return undefined
  }
  if (!rest.every((label) => HOST_LABEL.test(label))) {
    issues.push({ path, message: 'must be a host name, *.suffix or a name with an {env} label' })
    return undefined
  }
  if (labels[0] === '*') return { kind: 'suffix', suffix: lower.slice(1) }
  if (captureAt >= 0) {
    return { kind: 'capture', prefix: labels.slice(0, captureAt).map((label) => `${label}.`).join(''), suffix: labels.slice(captureAt + 1).map((label) => `.${label}`).join('') }
  }
  return { kind: 'exact', host: lower }
}

function compileEnvPattern (pattern: string, path: string, issues: ConfigIssue[]): RegExp | undefined {
  try {
    // Anchored whole: a pattern written without ^…$ must still match the whole value.
    return new RegExp(`^(?:${pattern})$`)
  } catch (cause) {
    issues.push({ path, message: `is not a valid regular expression: ${(cause as Error).message}` })
    return undefined
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
