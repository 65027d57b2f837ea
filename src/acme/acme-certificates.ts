import { AcmeError } from '../errors.js'
import type { AcmeConfig } from '../config/types.js'
import type { Log } from '../log/process-log.js'
import type { RoutingState } from '../proxy/route-request.js'
import type { ControlBackend } from '../upstream/control-backend.js'
import type { ChallengeSet } from '../tls/acme-answers.js'
import type { IssuedPem } from '../tls/certificates.js'
import { dateAt, within, type Clock } from '../util/clock.js'
import type { AcmeCa, PendingChallenge } from './acme-ca.js'
import type { AriClient } from './ari.js'
import { openStorage, type AcmeStorage, type Lease } from './storage.js'
import { OnDemandGate, type OnDemandRefusal } from './on-demand.js'
import { ChallengeBook } from './challenge-book.js'
import { heldOf, heldOrUndefined, newNameState, recordFailure, recordIssued, renewAtMs, statusOf, type AcmeStatus, type NameState } from './name-state.js'
import { FailedNames, retryDelayMs } from './order-backoff.js'
import { RenewalWatch } from './renewal-watch.js'

export type AcmeDeps = {
  readonly clock: Clock
  readonly log: Log
  /** Every certificate held now: each data plane serves them (after the files'). */
  readonly publish: (certificates: readonly IssuedPem[]) => void
  /** The challenges under way, to every data plane; resolves once they all answer them. */
  readonly putChallenges: (set: ChallengeSet) => Promise<void>
  /** An order ended: `issued` or `failed` (srvgate_acme_orders_total). */
  readonly ordered: (result: 'issued' | 'failed') => void
  /** The routing state running now: tls.acme.onDemand checks that an environment exists against it. */
  readonly state: () => RoutingState<ControlBackend>
  /** A handshake's name got no certificate on demand, and why (srvgate_acme_on_demand_refusals_total). */
  readonly refusedOnDemand: (reason: OnDemandRefusal) => void
  /** storage.redis answers (true) or not (false): srvgate_acme_storage_up. */
  readonly storageReachable: (isUp: boolean) => void
}

/** An order (account, authorizations, validation, certificate) that takes longer has failed. */
const ORDER_TIMEOUT_MS = 5 * 60_000

/** How long a replica looks for the certificate another replica (holding the lease) is ordering. */
const OTHER_REPLICA_WAIT_MS = 30_000

/**
 * OWNS tls.acme's CERTIFICATES: for each name of tls.acme.names, the one
 * kept in storage (served at once, CA reachable or not), an order when there
 * is none or it is due (renewBefore, at most a third of its lifetime before
 * notAfter), retries spaced as order-backoff.ts says, and every change published
 * to the data planes. Orders run one at a time. Lives in the control plane
 * (the primary): the data planes only serve and answer challenges.
 */
export class AcmeCertificates {
  readonly #deps: AcmeDeps
  #config: AcmeConfig
  #storage: AcmeStorage
  #ca: Promise<AcmeCa> | undefined
  /** The CA's renewalInfo client (ARI), made at the first certificate held. */
  #ari: Promise<AriClient> | undefined
  readonly #names = new Map<string, NameState>()
  readonly #challenges: ChallengeBook
  readonly #renewals: RenewalWatch
  #orders: Promise<void> = Promise.resolve()
  /** tls.acme.onDemand's check and bucket; undefined without onDemand. */
  #gate: OnDemandGate | undefined
  /** Names a handshake waits for: one check and one order each, however many handshakes wait. */
  readonly #wanted = new Map<string, Promise<boolean>>()
  /** Names whose order runs now. */
  readonly #isOrdering = new Set<string>()
  /** On-demand names whose last order failed: refused until their retry delay has passed. */
  readonly #failedOnDemand: FailedNames
  #isStarted = false
  #isStopped = false

  /** What storage holds for `config.names`, read before anything listens. */
  static async load (config: AcmeConfig, deps: AcmeDeps): Promise<AcmeCertificates> {
    const certificates = new AcmeCertificates(config, deps, await openStorage(config, deps))
    await certificates.#adopt(config.names)
    return certificates
  }

