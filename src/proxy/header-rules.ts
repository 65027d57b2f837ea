import type { IncomingHttpHeaders } from 'node:http'
import type { HeaderRules } from '../config/types.js'

/**
 * A frontend's `headers` policy (Caddy's header_up/header_down, HAProxy's
 * http-request/http-response set-header and del-header, Traefik's headers
 * middleware), applied after srvgate's own headers: `remove` first, then
 * `set` (which replaces any value of that name). `{env}` in a value is the
 * environment the frontend captured. Names are lower case; the config
 * refuses hop-by-hop names and the ones srvgate writes itself
 * (compile-headers.ts). A frontend without rules never calls these.
 */

/** The request headers an instance receives, with the rules applied (a new object: the edge's stays as it was). */
export function applyRequestRules (headers: IncomingHttpHeaders, rules: HeaderRules, env: string | undefined): IncomingHttpHeaders {
  const result: IncomingHttpHeaders = {}
  for (const name in headers) if (!rules.remove.has(name) && !rules.setNames.has(name)) result[name] = headers[name]
  for (const [name, value] of rules.set) result[name] = valueFor(value, env)
  return result
}

/** The answer's flat name/value list (writeHead's), with the rules applied. */
export function applyResponseRules (headers: readonly string[], rules: HeaderRules, env: string | undefined): string[] {
  const result: string[] = []
  for (let index = 0; index < headers.length; index += 2) {
    const name = (headers[index] as string).toLowerCase()
    if (rules.remove.has(name) || rules.setNames.has(name)) continue
    result.push(headers[index] as string, headers[index + 1] as string)
  }
  for (const [name, value] of rules.set) result.push(name, valueFor(value, env))
  return result
}

function valueFor (value: string, env: string | undefined): string {
  return env === undefined || !value.includes('{env}') ? value : value.replaceAll('{env}', env)
}
