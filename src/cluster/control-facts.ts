import { PENDING_SNAPSHOT, type DiscoverySnapshot } from '../discovery/watcher.js'
import type { Lookup } from '../dns/resolver.js'
import type { ControlPlaneFacts } from '../upstream/registry.js'
import type { Outcome } from '../upstream/backend.js'
import { TemplateRefusal } from '../upstream/templated-backends.js'
import type { FactsSource } from '../upstream/replica-backend.js'
import { InstanceSet } from '../discovery/instance-set.js'
import type { MessageOf, ToPrimary, ToWorker, WireBackend, WireSnapshot } from './protocol.js'
import type { HealthFact } from '../upstream/backend.js'
import { fromWire } from './wire.js'

type OnChange = (snapshot: DiscoverySnapshot, previous: DiscoverySnapshot) => void

/**
 * One backend's instance set in a worker: what the primary's discovery saw,
 * pushed over IPC. It never asks DNS; a connect failure is reported to the
 * primary, whose own watcher refreshes (rate-limited once for every worker).
 */
export class RemoteDiscovery implements FactsSource {
  readonly lookup: Lookup
  readonly #onChange: OnChange
  readonly #onStart: (() => void) | undefined
  readonly #onStop: (() => void) | undefined
  #snapshot: DiscoverySnapshot = PENDING_SNAPSHOT
  #refusal: TemplateRefusal | undefined
  #first: Promise<void> | undefined
  #resolveFirst: (() => void) | undefined
  #isStopped = false

  readonly #onRefused: (() => void) | undefined

  constructor (lookup: Lookup, onChange: OnChange, hooks: { onStart?: () => void, onStop?: () => void, onRefused?: () => void } = {}) {
    this.lookup = lookup
    this.#onChange = onChange
    this.#onStart = hooks.onStart
    this.#onStop = hooks.onStop
    this.#onRefused = hooks.onRefused
  }

  get snapshot (): DiscoverySnapshot { return this.#snapshot }
  get refusal (): TemplateRefusal | undefined { return this.#refusal }

  /** The snapshot the primary sent with the configuration: known before the backend starts, no change reported. */
  seed (wire: WireSnapshot): void { this.#snapshot = fromWire(wire, this.#snapshot) }

  start (): Promise<void> {
    if (this.#first !== undefined) return this.#first
    if (this.#snapshot.status !== 'pending') {
      this.#first = Promise.resolve()
      return this.#first
    }
    this.#first = new Promise((resolve) => { this.#resolveFirst = resolve })
    this.#onStart?.()
    return this.#first
  }

  stop (): void {
    if (this.#isStopped) return
    this.#isStopped = true
    this.#onStop?.()
    // Nobody waits forever on a backend that went away.
    this.#resolveFirst?.()
  }

  /** The primary refreshes when it gets the connect failure: nothing to do here. */
  refreshSoon (): void {}

  apply (wire: WireSnapshot): void {
    if (this.#isStopped) return
    this.#become(fromWire(wire, this.#snapshot))
  }

  /**
   * The control plane would not make this templated backend. The waiting
   * request gets its answer: no instance, and the refusal, which
   * route-request.ts answers with (503, with Retry-After past newPerSecond).
   * Then the backend goes (onRefused), so the next request asks again.
   */
  refuse (reason: TemplateRefusal['reason'], retryAfterMs: number): void {
    if (this.#isStopped) return
    this.#refusal = new TemplateRefusal(reason, retryAfterMs)
    this.#become({ status: 'failed', set: InstanceSet.EMPTY, isStale: false, lastError: undefined, resolution: undefined, refused: [] })
    this.#onRefused?.()
  }

  #become (next: DiscoverySnapshot): void {
    const previous = this.#snapshot
    this.#snapshot = next
    if (previous.set !== next.set || previous.status !== next.status || previous.isStale !== next.isStale) this.#onChange(next, previous)
    if (next.status !== 'pending') this.#resolveFirst?.()
  }
}

/**
 * A worker's window on the primary for one configuration generation: the
 * registry of that generation builds its backends' discovery from it, and the
 * worker's message loop applies the primary's sets to it.
 */
export class GenerationFacts implements ControlPlaneFacts {
  readonly generation: number
  readonly #initial: ReadonlyMap<string, WireBackend>
  readonly #sources = new Map<string, RemoteDiscovery>()
  readonly #send: (message: ToPrimary) => void

  constructor (generation: number, initial: readonly WireBackend[], send: (message: ToPrimary) => void) {
    this.generation = generation
    this.#initial = new Map(initial.map((backend) => [backend.name, backend]))
    this.#send = send
  }

  readonly discovery = (name: string, lookup: Lookup, onChange: OnChange, template: { readonly template: string, readonly env: string, readonly onRefused: () => void } | undefined): FactsSource => {
    const generation = this.generation
    const source = new RemoteDiscovery(lookup, onChange, template === undefined
      ? {}
      : {
          // A templated backend is made in the primary when a worker first needs it, and held while any worker does.
          onStart: () => { this.#send({ type: 'srvgate:template', generation, name, template: template.template, env: template.env }) },
          onStop: () => {
            this.#sources.delete(name)
            this.#send({ type: 'srvgate:release', generation, name })
          },
          onRefused: template.onRefused
        })
    const initial = this.#initial.get(name)
    if (initial !== undefined && template === undefined) source.seed(initial.snapshot)
    this.#sources.set(name, source)
    return source
  }

  readonly report = (backend: string, key: string, outcome: Outcome): void => {
    this.#send({ type: 'srvgate:report', generation: this.generation, name: backend, key, outcome })
  }

  apply (name: string, snapshot: WireSnapshot): void { this.#sources.get(name)?.apply(snapshot) }

  refuse (name: string, reason: TemplateRefusal['reason'], retryAfterMs: number): void { this.#sources.get(name)?.refuse(reason, retryAfterMs) }

  /** The health views sent with the configuration, to apply once the registry is built. */
  initialHealth (): WireBackend[] { return [...this.#initial.values()] }
}

/** What the primary says about one generation's backends, as it changes. */
export type BackendMessage = MessageOf<ToWorker, 'srvgate:set' | 'srvgate:health' | 'srvgate:template-refused'>

/**
 * A worker applies one: a set and a refusal to the generation's view (its
 * RemoteDiscovery sources), health to the backend the generation's registry
 * built. A generation already gone (committed away, aborted) has neither: the
 * message is late and dropped.
 */
export function applyFromPrimary (
  message: BackendMessage,
  view: GenerationFacts | undefined,
  registry: { readonly named: (name: string) => { readonly applyHealth: (view: HealthFact) => void } | undefined } | undefined
): void {
  switch (message.type) {
    case 'srvgate:set':
      view?.apply(message.name, message.snapshot)
      return
    case 'srvgate:health':
      registry?.named(message.name)?.applyHealth(message.health)
      return
    case 'srvgate:template-refused':
      view?.refuse(message.name, message.reason, message.retryAfterMs)
  }
}