  private constructor (config: AcmeConfig, deps: AcmeDeps, storage: AcmeStorage) {
    this.#config = config
    this.#deps = deps
    this.#storage = storage
    this.#failedOnDemand = new FailedNames(deps.clock)
    this.#challenges = new ChallengeBook(() => this.#storage, deps.putChallenges)
    this.#renewals = new RenewalWatch({
      clock: deps.clock,
      log: deps.log,
      ari: async () => await this.#ariClient(),
      isCurrent: (state, held) => this.#isStarted && !this.#isStopped && state.held === held && this.#names.get(state.name) === state,
      moved: (state) => { if (state.failures === 0 && !this.#isOrdering.has(state.name)) this.#schedule(state) }
    })
    this.#listenForSaved(storage)
    this.#gate = config.onDemand === undefined ? undefined : new OnDemandGate(config.onDemand, deps.clock, deps.state)
  }

  /**
   * A handshake for `name` found no certificate: true once one is served
   * for it (from storage, or ordered now), false when the name may not have
   * one (tls.acme.onDemand's check, its bucket, its max) or it did not come
   * within onDemand.wait. The order goes on after a handshake gives up.
   */
  async want (name: string): Promise<boolean> {
    const gate = this.#gate
    const onDemand = this.#config.onDemand
    if (gate === undefined || onDemand === undefined || !this.#isStarted || this.#isStopped) return false
    if (this.#isServed(this.#names.get(name))) return true
    let wanted = this.#wanted.get(name)
    if (wanted === undefined) {
      wanted = this.#obtain(name, gate, onDemand.max).finally(() => { this.#wanted.delete(name) })
      this.#wanted.set(name, wanted)
    }
    const answer = await within(this.#deps.clock, wanted, onDemand.waitMs, { unref: true })
    return answer !== 'timeout' && answer
  }

  async #obtain (name: string, gate: OnDemandGate, max: number): Promise<boolean> {
    const refusal = await gate.check(name)
    if (refusal !== undefined) return this.#refused(name, refusal)
    if (this.#failedOnDemand.isWaiting(name)) return this.#refused(name, 'backoff')
    let state = this.#names.get(name)
    if (state === undefined) {
      if ([...this.#names.values()].filter((candidate) => candidate.isOnDemand).length >= max) return this.#refused(name, 'max')
      state = newNameState(name, true)
      this.#names.set(name, state)
      // Obtained before (an earlier run, another env of the same name): served from storage, no order.
      if (await this.#takeStored(state).catch(() => false)) return true
    }
    if (this.#isServed(state)) return true
    if (!gate.takeToken()) {
      // Nothing held and no order made: the name is forgotten, and asked about again at its next handshake.
      if (state.held === undefined && state.failures === 0) this.#names.delete(name)
      return this.#refused(name, 'rate')
    }
    state.timer?.cancel()
    state.timer = undefined
    const failures = this.#failedOnDemand.failures(name)
    state.failures = failures
    await this.#enqueue(state)
    return this.#isServed(state)
  }

  /** An order that has not ended by ORDER_TIMEOUT_MS fails (and the next one starts): nothing holds the queue for ever. */
  async #bounded<T> (order: Promise<T>): Promise<T> {
    const result = await within(this.#deps.clock, order, ORDER_TIMEOUT_MS, { unref: true })
    if (result === 'timeout') throw new AcmeError(`the order did not end within ${ORDER_TIMEOUT_MS / 60_000} minutes`)
    return result
  }

  #refused (name: string, reason: OnDemandRefusal): false {
    this.#deps.refusedOnDemand(reason)
    this.#deps.log.debug({ name, reason }, 'acme: no certificate on demand')
    return false
  }

  #isServed (state: NameState | undefined): boolean {
    return state?.held !== undefined && state.held.notAfterMs > this.#deps.clock.wallNow()
  }

  /** Every certificate held and not expired, PEM: what the data planes serve. */
  held (): IssuedPem[] {
    const now = this.#deps.clock.wallNow()
    const held: IssuedPem[] = []
    for (const { held: certificate } of this.#names.values()) if (certificate !== undefined && certificate.notAfterMs > now) held.push({ cert: certificate.cert, key: certificate.key })
    return held
  }

  status (): AcmeStatus[] {
    return [...this.#names.values()].map((state) => statusOf(state, this.#deps.clock))
  }

  /** The listeners answer: order what is missing or due, and schedule the rest. */
  start (): void {
    this.#isStarted = true
    for (const state of this.#names.values()) {
      this.#schedule(state)
      this.#renewals.watch(state)
    }
  }

  /** A reload: new names are read from storage and ordered, names gone stop being served and renewed. */
  async apply (config: AcmeConfig): Promise<void> {
    if (config.directoryUrl !== this.#config.directoryUrl || JSON.stringify(config.storage) !== JSON.stringify(this.#config.storage) || config.eab?.kid !== this.#config.eab?.kid) {
      // Another CA, account or storage: every name is read again from there.
      for (const state of this.#names.values()) this.#forget(state)
      this.#names.clear()
      const previous = this.#storage
      this.#storage = await openStorage(config, this.#deps)
      this.#listenForSaved(this.#storage)
      await previous.close().catch(() => {})
      this.#ca = undefined
    }
    if (config.directoryCaPath !== this.#config.directoryCaPath || config.directoryUrl !== this.#config.directoryUrl) {
      this.#ca = undefined
      this.#ari = undefined
    }
    this.#config = config
    if (config.onDemand === undefined) this.#gate = undefined
    else if (this.#gate === undefined) this.#gate = new OnDemandGate(config.onDemand, this.#deps.clock, this.#deps.state)
    else this.#gate.policy = config.onDemand
    for (const [name, state] of this.#names) {
      if (config.names.includes(name) || (state.isOnDemand && config.onDemand !== undefined)) continue
      this.#forget(state)
      this.#names.delete(name)
    }
    await this.#adopt(config.names.filter((name) => !this.#names.has(name)))
    this.#publish()
  }

  stop (): void {
    this.#isStopped = true
    for (const state of this.#names.values()) this.#forget(state)
    void this.#storage.close().catch(() => {})
  }

  /**
   * A challenge a data plane does not hold (storage.redis: another replica
   * ordered the name, and the CA's validation came here): this process's
   * own, or the one shared in storage.
   */
  async findChallenge (type: PendingChallenge['type'], key: string): Promise<PendingChallenge | undefined> {
    return await this.#challenges.find(type, key)
  }

  /** Another replica saved a certificate: a name held here takes it when it is newer (no order of its own). */
  #listenForSaved (storage: AcmeStorage): void {
    storage.onSaved((name) => {
      if (this.#storage !== storage) return
      const state = this.#names.get(name)
      if (state === undefined) return
      void this.#takeStored(state).catch(() => false)
    })
  }

  /** The certificate storage holds for the name, when it is newer than the one held: taken, published, rescheduled. */
  async #takeStored (state: NameState): Promise<boolean> {
    const stored = await this.#storage.load(state.name)
    const held = stored === undefined ? undefined : heldOrUndefined(state.name, stored)
    if (held === undefined || held.notAfterMs <= (state.held?.notAfterMs ?? this.#deps.clock.wallNow())) return false
    state.held = held
    state.failures = 0
    state.lastError = undefined
    state.renewal = undefined
    this.#publish()
    if (this.#isStarted && !this.#isOrdering.has(state.name)) this.#schedule(state)
    this.#renewals.watch(state)
    return true
  }

  /** Names new to this manager: their stored certificates, then (once started) their schedules. */
  async #adopt (names: readonly string[]): Promise<void> {
    for (const name of names) {
      const state = newNameState(name, false)
      this.#names.set(name, state)
      try {
        const stored = await this.#storage.load(name)
        if (stored !== undefined) state.held = heldOf(name, stored)
      } catch (error) {
        // Unreadable or not a certificate for the name: ordered anew, and said once.
        state.lastError = `stored certificate unusable: ${(error as Error).message}`
        this.#deps.log.warn({ name, storage: this.#storage.path, err: error }, 'acme: the stored certificate cannot be used; a new one is ordered')
      }
      if (this.#isStarted) {
        this.#schedule(state)
        this.#renewals.watch(state)
      }
    }
  }

  #schedule (state: NameState): void {
    const held = state.held
    let delayMs: number
    if (state.failures > 0) delayMs = retryDelayMs(state.failures, state.retryAfterMs)
    else if (held === undefined) delayMs = 0
    // The CA's window when it offers one (ARI), else renewBefore.
    else delayMs = Math.max(0, (state.renewal?.atMs ?? renewAtMs(held, this.#config.renewBeforeMs)) - this.#deps.clock.wallNow())
    this.#scheduleIn(state, delayMs)
  }

  #scheduleIn (state: NameState, delayMs: number): void {
    if (this.#isStopped || this.#names.get(state.name) !== state) return
    state.timer?.cancel()
    const { clock } = this.#deps
    state.nextAtMs = clock.now() + delayMs
    state.timer = clock.setTimeout(() => {
      state.timer = undefined
      void this.#enqueue(state)
    }, delayMs, { unref: true })
  }

  /** After the orders before it; resolves when this one has ended, either way. */
  async #enqueue (state: NameState): Promise<void> {
    const order = this.#orders.then(async () => { await this.#order(state) })
    this.#orders = order
    await order
  }

  async #order (state: NameState): Promise<void> {
    if (this.#isStopped || this.#names.get(state.name) !== state) return
    const { log } = this.#deps
    // A renewal on demand: the environment must still exist (one reclaimed keeps its certificate in
    // storage until it expires, served no more, renewed never).
    if (state.isOnDemand && state.held !== undefined) {
      const refusal = this.#gate === undefined ? 'no-frontend' : await this.#gate.check(state.name)
      if (refusal !== undefined) {
        this.#names.delete(state.name)
        log.info({ name: state.name, reason: refusal }, 'acme: not renewed: the environment is gone')
        this.#publish()
        return
      }
    }
    let lease: Lease | undefined
    try {
      // Another replica may have obtained or renewed it (storage.redis): taken, not ordered again.
      if (await this.#takeStored(state) && !this.#isDue(state)) return
      // Queued twice (a schedule moved while waiting behind other orders): the first made it current.
      if (state.failures === 0 && !this.#isDue(state)) return
      lease = await this.#storage.lock(state.name)
      if (lease === undefined) {
        // Another replica orders it now: its certificate comes through storage.
        await this.#waitForOther(state)
        return
      }
      this.#isOrdering.add(state.name)
      const ca = await this.#account()
      const issued = heldOf(state.name, await this.#bounded(ca.order(state.name, { put: this.#challenges.put, remove: this.#challenges.remove })))
      await this.#storage.save(state.name, issued)
      recordIssued(state, issued)
      this.#failedOnDemand.forget(state.name)
      this.#renewals.watch(state)
      this.#deps.ordered('issued')
      log.info({ name: state.name, notAfter: dateAt(issued.notAfterMs).toISOString() }, 'acme: certificate obtained')
      this.#publish()
    } catch (error) {
      const { isNew, fields } = recordFailure(state, error)
      this.#deps.ordered('failed')
      if (isNew) log[state.held === undefined ? 'error' : 'warn']({ ...fields, err: error }, state.held === undefined ? 'acme: order failed; retrying' : 'acme: renewal failed; the current certificate keeps serving, retrying')
      else log.debug({ ...fields, error: state.lastError }, 'acme: order failed again')
      // On demand, nothing is retried by itself: the next handshake asks again, not before the
      // retry delay (a name that fails validation must not make an order per handshake).
      if (state.isOnDemand && state.held === undefined) {
        this.#names.delete(state.name)
        this.#failedOnDemand.fail(state.name, state.failures, state.retryAfterMs)
        return
      }
    } finally {
      this.#isOrdering.delete(state.name)
      await lease?.release()
    }
    this.#schedule(state)
  }

  #isDue (state: NameState): boolean {
    return state.held === undefined || (state.renewal?.atMs ?? renewAtMs(state.held, this.#config.renewBeforeMs)) <= this.#deps.clock.wallNow()
  }

  /** Another replica holds the lease: its certificate is looked for in storage for a while, then the schedule goes on. */
  async #waitForOther (state: NameState): Promise<void> {
    const { clock } = this.#deps
    const untilMs = clock.now() + OTHER_REPLICA_WAIT_MS
    while (clock.now() < untilMs && !this.#isStopped) {
      await new Promise<void>((resolve) => { clock.setTimeout(resolve, 500, { unref: true }) })
      if (await this.#takeStored(state).catch(() => false)) return
    }
    if (state.isOnDemand && state.held === undefined) this.#names.delete(state.name)
    else this.#scheduleIn(state, OTHER_REPLICA_WAIT_MS)
  }

  /** A name no longer managed here: its timers stop. */
  #forget (state: NameState): void {
    state.timer?.cancel()
    state.ariTimer?.cancel()
  }

  /** The CA's renewalInfo client (ARI), made at the first certificate held. */
  async #ariClient (): Promise<AriClient> {
    const config = this.#config
    this.#ari ??= import('./ari.js').then(({ AriClient }) => new AriClient(config.directoryUrl, config.directoryCaPath))
    return await this.#ari
  }

  /** The account, made (or read from storage) at the first order. */
  async #account (): Promise<AcmeCa> {
    if (this.#ca === undefined) {
      const config = this.#config
      const storage = this.#storage
      // acme-client (axios, node-forge: several MB) is loaded by the first order, never by a primary without one.
      this.#ca = import('./acme-ca.js').then(async ({ AcmeCa }) => new AcmeCa(config, await storage.accountKey(AcmeCa.newAccountKey)))
      this.#ca.catch(() => { this.#ca = undefined })
    }
    return await this.#ca
  }

  #publish (): void { this.#deps.publish(this.held()) }
}
