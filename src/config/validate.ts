import type { ErrorObject } from 'ajv'
import { readDuration } from '../util/duration.js'
import type { ConfigIssue } from '../errors.js'
import { checkDocument } from './generated-validate.js'

/**
 * The configuration's checker: config/gateway.schema.json (written from
 * schema.ts by `npm run schema`, for editors) compiled by ajv at build time
 * into generated-validate.ts, so that no process loads TypeBox (266 modules,
 * about 14 MB of RSS) or compiles the schema (about 18 MB) to start:
 * scripts/validator-source.ts. Its errors are ajv's; below, a person's words
 * for them.
 */

/**
 * Validate a configuration document against the schema, filling defaults in
 * place. Returns every problem, each with its path in the document.
 */
export function validateAgainstSchema (document: unknown): ConfigIssue[] {
  if (checkDocument(document)) return []
  const issues = (checkDocument.errors ?? []).flatMap(describeError)
  const seen = new Set<string>()
  return issues.filter((issue) => {
    const key = `${issue.path}\u0000${issue.message}`
    if (seen.has(key)) return false
    seen.add(key)
    return true
  })
}

/** Fields people put in `backends.NAME` that belong elsewhere: where they go (issue 22: a new operator's first week). */
const MISPLACED_IN_A_BACKEND: Readonly<Record<string, string>> = {
  template: 'a templated backend is written where a frontend names its backend: frontends[].backend: { template: "web-{env}", discovery: { … } }'
}

/** `/backends/web-prod/retry/attempts` → `backends.web-prod.retry.attempts`; `/frontends/0` → `frontends[0]`. */
function pointerToPath (pointer: string): string {
  if (pointer === '') return ''
  return pointer.slice(1).split('/')
    .map((segment) => segment.replaceAll('~1', '/').replaceAll('~0', '~'))
    .reduce((path, segment) => /^\d+$/.test(segment)
      ? `${path}[${segment}]`
      : path === '' ? segment : `${path}.${segment}`, '')
}

const join = (path: string, key: string): string => path === '' ? key : `${path}.${key}`

const FORMAT_MESSAGES: Record<string, string> = {
  duration: 'must be a duration such as 250ms, 1s or 5m',
  address: 'must be host:port, such as 127.0.0.1:8600 or [::1]:8600',
  cidr: 'must be an IP address or a CIDR block, such as 10.0.0.0/8 or fd00::/8',
  'http-url': 'must be an http:// or https:// URL, such as http://otel-collector:4318'
}

const PATTERN_MESSAGES: Record<string, string> = {
  hashOn: 'must be header:NAME, cookie:NAME, client-ip or path',
  template: 'must contain {env}',
  path: 'must start with /',
  pathPrefix: 'must start with /',
  stripPrefix: 'must start with /',
  name: 'must be letters, digits, _ . - (starting with a letter or digit)',
  method: 'must be an upper-case HTTP method such as GET',
  allowedHosts: 'must be a host name without a port, such as srvgate or srvgate.monitoring.svc'
}

