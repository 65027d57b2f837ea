import type { ConfigIssue } from '../errors.js'
import type { GatewayDocument } from './schema.js'
import type { HeaderRules } from './types.js'

type HeadersInput = NonNullable<GatewayDocument['frontends'][number]['headers']>

/** Hop-by-hop fields (RFC 9110 §7.6.1) and the framing ones: the connection's, not a frontend's to set or remove. */
const HOP_BY_HOP = ['connection', 'keep-alive', 'proxy-connection', 'proxy-authenticate', 'proxy-authorization', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'expect', 'content-length']
/** What srvgate writes on every request to an instance (its forwarding headers, the request id, the trace context). */
const OWN_REQUEST = ['x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host', 'forwarded', 'x-real-ip', 'x-request-id', 'traceparent', 'tracestate']
/** What srvgate writes on every answer. */
const OWN_RESPONSE = ['x-request-id', 'strict-transport-security']
/** A field name (RFC 9110 §5.1: a token). */
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/

/**
 * A header name a frontend's rules may set or remove on a request or an
 * answer, lower case; undefined (an issue pushed) when it is not a token, is
 * hop-by-hop, or is one srvgate writes itself.
 */
export function settableName (name: string, at: string, where: 'request' | 'response', issues: ConfigIssue[]): string | undefined {
  const lower = name.toLowerCase()
  const own = where === 'request' ? OWN_REQUEST : OWN_RESPONSE
  if (!TOKEN.test(name)) issues.push({ path: at, message: 'is not a header name' })
  else if (HOP_BY_HOP.includes(lower)) issues.push({ path: at, message: `${lower} is hop-by-hop or framing: it belongs to the connection, not to a frontend` })
  else if (own.includes(lower)) issues.push({ path: at, message: `srvgate writes ${lower} itself on every ${where}: it cannot be set or removed here` })
  else return lower
  return undefined
}

/**
 * A frontend's `headers` section: names checked (a token; not hop-by-hop,
 * not one srvgate writes itself: X-Forwarded-For and the rest would let a
 * rule pose as another client), values checked (no CR, LF or NUL; `{env}`
 * only where the frontend captures one).
 */
export function compileHeaderRules (input: HeadersInput | undefined, path: string, capturesEnv: boolean, issues: ConfigIssue[]): { readonly request: HeaderRules | undefined, readonly response: HeaderRules | undefined } | undefined {
  if (input === undefined) return undefined
  const side = (rules: HeadersInput['request'], where: 'request' | 'response'): HeaderRules | undefined => {
    if (rules === undefined) return undefined
    const checkName = (name: string, at: string): string | undefined => settableName(name, at, where, issues)
    const set: Array<readonly [string, string]> = []
    for (const [name, value] of Object.entries(rules.set ?? {})) {
      const at = `${path}.${where}.set.${name}`
      const lower = checkName(name, at)
      if (/[\r\n\0]/.test(value)) issues.push({ path: at, message: 'must not contain CR, LF or NUL' })
      else if (value.includes('{env}') && !capturesEnv) issues.push({ path: at, message: '{env} needs a match.host that captures {env}' })
      else if (lower !== undefined) set.push([lower, value])
    }
    const remove = new Set<string>()
    for (const [index, name] of (rules.remove ?? []).entries()) {
      const lower = checkName(name, `${path}.${where}.remove[${index}]`)
      if (lower !== undefined) remove.add(lower)
    }
    return { set, setNames: new Set(set.map(([name]) => name)), remove }
  }
  return { request: side(input.request, 'request'), response: side(input.response, 'response') }
}
