import type { ProxyError } from '../errors.js'

/**
 * An answer a frontend's policy gives itself, never an instance's: a
 * redirect (proxy/redirect.ts), or an auth service's refusal relayed as it
 * came (forward-auth.ts). `error`, when set, is what the access log records
 * as the reason; a redirect has none.
 */
export class PolicyAnswer {
  constructor (
    readonly status: number,
    readonly headers: ReadonlyArray<readonly [string, string]>,
    readonly body: Buffer | undefined = undefined,
    readonly error: ProxyError | undefined = undefined
  ) {}
}