function describeError (error: ErrorObject): ConfigIssue[] {
  const path = pointerToPath(error.instancePath)
  // Errors inside an anyOf branch are reported once, by the anyOf itself.
  // `if` only says which branch failed; the branch's own errors say why.
  if (/\/anyOf\/\d+\//.test(error.schemaPath) || error.keyword === 'if') return []
  const parent = error.parentSchema as Record<string, unknown> | undefined
  const params = error.params as Record<string, unknown>
  const field = path.split(/[.[]/).pop() ?? ''
  switch (error.keyword) {
    case 'required':
      return [{ path: join(path, String(params.missingProperty)), message: 'is required' }]
    case 'additionalProperties': {
      const name = String(params.additionalProperty)
      const hint = /^backends\.[^.[]+$/.test(path) ? MISPLACED_IN_A_BACKEND[name] : undefined
      if (hint !== undefined) return [{ path: join(path, name), message: `is not a known field of a backend: ${hint}` }]
      const meant = closestName(name, Object.keys((parent?.properties ?? {}) as Record<string, unknown>))
      return [{ path: join(path, name), message: meant === undefined ? 'is not a known field' : `is not a known field (did you mean ${meant}?)` }]
    }
    case 'dependentRequired':
      return [{ path: join(path, String(params.missingProperty)), message: `is required when ${String(params.property)} is set` }]
    case 'propertyNames':
      return [{ path: join(path, String(params.propertyName)), message: PATTERN_MESSAGES.name as string }]
    case 'type':
      // `timeout: 30` is the commonest slip: say what was meant.
      if (parent?.format === 'duration' && typeof error.data === 'number') return [{ path, message: `must be a duration such as ${error.data}s or ${error.data}ms (a number has no unit)` }]
      // A field of two types (accessLog.query: boolean or list) names both.
      return [{ path, message: `must be ${String(params.type).split(',').map(article).join(' or ')}` }]
    case 'minimum':
    case 'maximum': {
      const kind = parent?.type === 'integer' ? 'an integer' : 'a number'
      return [{ path, message: `must be ${kind} ${error.keyword === 'minimum' ? '>=' : '<='} ${String(params.limit)}` }]
    }
    case 'enum':
      return [{ path, message: `must be one of: ${(params.allowedValues as unknown[]).join(', ')}` }]
    case 'format': {
      const message = FORMAT_MESSAGES[String(params.format)] ?? error.message ?? 'is invalid'
      // `1h1h`, `30m1h`, `1h30`: say what is wrong with it, not only what a duration looks like.
      const reading = params.format === 'duration' && typeof error.data === 'string' ? readDuration(error.data) : undefined
      return [{ path, message: reading !== undefined && 'problem' in reading && reading.problem !== undefined ? `${message}; ${reading.problem}` : message }]
    }
    case 'pattern':
      // A duration's pattern is its format again, for editors: the format's message says it.
      if (parent?.format === 'duration') return []
      return [{ path, message: PATTERN_MESSAGES[field.replace(/\]$/, '')] ?? PATTERN_MESSAGES[previousField(path)] ?? `must match ${String(params.pattern)}` }]
    case 'minLength':
      return [{ path, message: 'must not be empty' }]
    case 'minItems':
      return [{ path, message: `must have at least ${String(params.limit)} item(s)` }]
    case 'uniqueItems':
      return [{ path, message: 'must not repeat an item' }]
    case 'anyOf':
      return [{ path, message: describeAnyOf(parent) }]
    case 'not':
      return [{ path, message: 'takes srv or a, not both' }]
    default:
      return [{ path, message: error.message ?? 'is invalid' }]
  }
}

/**
 * The known field a mistyped one most likely meant: the same letters in
 * another case (basicauth), or at most two edits away (userFile, copyHeader);
 * undefined when none is that close.
 */
export function closestName (name: string, known: readonly string[]): string | undefined {
  const lower = name.toLowerCase()
  const sameLetters = known.find((candidate) => candidate.toLowerCase() === lower)
  if (sameLetters !== undefined) return sameLetters
  let best: { readonly name: string, readonly distance: number } | undefined
  for (const candidate of known) {
    const distance = editDistance(lower, candidate.toLowerCase())
    if (distance <= Math.min(2, Math.max(1, Math.floor(candidate.length / 3))) && (best === undefined || distance < best.distance)) best = { name: candidate, distance }
  }
  return best?.name
}

/** Edits between two names, a swap of neighbours counting as one (optimal string alignment; names are short). */
function editDistance (a: string, b: string): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => i === 0 ? j : j === 0 ? i : 0))
  const at = (i: number, j: number): number => (d[i] as number[])[j] as number
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      let value = Math.min(at(i - 1, j) + 1, at(i, j - 1) + 1, at(i - 1, j - 1) + (a[i - 1] === b[j - 1] ? 0 : 1))
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) value = Math.min(value, at(i - 2, j - 2) + 1)
      ;(d[i] as number[])[j] = value
    }
  }
  return at(a.length, b.length)
}

function describeAnyOf (parent: Record<string, unknown> | undefined): string {
  const branches = (parent?.anyOf ?? []) as Array<Record<string, unknown>>
  const required = branches.flatMap((branch) => (branch.required as string[] | undefined) ?? [])
  if (required.length > 0) return `needs one of: ${required.join(', ')}`
  const types = branches.map((branch) => String(branch.type))
  return `must be ${types.map(article).join(' or ')}`
}

/** `frontends[0].match.method[1]` → `method`: the field an array item belongs to. */
function previousField (path: string): string {
  const match = /([A-Za-z]+)\[\d+\]$/.exec(path)
  return match?.[1] ?? ''
}

function article (type: string): string {
  return /^[aeiou]/.test(type) ? `an ${type}` : `a ${type}`
}
