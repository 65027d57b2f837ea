import { X509Certificate } from 'node:crypto'
import { AcmeError, ErrorCode } from '../errors.js'
import type { AcmeConfig } from '../config/types.js'
import type { Log } from '../log/process-log.js'
import type { RoutingState } from '../proxy/route-request.js'
import type { ControlBackend } from '../upstream/control-backend.js'
import type { ChallengeSet } from '../tls/acme-answers.js'
import type { IssuedPem } from '../tls/certificates.js'
import { dateAt, type Clock, type Timer } from '../util/clock.js'
import type { AcmeCa, PendingChallenge } from './acme-ca.js'
import type { AriClient, RenewalWindow } from './ari.js'
import { systemRandom } from '../util/random.js'
import { DirStorage, type AcmeStorage, type Lease, type StoredCertificate } from './storage.js'
import { OnDemandGate, type OnDemandRefusal } from './on-demand.js'

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

/** A certificate held for a name, with its validity read once. */
type Held = StoredCertificate & { readonly notBeforeMs: number, readonly notAfterMs: number }

type NameState = {
  readonly name: string
  /** Obtained at a handshake (tls.acme.onDemand), not listed in tls.acme.names. */
  readonly isOnDemand: boolean
  held: Held | undefined
  /** Monotonic time of the next order (renewal, or a retry). */
  nextAtMs: number | undefined
  timer: Timer | undefined
  failures: number
  lastError: string | undefined
  /** The CA's Retry-After on the last failure (a rate limit): the retry waits at least this long. */
  retryAfterMs: number | undefined
  /** The CA's renewal window for the certificate held (ARI, RFC 9773) and the moment picked in it (wall clock). */
  renewal: { readonly window: RenewalWindow, readonly atMs: number } | undefined
  /** When renewalInfo is asked again for the certificate held. */
  ariTimer: Timer | undefined
  /** The window the last renewal followed: the same one again for the new certificate is not followed (no loop). */
  followed: RenewalWindow | undefined
}

/** What /admin/state shows of each name. */
export type AcmeStatus = { readonly name: string, readonly isOnDemand: boolean, readonly notAfterMs: number | undefined, readonly nextOrderAtMs: number | undefined, readonly lastError: string | undefined, readonly renewalWindow: RenewalWindow | undefined }

/**
 * Retries after a failed order, as Caddy spaces them: soon at first, then
 * no more than hourly (a CA counts failed validations: Let's Encrypt allows
 * 5 an hour per name).
 */
const RETRY_DELAYS_MS = [60_000, 120_000, 300_000, 600_000, 1_200_000, 1_800_000, 3_600_000]
/** The wait before the next order after `failures` failed ones: the schedule's, or the CA's Retry-After when later. */
function retryDelayMs (failures: number, retryAfterMs: number | undefined): number {
  return Math.max(RETRY_DELAYS_MS[Math.min(failures, RETRY_DELAYS_MS.length) - 1] as number, Math.min(retryAfterMs ?? 0, MAX_RETRY_AFTER_MS))
}

/** A CA's Retry-After is honoured up to a day: a larger one (or a wrong one) must not stop renewals until a restart. */
const MAX_RETRY_AFTER_MS = 86_400_000

/** An order (account, authorizations, validation, certificate) that takes longer has failed. */
const ORDER_TIMEOUT_MS = 5 * 60_000
/** Failed on-demand names remembered at most (the oldest forgotten first). */
const MAX_FAILED_NAMES = 10_000

/** On-demand names whose last order failed, with their count: the next order waits for RETRY_DELAYS_MS. */
class FailedNames {
  readonly #clock: Clock
  readonly #names = new Map<string, { readonly failures: number, readonly untilMs: number }>()

