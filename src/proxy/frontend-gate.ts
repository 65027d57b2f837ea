import type { IncomingHttpHeaders } from 'node:http'
import type { FrontendConfig } from '../config/types.js'
import { ErrorCode, ProxyError, withoutStack } from '../errors.js'
import type { BasicAuth } from '../policy/basic-auth.js'
import type { Admission, Departure, ForwardAuth } from '../policy/forward-auth.js'
import { PolicyAnswer } from '../policy/policy-answer.js'
import type { RateLimits } from '../policy/rate-limits.js'
import { firstValue } from './headers.js'

/** A request as a frontend's policies see it. */
export type GateFacts = {
  readonly method: string
  readonly url: string
  readonly headers: IncomingHttpHeaders
  readonly host: string
  readonly clientIp: string
  readonly isSecure: boolean
  readonly env: string | undefined
  readonly clientGone: Departure | undefined
}

/** What a gate says: through (with forwardAuth's headers, if any), or the answer that refuses the request. */
export type GateVerdict = undefined | Admission | ProxyError | PolicyAnswer

/**
 * A frontend's policies before anything else is done for a request (and
 * before a redirect, DNS or a templated backend): `access` — allow/deny, then
 * basicAuth, then forwardAuth — then `rateLimit`, in that order, each only
 * when the one before let the request through. Answers at once (no promise)
 * unless a password must be checked or an auth service asked. Owned by the
 * data plane (its caches and connections outlive a reload); the policies
 * themselves are the running configuration's.
 */
export class FrontendGate {
  constructor (readonly basicAuth: BasicAuth, readonly forwardAuth: ForwardAuth, readonly rateLimits: RateLimits | undefined) {}

  /** True when `frontend` has a policy to apply (else a request costs nothing here). */
  static applies (frontend: FrontendConfig): boolean {
    return frontend.access !== undefined || frontend.rateLimit !== undefined
  }

  admit (frontend: FrontendConfig, facts: GateFacts): GateVerdict | Promise<GateVerdict> {
    const access = frontend.access
    if (access === undefined) return this.#rateLimit(frontend, facts, undefined)
    const addresses = access.addresses
    if (addresses !== undefined) {
      const denied = addresses.deny.find(facts.clientIp)
      if (denied !== undefined) return withoutStack(() => new ProxyError(ErrorCode.ACCESS_DENIED, `access.deny: ${facts.clientIp} is in ${denied.label}`))
      if (addresses.allow !== undefined && !addresses.allow.matches(facts.clientIp)) return withoutStack(() => new ProxyError(ErrorCode.ACCESS_DENIED, `access.allow: ${facts.clientIp} is in none of its blocks`))
    }
    const basic = access.basicAuth
    if (basic === undefined) return this.#forwardAuth(frontend, facts)
    const realm = facts.env === undefined ? basic.realm : basic.realm.replaceAll('{env}', facts.env)
    const checked = this.basicAuth.check(basic.usersFile, realm, firstValue(facts.headers.authorization))
    if (checked instanceof Promise) return checked.then((refusal) => refusal ?? this.#forwardAuth(frontend, facts))
    return checked ?? this.#forwardAuth(frontend, facts)
  }

  #forwardAuth (frontend: FrontendConfig, facts: GateFacts): GateVerdict | Promise<GateVerdict> {
    const forward = frontend.access?.forwardAuth
    if (forward === undefined) return this.#rateLimit(frontend, facts, undefined)
    return this.forwardAuth.ask(forward, { ...facts, proto: facts.isSecure ? 'https' : 'http' }, facts.clientGone).then((verdict) => {
      if (verdict instanceof ProxyError || verdict instanceof PolicyAnswer) return verdict
      return this.#rateLimit(frontend, facts, verdict)
    })
  }

  #rateLimit (frontend: FrontendConfig, facts: GateFacts, admission: Admission | undefined): GateVerdict | Promise<GateVerdict> {
    const limit = frontend.rateLimit
    if (limit === undefined || this.rateLimits === undefined) return admission
    // A request without the header is limited under "-", all such requests together.
    const key = limit.key.kind === 'client-ip' ? facts.clientIp : firstValue(facts.headers[limit.key.name]) ?? '-'
    const taken = this.rateLimits.take(frontend.name, limit, key)
    if (taken instanceof Promise) return taken.then((refusal) => refusal ?? admission)
    return taken ?? admission
  }

  async close (): Promise<void> {
    await this.forwardAuth.close()
    await this.basicAuth.close()
    await this.rateLimits?.close()
  }
}

/**
 * forwardAuth's copyHeaders on the request as it will be forwarded: each set
 * to the auth service's value, or removed when its answer had none, so a
 * client's own X-User never reaches the instance. Also removed: a client's
 * look-alikes with underscores (X_User, which CGI, PHP, WSGI and Rack read as
 * X-User), and those names in its Connection header (which would make them
 * hop-by-hop and drop the service's values).
 */
export function applyAdmission (headers: IncomingHttpHeaders, admission: Admission): void {
  const names = new Set(admission.headers.map(([name]) => name))
  for (const name in headers) {
    if (name.includes('_') && names.has(name.replaceAll('_', '-'))) Reflect.deleteProperty(headers, name)
  }
  const connection = headers.connection
  if (connection !== undefined) {
    const kept = connection.split(',').filter((token) => !names.has(token.trim().toLowerCase()))
    if (kept.length === 0) Reflect.deleteProperty(headers, 'connection')
    else headers.connection = kept.join(',')
  }
  for (const [name, value] of admission.headers) {
    if (value === undefined) Reflect.deleteProperty(headers, name)
    else headers[name] = value
  }
}
