import type { FrontendConfig } from '../config/types.js'

/** What routing may look at. `host` is lower-case, without port or root dot. */
export type RequestFacts = {
  readonly host: string
  readonly path: string
  readonly method: string
  /** A request header by lower-case name (first value). */
  readonly header: (name: string) => string | undefined
}

/** A DNS label: what a captured {env} must be before it may become part of a query name. */
const DNS_LABEL = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/

/**
 * Everything but the host, which the router indexes: pathPrefix (a plain
 * string prefix, as Envoy's `prefix`), exact header values, method.
 */
export function matchesRest (frontend: FrontendConfig, facts: RequestFacts): boolean {
  const { pathPrefix, headers, methods } = frontend.match
  if (pathPrefix !== undefined && !facts.path.startsWith(pathPrefix)) return false
  if (methods.size > 0 && !methods.has(facts.method)) return false
  for (const [name, value] of headers) {
    if (facts.header(name) !== value) return false
  }
  return true
}

/**
 * A captured environment, checked: a DNS label that matches the frontend's
 * pattern, or undefined. Spec §3: no query name is built from unchecked input.
 */
export function checkEnv (frontend: FrontendConfig, label: string): string | undefined {
  if (!DNS_LABEL.test(label)) return undefined
  const pattern = frontend.envPattern
  return pattern !== undefined && pattern.test(label) ? label : undefined
}

/**
 * The Host header as routing sees it: lower-case, port and root dot removed.
 * Undefined when it is not a host name or IP literal (the request is malformed).
 */
export function normalizeHost (value: string | undefined): string | undefined {
  if (value === undefined || value.length === 0 || value.length > 255) return undefined
  const lower = value.toLowerCase()
  if (lower.startsWith('[')) {
    const end = lower.indexOf(']')
    const v6 = /^\[[0-9a-f:.]+\](?::(\d{1,5}))?$/.exec(lower)
    if (end < 0 || v6 === null || !isPort(v6[1])) return undefined
    return lower.slice(0, end + 1)
  }
  const match = /^([a-z0-9_.-]+?)\.?(?::(\d{1,5}))?$/.exec(lower)
  if (match === null || !isPort(match[2])) return undefined
  const host = match[1] as string
  if (host.startsWith('.') || host.includes('..')) return undefined
  return host
}

/** RFC 3986 allows any digits; a port beyond 65535 names nothing, so the Host is malformed. */
function isPort (text: string | undefined): boolean {
  return text === undefined || Number(text) <= 65535
}
