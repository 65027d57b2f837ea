import { templatesOf, type AcmeConfig, type FrontendConfig } from '../config/types.js'
import type { RoutingState } from '../proxy/route-request.js'
import { checkEnv } from '../routing/matcher.js'
import type { ControlBackend } from '../upstream/control-backend.js'
import { TemplateRefusal } from '../upstream/templated-backends.js'
import type { Clock } from '../util/clock.js'

type OnDemand = NonNullable<AcmeConfig['onDemand']>

/** Why a name gets no certificate on demand (logged and counted; the client gets unrecognized_name). */
export type OnDemandRefusal = 'no-frontend' | 'env-pattern' | 'no-instance' | 'rate' | 'max' | 'backoff'

/** Names refused are remembered this many at most (the oldest forgotten first). */
const MAX_REFUSED = 10_000

/**
 * Whether a name may have a certificate on demand: the permission check no
 * peer builds in. The host must be `{env}` of one of onDemand.frontends, the
 * env must pass the frontend's env.pattern, and the templated backend it
 * makes must have a usable instance (DNS says the environment exists, and
 * health does not rule it out). Making that backend spends
 * templatedBackends.newPerSecond like any request does. Refusals are kept
 * for negativeTtl; orders are spaced by a token bucket of perMinute.
 */
export class OnDemandGate {
  #policy: OnDemand
  readonly #clock: Clock
  readonly #state: () => RoutingState<ControlBackend>
  readonly #refused = new Map<string, { readonly untilMs: number, readonly reason: OnDemandRefusal }>()
  #tokens: number
  #filledAtMs: number

  constructor (policy: OnDemand, clock: Clock, state: () => RoutingState<ControlBackend>) {
    this.#policy = policy
    this.#clock = clock
    this.#state = state
    this.#tokens = policy.perMinute
    this.#filledAtMs = clock.now()
  }

  set policy (policy: OnDemand) { this.#policy = policy }

  /** undefined: the environment exists and may have a certificate; otherwise why not (kept for negativeTtl). */
  async check (name: string): Promise<OnDemandRefusal | undefined> {
    const now = this.#clock.now()
    const kept = this.#refused.get(name)
    if (kept !== undefined && kept.untilMs > now) return kept.reason
    this.#refused.delete(name)
    const reason = await this.#evaluate(name)
    // A spent templatedBackends.newPerSecond says nothing about the environment: not kept (a burst of
    // made-up names must not shut real environments out for negativeTtl).
    if (reason !== undefined && reason !== 'rate') this.#refuse(name, reason)
    return reason
  }

  /** One order's token, if the bucket has one (perMinute, refilled continuously). */
  takeToken (): boolean {
    const now = this.#clock.now()
    const perMinute = this.#policy.perMinute
    this.#tokens = Math.min(perMinute, this.#tokens + (now - this.#filledAtMs) * perMinute / 60_000)
    this.#filledAtMs = now
    if (this.#tokens < 1) return false
    this.#tokens -= 1
    return true
  }

  async #evaluate (name: string): Promise<OnDemandRefusal | undefined> {
    const state = this.#state()
    let reason: OnDemandRefusal = 'no-frontend'
    for (const frontend of state.config.frontends) {
      if (!this.#policy.frontends.includes(frontend.name)) continue
      const label = capturedLabel(frontend, name)
      if (label === undefined) continue
      const env = checkEnv(frontend, label)
      if (env === undefined) {
        reason = 'env-pattern'
        continue
      }
      reason = 'no-instance'
      for (const template of templatesOf(frontend.backend)) {
        const backend = state.registry.template(template, env)
        if (backend instanceof TemplateRefusal) {
          if (backend.reason === 'rate') reason = 'rate'
          continue
        }
        // Held while its first answer comes, as a request would hold it.
        backend.hold()
        try {
          await backend.ready()
          if (backend.hasUsableInstance()) return undefined
        } finally {
          backend.release()
        }
      }
    }
    return reason
  }

  #refuse (name: string, reason: OnDemandRefusal): void {
    if (this.#refused.size >= MAX_REFUSED) this.#refused.delete(this.#refused.keys().next().value as string)
    this.#refused.set(name, { untilMs: this.#clock.now() + this.#policy.negativeTtlMs, reason })
  }
}

/** `{env}.preview.example.com` and `pr-1.preview.example.com` → `pr-1`; undefined when the host has another shape. */
function capturedLabel (frontend: FrontendConfig, host: string): string | undefined {
  const match = frontend.match.host
  if (match?.kind !== 'capture' || !host.endsWith(match.suffix) || !host.startsWith(match.prefix)) return undefined
  const label = host.slice(match.prefix.length, host.length - match.suffix.length)
  return label.length > 0 && !label.includes('.') ? label : undefined
}