  constructor (clock: Clock) { this.#clock = clock }

  fail (name: string, failures: number, retryAfterMs: number | undefined): void {
    if (this.#names.size >= MAX_FAILED_NAMES) this.#names.delete(this.#names.keys().next().value as string)
    this.#names.delete(name)
    this.#names.set(name, { failures, untilMs: this.#clock.now() + retryDelayMs(failures, retryAfterMs) })
  }

  forget (name: string): void { this.#names.delete(name) }

  isWaiting (name: string): boolean { return (this.#names.get(name)?.untilMs ?? -Infinity) > this.#clock.now() }

  /** Failures so far (kept across the wait, so delays grow); 0 for a name that never failed. */
  failures (name: string): number { return this.#names.get(name)?.failures ?? 0 }
}

/** renewalInfo that could not be asked is asked again after this. */
const ARI_RETRY_MS = 3_600_000

/** How long a replica looks for the certificate another replica (holding the lease) is ordering. */
const OTHER_REPLICA_WAIT_MS = 30_000

/**
 * OWNS tls.acme's CERTIFICATES: for each name of tls.acme.names, the one
 * kept in storage (served at once, CA reachable or not), an order when there
 * is none or it is due (renewBefore, at most a third of its lifetime before
 * notAfter), retries spaced by RETRY_DELAYS_MS, and every change published
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
  readonly #challenges = new Map<string, PendingChallenge>()
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
    let timer: Timer | undefined
    const gaveUp = new Promise<boolean>((resolve) => { timer = this.#deps.clock.setTimeout(() => { resolve(false) }, onDemand.waitMs, { unref: true }) })
    try {
      return await Promise.race([wanted, gaveUp])
    } finally {
      timer?.cancel()
    }
  }

  async #obtain (name: string, gate: OnDemandGate, max: number): Promise<boolean> {
    const refusal = await gate.check(name)
    if (refusal !== undefined) return this.#refused(name, refusal)
    if (this.#failedOnDemand.isWaiting(name)) return this.#refused(name, 'backoff')
    let state = this.#names.get(name)
    if (state === undefined) {
      if ([...this.#names.values()].filter((candidate) => candidate.isOnDemand).length >= max) return this.#refused(name, 'max')
      state = { name, isOnDemand: true, held: undefined, nextAtMs: undefined, timer: undefined, failures: 0, lastError: undefined, retryAfterMs: undefined, renewal: undefined, ariTimer: undefined, followed: undefined }
      this.#names.set(name, state)
      // Obtained before (an earlier run, another env of the same name): served from storage, no order.
      const stored = await this.#storage.load(name).catch(() => undefined)
      const held = stored === undefined ? undefined : heldOrUndefined(name, stored)
      if (held !== undefined && held.notAfterMs > this.#deps.clock.wallNow()) {
        state.held = held
        this.#publish()
        this.#schedule(state)
        this.#watchRenewal(state)
        return true
      }
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
    let timer: Timer | undefined
    const timedOut = new Promise<never>((_resolve, reject) => {
      timer = this.#deps.clock.setTimeout(() => { reject(new AcmeError(ErrorCode.ACME_ORDER_FAILED, `the order did not end within ${ORDER_TIMEOUT_MS / 60_000} minutes`, undefined)) }, ORDER_TIMEOUT_MS, { unref: true })
    })
    try {
      return await Promise.race([order, timedOut])
    } finally {
      timer?.cancel()
    }
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
    const { clock } = this.#deps
    return [...this.#names.values()].map((state) => ({
      name: state.name,
      isOnDemand: state.isOnDemand,
      notAfterMs: state.held?.notAfterMs,
      nextOrderAtMs: state.nextAtMs === undefined ? undefined : clock.wallNow() + Math.max(0, state.nextAtMs - clock.now()),
      lastError: state.lastError,
      renewalWindow: state.renewal?.window
    }))
  }

  /** The listeners answer: order what is missing or due, and schedule the rest. */
  start (): void {
    this.#isStarted = true
    for (const state of this.#names.values()) {
      this.#schedule(state)
      this.#watchRenewal(state)
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
    const own = this.#challenges.get(`${type}\u0000${key}`)
    if (own !== undefined) return own
    return await this.#storage.findChallenge(type, key).catch(() => undefined)
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
    this.#watchRenewal(state)
    return true
  }

  /** Names new to this manager: their stored certificates, then (once started) their schedules. */
  async #adopt (names: readonly string[]): Promise<void> {
    for (const name of names) {
      const state: NameState = { name, isOnDemand: false, held: undefined, nextAtMs: undefined, timer: undefined, failures: 0, lastError: undefined, retryAfterMs: undefined, renewal: undefined, ariTimer: undefined, followed: undefined }
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
        this.#watchRenewal(state)
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
      const issued = heldOf(state.name, await this.#bounded(ca.order(state.name, { put: this.#put, remove: this.#remove })))
      await this.#storage.save(state.name, issued)
      state.held = issued
      state.failures = 0
      this.#failedOnDemand.forget(state.name)
      state.lastError = undefined
      state.retryAfterMs = undefined
      state.followed = state.renewal?.window
      state.renewal = undefined
      this.#watchRenewal(state)
      this.#deps.ordered('issued')
      log.info({ name: state.name, notAfter: dateAt(issued.notAfterMs).toISOString() }, 'acme: certificate obtained')
      this.#publish()
    } catch (error) {
      const message = (error as Error).message
      state.failures++
      this.#deps.ordered('failed')
      // Logged once per cause: the same failure again, every retry, is only debug.
      const isNew = message !== state.lastError
      state.lastError = message
      state.retryAfterMs = error instanceof AcmeError ? error.retryAfterMs : undefined
      const fields = {
        name: state.name,
        failures: state.failures,
        ...(state.held === undefined ? {} : { servingUntil: dateAt(state.held.notAfterMs).toISOString() }),
        ...(state.retryAfterMs === undefined ? {} : { retryAfterS: Math.ceil(state.retryAfterMs / 1000) })
      }
      if (isNew) log[state.held === undefined ? 'error' : 'warn']({ ...fields, err: error }, state.held === undefined ? 'acme: order failed; retrying' : 'acme: renewal failed; the current certificate keeps serving, retrying')
      else log.debug({ ...fields, error: message }, 'acme: order failed again')
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

  /**
   * ARI (RFC 9773): the CA's renewal window for the certificate held, asked
   * now and again at its Retry-After. A window moves the renewal to a moment
   * picked in it (earlier than renewBefore when the CA must revoke, say);
   * none (the CA offers no renewalInfo) leaves renewBefore. A CA that cannot
   * be asked is asked again within the hour, and costs nothing else.
   */
  #watchRenewal (state: NameState): void {
    state.ariTimer?.cancel()
    state.ariTimer = undefined
    const held = state.held
    if (held === undefined || this.#isStopped || !this.#isStarted) return
    const { clock, log } = this.#deps
    const again = (delayMs: number): void => {
      if (this.#isStopped || state.held !== held || this.#names.get(state.name) !== state) return
      state.ariTimer = clock.setTimeout(() => { this.#watchRenewal(state) }, delayMs, { unref: true })
    }
    void (async () => {
      const config = this.#config
      this.#ari ??= import('./ari.js').then(({ AriClient }) => new AriClient(config.directoryUrl, config.directoryCaPath))
      const info = await (await this.#ari).renewalInfo(held.cert, clock.wallNow())
      if (info === undefined || this.#isStopped || state.held !== held || this.#names.get(state.name) !== state) return
      const previous = state.renewal?.window
      // A window that ended before this certificate began, or the very window its renewal followed,
      // is not about it (a CA answering an older one's, or a bug): followed, it would order again and again.
      const followed = state.followed
      if (info.window.endMs < held.notBeforeMs || (followed?.startMs === info.window.startMs && followed.endMs === info.window.endMs)) {
        log.warn({ name: state.name, windowEnd: dateAt(info.window.endMs).toISOString(), notBefore: dateAt(held.notBeforeMs).toISOString() }, 'acme: the CA\'s renewal window (ARI) is not about this certificate (it ended before it began, or the last renewal followed it); renewBefore stays in charge')
      } else if (previous?.startMs !== info.window.startMs || previous.endMs !== info.window.endMs) {
        const { pickRenewalTime } = await import('./ari.js')
        // Never past notAfter less a tenth of the lifetime (at most a day): a window reaching beyond it would let the certificate lapse.
        const latestMs = held.notAfterMs - Math.min(86_400_000, (held.notAfterMs - held.notBeforeMs) / 10)
        state.renewal = { window: info.window, atMs: Math.min(latestMs, pickRenewalTime(info.window, clock.wallNow(), systemRandom.next())) }
        log.info({ name: state.name, windowStart: dateAt(info.window.startMs).toISOString(), windowEnd: dateAt(info.window.endMs).toISOString(), renewAt: dateAt(state.renewal.atMs).toISOString() }, 'acme: the CA\'s renewal window (ARI)')
        if (state.failures === 0 && !this.#isOrdering.has(state.name)) this.#schedule(state)
      }
      again(info.askAgainMs)
    })().catch((error: unknown) => {
      log.debug({ name: state.name, err: error }, 'acme: renewalInfo (ARI) could not be asked; asked again within the hour')
      again(ARI_RETRY_MS)
    })
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

  readonly #put = async (challenge: PendingChallenge): Promise<void> => {
    this.#challenges.set(keyOf(challenge), challenge)
    // Shared first (storage.redis): the validation may reach another replica, which looks it up there.
    await this.#storage.putChallenge(challenge)
    await this.#deps.putChallenges(this.#challengeSet())
  }

  readonly #remove = (challenge: PendingChallenge): void => {
    if (!this.#challenges.delete(keyOf(challenge))) return
    this.#storage.removeChallenge(challenge).catch(() => {})
    this.#deps.putChallenges(this.#challengeSet()).catch(() => {})
  }

  #challengeSet (): ChallengeSet {
    const http: Array<ChallengeSet['http'][number]> = []
    const alpn: Array<ChallengeSet['alpn'][number]> = []
    for (const challenge of this.#challenges.values()) {
      if (challenge.type === 'http-01') http.push({ token: challenge.token, keyAuthorization: challenge.keyAuthorization })
      else alpn.push({ name: challenge.name, cert: challenge.cert, key: challenge.key })
    }
    return { http, alpn }
  }

  #publish (): void { this.#deps.publish(this.held()) }
}

function keyOf (challenge: PendingChallenge): string {
  return challenge.type === 'http-01' ? `http-01\u0000${challenge.token}` : `tls-alpn-01\u0000${challenge.name}`
}

/** The storage tls.acme.storage names; Redis's client is loaded only when it is used. */
async function openStorage (config: AcmeConfig, deps: AcmeDeps): Promise<AcmeStorage> {
  const storage = config.storage
  if (storage.kind === 'dir') return new DirStorage(storage.dir, config.directoryUrl)
  const { RedisStorage } = await import('./redis-storage.js')
  return new RedisStorage(storage.url, storage.prefix, config.directoryUrl, deps.clock, { reachable: deps.storageReachable })
}

function heldOrUndefined (name: string, stored: StoredCertificate): Held | undefined {
  try {
    return heldOf(name, stored)
  } catch {
    return undefined
  }
}

/** A stored or issued certificate, checked to carry `name`; its validity read. */
function heldOf (name: string, stored: StoredCertificate): Held {
  const x509 = new X509Certificate(stored.cert)
  if (!x509.checkHost(name)) throw new Error(`the certificate does not carry ${name}`)
  return { ...stored, notBeforeMs: Date.parse(x509.validFrom), notAfterMs: Date.parse(x509.validTo) }
}

/** When a certificate is renewed: renewBefore ahead of notAfter, but never before two thirds of its lifetime. */
export function renewAtMs (held: { readonly notBeforeMs: number, readonly notAfterMs: number }, renewBeforeMs: number): number {
  const lifetimeMs = held.notAfterMs - held.notBeforeMs
  return held.notAfterMs - Math.min(renewBeforeMs, lifetimeMs / 3)
}
