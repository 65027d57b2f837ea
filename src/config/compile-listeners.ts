import { isLoopback } from '../util/address.js'
import { templatesOf, type AcmeConfig, type DnsFaceConfig, type FrontendConfig, type GatewayConfig, type TlsConfig } from './types.js'
import type { GatewayDocument } from './schema.js'
import { address, duration } from './convert.js'
import type { Findings } from './findings.js'
import { listenerClashes } from './listener-clash.js'

type Listen = GatewayConfig['listen']

export function compileListen (input: GatewayDocument['listen']): Listen {
  return {
    http: input.http === undefined ? undefined : address(input.http),
    https: input.https === undefined ? undefined : address(input.https),
    admin: address(input.admin),
    h2c: input.h2c
  }
}

/** A shorter rotation would throw away the tickets it issues almost as soon as clients hold them. */
const MIN_TICKET_ROTATION_MS = 60_000

/** tls: the certificates listen.https serves. Without them https is an issue like any other, reported with the rest. */
export function compileTls (input: GatewayDocument['tls'], listen: Listen, { issues, warnings }: Findings): TlsConfig | undefined {
  if (listen.https !== undefined && input === undefined) issues.push({ path: 'tls', message: 'is required when listen.https is set (tls.certificates)' })
  if (listen.https === undefined && input !== undefined) warnings.push({ path: 'tls', message: 'is ignored without listen.https' })
  if (input?.redirectHttp === true && listen.http === undefined) warnings.push({ path: 'tls.redirectHttp', message: 'has no http listener to redirect from' })
  if (input === undefined) return undefined
  const rotateEveryMs = duration(input.sessionTickets.rotateEvery)
  if (rotateEveryMs < MIN_TICKET_ROTATION_MS) issues.push({ path: 'tls.sessionTickets.rotateEvery', message: `is ${input.sessionTickets.rotateEvery}: at least 1m (each rotation makes every ticket out there useless)` })
  if (input.certificates.length === 0 && input.acme === undefined) issues.push({ path: 'tls.certificates', message: 'must list at least one certificate, unless tls.acme is set' })
  return {
    certificates: input.certificates.map(({ cert, key }) => ({ certPath: cert, keyPath: key })),
    defaultName: input.default?.toLowerCase(),
    minVersion: input.minVersion,
    redirectHttp: input.redirectHttp,
    sessionTickets: { enabled: input.sessionTickets.enabled, rotateEveryMs },
    hsts: input.hsts === undefined ? undefined : `max-age=${Math.floor(duration(input.hsts.maxAge) / 1000)}${input.hsts.includeSubDomains ? '; includeSubDomains' : ''}`,
    acme: input.acme === undefined ? undefined : compileAcme(input.acme, listen, { issues, warnings })
  }
}

const DEFAULT_ACME_DIR = '/var/lib/srvgate/acme'

const DNS_NAME = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)+$/

/** Why a name of tls.acme.names cannot have a certificate from srvgate; undefined: it can. */
function acmeNameProblem (name: string): string | undefined {
  if (name.startsWith('*.')) return 'a wildcard needs the DNS-01 challenge, which srvgate does not answer; list the names, or serve a wildcard from a file (tls.certificates)'
  if (/^[0-9.]+$/.test(name) || name.includes(':')) return 'an IP address; tls.acme obtains certificates for DNS names'
  if (!DNS_NAME.test(name.toLowerCase()) || name.length > 253) return 'not a DNS name with at least two labels (letters, digits and hyphens)'
  return undefined
}

/** tls.acme: http-01 needs the plain listener; wildcards need DNS-01, which srvgate does not answer. */
function compileAcme (input: NonNullable<NonNullable<GatewayDocument['tls']>['acme']>, listen: Listen, { issues, warnings }: Findings): AcmeConfig {
  let challenges = input.challenges
  if (challenges.includes('http-01') && listen.http === undefined) {
    challenges = challenges.filter((challenge) => challenge !== 'http-01')
    if (challenges.length === 0) issues.push({ path: 'tls.acme.challenges', message: 'http-01 needs listen.http (the CA connects to port 80); add listen.http or tls-alpn-01' })
    else warnings.push({ path: 'tls.acme.challenges', message: 'http-01 needs listen.http: only tls-alpn-01 is used' })
  }
  input.names.forEach((name, index) => {
    const problem = acmeNameProblem(name)
    if (problem !== undefined) issues.push({ path: `tls.acme.names[${index}]`, message: `"${name}": ${problem}` })
  })
  if (input.storage.dir !== undefined && input.storage.redis !== undefined) issues.push({ path: 'tls.acme.storage', message: 'takes dir or redis, not both' })
  return {
    directoryUrl: input.directory,
    directoryCaPath: input.directoryCa,
    email: input.email,
    eab: input.eab,
    storage: input.storage.redis === undefined ? { kind: 'dir', dir: input.storage.dir ?? DEFAULT_ACME_DIR } : { kind: 'redis', url: input.storage.redis.url, prefix: input.storage.redis.prefix },
    names: input.names.map((name) => name.toLowerCase()),
    challenges,
    renewBeforeMs: duration(input.renewBefore),
    onDemand: input.onDemand === undefined
      ? undefined
      : {
          frontends: input.onDemand.frontends,
          perMinute: input.onDemand.perMinute,
          max: input.onDemand.max,
          negativeTtlMs: duration(input.onDemand.negativeTtl),
          waitMs: duration(input.onDemand.wait)
        }
  }
}

/** tls.acme.onDemand.frontends: each a frontend whose host captures {env} and whose backend is a template. */
export function checkOnDemandFrontends (acme: AcmeConfig | undefined, frontends: readonly FrontendConfig[], { issues }: Findings): void {
  acme?.onDemand?.frontends.forEach((name, index) => {
    const frontend = frontends.find((candidate) => candidate.name === name)
    const path = `tls.acme.onDemand.frontends[${index}]`
    if (frontend === undefined) issues.push({ path, message: `no frontend is named "${name}"` })
    else if (frontend.match.host?.kind !== 'capture' || templatesOf(frontend.backend).length === 0) issues.push({ path, message: `frontend "${name}" is not templated (match.host with {env} and a backend template): only an environment that exists in DNS gets a certificate on demand` })
  })
}

/** Listeners that would share a socket, and an admin listener open beyond loopback without a token. */
export function checkListeners (listen: Listen, dns: DnsFaceConfig | undefined, adminToken: string | undefined, { issues, warnings }: Findings): void {
  issues.push(...listenerClashes([
    ...(['http', 'https', 'admin'] as const).flatMap((field) => listen[field] === undefined ? [] : [{ path: `listen.${field}`, address: listen[field] }]),
    ...(dns?.listen ?? []).map((address, index) => ({ path: `dns.listen[${index}]`, address, isIpv6Only: true }))
  ]))
  if (adminToken === undefined && !isLoopback(listen.admin)) {
    warnings.push({ path: 'listen.admin', message: `the admin listener (${listen.admin.label}) is reachable beyond loopback and has no token (admin.token)` })
  }
}
