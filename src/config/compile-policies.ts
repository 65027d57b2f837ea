import type { ConfigIssue } from '../errors.js'
import type { GatewayDocument } from './schema.js'
import type { AccessConfig, CompressConfig, RateLimitConfig } from './types.js'
import { addressPolicy, duration, hashKey } from './convert.js'
import { settableName } from './compile-headers.js'
import { isHttpUrl } from './formats.js'

type FrontendDocument = GatewayDocument['frontends'][number]

/** What compress: true means: text-like types (Caddy's encode list), answers of 1 KiB and more, every encoding Node has. */
export const COMPRESS_DEFAULTS = {
  types: ['text/*', 'application/json', 'application/javascript', 'application/xml', 'application/xhtml+xml', 'application/rss+xml', 'application/atom+xml', 'application/ld+json', 'application/manifest+json', 'application/wasm', 'image/svg+xml', 'font/ttf', 'font/otf'],
  minBytes: 1024
} as const

/**
 * A frontend's `access`: undefined when it names nothing to check (the
 * frontend then pays nothing per request). `{env}` is allowed in the realm
 * and the forwardAuth URL where the frontend captures one.
 */
export function compileAccess (input: FrontendDocument['access'], path: string, capturesEnv: boolean, issues: ConfigIssue[]): AccessConfig | undefined {
  if (input === undefined) return undefined
  const addresses = input.allow === undefined && input.deny === undefined ? undefined : addressPolicy(input)
  const basicAuth = input.basicAuth
  if (basicAuth !== undefined) {
    checkEnv(basicAuth.realm, `${path}.basicAuth.realm`, capturesEnv, issues)
    if (/\{[^}]*\}/.test(basicAuth.usersFile)) issues.push({ path: `${path}.basicAuth.usersFile`, message: 'no placeholder is filled in a file name: one users file serves every environment of the frontend' })
  }
  const forward = input.forwardAuth
  let forwardAuth: AccessConfig['forwardAuth']
  if (forward !== undefined) {
    const at = `${path}.forwardAuth`
    checkEnv(forward.url, `${at}.url`, capturesEnv, issues)
    if (!isHttpUrl(forward.url.replaceAll('{env}', 'env'))) issues.push({ path: `${at}.url`, message: 'is not an http:// or https:// URL with a host' })
    const copyHeaders = forward.copyHeaders.flatMap((name, index) => settableName(name, `${at}.copyHeaders[${index}]`, 'request', issues) ?? [])
    forwardAuth = { url: forward.url, copyHeaders: [...new Set(copyHeaders)], timeoutMs: duration(forward.timeout) }
  }
  if (addresses === undefined && basicAuth === undefined && forwardAuth === undefined) {
    issues.push({ path, message: 'names nothing to check: give allow, deny, basicAuth or forwardAuth, or leave access out' })
    return undefined
  }
  return { addresses, basicAuth: basicAuth === undefined ? undefined : { realm: basicAuth.realm, usersFile: basicAuth.usersFile }, forwardAuth }
}

/** A frontend's `rateLimit`. */
export function compileRateLimit (input: FrontendDocument['rateLimit'], path: string, issues: ConfigIssue[]): RateLimitConfig | undefined {
  if (input === undefined) return undefined
  if (input.burst < 1) issues.push({ path: `${path}.burst`, message: 'must be at least 1' })
  const key = hashKey(input.key)
  const redis = input.store?.redis
  return {
    requestsPerSecond: input.requestsPerSecond,
    burst: input.burst,
    key: key.kind === 'header' ? key : { kind: 'client-ip' },
    maxKeys: input.maxKeys,
    redis: redis === undefined ? undefined : { url: redis.url, prefix: redis.prefix, timeoutMs: duration(redis.timeout) }
  }
}

/** `{env}` only where the frontend captures one; no other placeholder (a typo such as {envv} would be sent as written). */
function checkEnv (value: string, path: string, capturesEnv: boolean, issues: ConfigIssue[]): void {
  const unknown = [...value.matchAll(/\{([^}]*)\}/g)].map((match) => match[1] as string).find((name) => name !== 'env')
  if (unknown !== undefined) issues.push({ path, message: `{${unknown}} is not a placeholder: only {env} is filled in here` })
  else if (value.includes('{env}') && !capturesEnv) issues.push({ path, message: '{env} needs a match.host that captures {env}' })
}

/** A frontend's `compress`: true is the defaults; false or absent, none. */
export function compileCompress (input: FrontendDocument['compress']): CompressConfig | undefined {
  if (input === undefined || input === false) return undefined
  const { types, minBytes } = input === true ? COMPRESS_DEFAULTS : input
  return {
    types: new Set(types.filter((type) => !type.endsWith('/*'))),
    typePrefixes: types.filter((type) => type.endsWith('/*')).map((type) => type.slice(0, -1)),
    minBytes
  }
}
