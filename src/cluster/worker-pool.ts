import type { AcmeAnswerer, DataPlanes, WorkersStatus } from '../control-plane/data-planes.js'
import type { DataPlaneStats } from '../data-plane/stats.js'
import type { Log } from '../log/process-log.js'
import { templatesOf } from '../config/types.js'
import type { RoutingState } from '../proxy/route-request.js'
import type { DiscoverySnapshot } from '../discovery/watcher.js'
import type { HealthFact } from '../upstream/backend.js'
import type { ControlBackend } from '../upstream/control-backend.js'
import type { ChallengeSet } from '../tls/acme-answers.js'
import type { IssuedPem } from '../tls/certificates.js'
import { TemplateRefusal } from '../upstream/templated-backends.js'
import type { PublicAddresses } from '../data-plane/listeners.js'
import type { Address } from '../util/address.js'
import { systemClock } from '../util/clock.js'
import { Gathering } from './gathering.js'
import { RateBuckets } from '../policy/rate-buckets.js'
import { PROTOCOL_VERSION } from './protocol-version.js'
import type { MessageOf, ToPrimary, ToWorker } from './protocol.js'
import { toWire, wireBackend } from './wire.js'
import type { PrimaryEnd } from './channel.js'
import type { DataPlaneProcess, Spawner } from './spawner.js'
import { askToPrepare } from './ask-prepare.js'
import { stateOfGeneration } from './generations.js'
import type { GatewayDocument } from '../config/schema.js'

/** A worker that has not prepared a reload by then is taken as failed (and replaced). */
const PREPARE_TIMEOUT_MS = 10_000
/** A worker that dies younger than this is replaced after this long (no fork loop). */
const MIN_LIFE_MS = 1_000

export type WorkerPoolOptions = {
  readonly count: number
  /** How a data plane is started: a forked cluster worker (cluster-workers.ts) or one beside the control plane (in-process.ts). */
  readonly spawner: Spawner
}

type Member = {
  readonly worker: DataPlaneProcess
  readonly channel: PrimaryEnd
  readonly forkedAtMs: number
  /** Listening, with the running configuration. */
  isServing: boolean
  /** The last generation sent to it (init or prepare): one that starts during a reload prepares it too. */
  generation: number | undefined
  /** Templated backends this worker holds, as generation and name. */
  readonly holds: Set<string>
  /** Speaks another protocol version: killed, not replaced (its successor would run the same files). */
  isRefused: boolean
}

/**
 * The primary's side of the cluster: forks the workers, starts each with the
 * running configuration and every instance set, relays set and health
 * changes, takes passive reports and template requests, runs the two-phase
 * reload, replaces a worker that dies, and drains them all.
 */
export class WorkerPool implements DataPlanes {
  readonly #options: WorkerPoolOptions
  readonly #members = new Map<number, Member>()
  #state!: () => RoutingState<ControlBackend>
  #log!: Log
  #document!: GatewayDocument
  /** The document the workers started with: its start-only fields hold until a restart, for replacements too. */
  #startDocument!: GatewayDocument
  /** The HTTPS listeners' session ticket key, base64: each worker gets it before its configuration. */
  #ticketKey: string | undefined
  /** The ACME challenges under way and the certificates obtained: a worker that starts gets them before its configuration. */
  #challenges: MessageOf<ToWorker, 'srvgate:acme-challenges'> | undefined
  #issued: MessageOf<ToWorker, 'srvgate:issued-certificates'> | undefined
  #acme: AcmeAnswerer = { certificate: async () => false, challenge: async () => undefined }
  /** Workers that have not taken a challenge within 5 s: the CA is not told to validate (the order fails, and is tried again). */
  readonly #challengeAcks = new Gathering<undefined>(systemClock, 5_000)
  #replaced = 0
  #isDraining = false
  #pending: { readonly generation: number, readonly state: RoutingState<ControlBackend> } | undefined
  /** A reload under way, until its commit or abort: a worker that says hello meanwhile waits, then gets what runs. */
  #reloading: { readonly done: Promise<void>, readonly settle: () => void } | undefined
  /** /metrics and /admin/state wait 2 s for the workers' figures, then go without those missing. */
  readonly #stats = new Gathering<DataPlaneStats>(systemClock, 2_000)
  /** frontends' rateLimit buckets, exact: every worker's requests are taken from the same bucket (policy/rate-limits.ts leases them). */
  readonly #rates = new RateBuckets()
  /** The DNS face every worker answers (SO_REUSEPORT), when the primary does not. */
  #dnsFace: MessageOf<ToWorker, 'srvgate:dns-face'> | undefined
  #listening: { resolve: (addresses: PublicAddresses) => void, reject: (error: Error) => void } | undefined

  constructor (options: WorkerPoolOptions) { this.#options = options }

  /** Fork every worker with the running configuration; resolves with the public address once all listen. */
  async start (state: () => RoutingState<ControlBackend>, document: GatewayDocument, log: Log, dnsFace?: readonly Address[]): Promise<PublicAddresses> {
    if (dnsFace !== undefined) this.#dnsFace = { type: 'srvgate:dns-face', listen: dnsFace.map((address) => ({ ...address })), workers: this.#options.count, required: true }
    this.#state = state
    this.#log = log
    this.#document = document
    this.#startDocument = document
    this.#options.spawner.setup()
    const listening = new Promise<PublicAddresses>((resolve, reject) => { this.#listening = { resolve, reject } })
    for (let index = 0; index < this.#options.count; index++) this.#fork()
    return await listening
  }

  status (): WorkersStatus {
    const pids: number[] = []
    for (const member of this.#members.values()) if (member.isServing && member.worker.pid !== undefined) pids.push(member.worker.pid)
    return { configured: this.#options.count, running: pids.length, replaced: this.#replaced, pids }
  }

  // ---- DataPlanes: what the control plane asks of the workers ----

  readonly isServing = (): boolean => this.status().running > 0
  readonly workers = (): WorkersStatus => this.status()
  /** Each worker retires its own pools, told by its own view of the sets. */
  readonly setChanged = (): void => {}

  readonly sessionTicketKey = (key: Buffer): void => {
    this.#ticketKey = key.toString('base64')
    this.#broadcast({ type: 'srvgate:session-ticket-key', key: this.#ticketKey })
  }

  readonly acmeChallenges = async (set: ChallengeSet): Promise<void> => {
    const serving = [...this.#members.values()].filter((member) => member.isServing && member.worker.isConnected())
    const { isComplete } = await this.#challengeAcks.ask(serving.map((member) => member.worker.id), (id) => {
      // Kept for a worker that starts later: it gets them before its configuration.
      this.#challenges = { type: 'srvgate:acme-challenges', id, http: [...set.http], alpn: [...set.alpn] }
      for (const member of serving) member.channel.send(this.#challenges)
    })
    if (!isComplete) throw new Error('workers did not take the ACME challenges within 5 s')
  }

  readonly answerAcme = (answerer: AcmeAnswerer): void => { this.#acme = answerer }

  readonly issuedCertificates = (certificates: readonly IssuedPem[]): void => {
    this.#issued = { type: 'srvgate:issued-certificates', certificates: [...certificates] }
    this.#broadcast(this.#issued)
  }

  async prepare (generation: number, document: GatewayDocument, state: RoutingState<ControlBackend>): Promise<void> {
    let settle: () => void = () => {}
    this.#reloading = { done: new Promise((resolve) => { settle = resolve }), settle }
    this.#pending = { generation, state }
    let isPrepared = false
    try {
      // Every worker given a configuration, listening or not yet: one still starting takes the
      // prepare after its init (a worker handles messages in order), or it would keep the old
      // configuration forever. Only those already serving can refuse the reload: one that
      // fails to start is replaced anyway, and its successor starts with what runs.
      const told = [...this.#members.values()].filter((member) => member.generation !== undefined && !member.isRefused && !member.worker.isDead())
      const message: MessageOf<ToWorker, 'srvgate:config'> = { type: 'srvgate:config', phase: 'prepare', generation, document, backends: state.registry.all().map(wireBackend) }
      const serving = told.filter((member) => member.isServing).length
      const results = await Promise.all(told.map(async (member) => {
        const wasServing = member.isServing
        const error = await this.#prepareOne(member, message)
        if (error === undefined || wasServing) return error
        this.#log.warn({ worker: member.worker.id, pid: member.worker.pid, generation, error }, 'a starting worker could not prepare the reload: replaced, its successor starts with what runs')
        return undefined
      }))
      const failed = results.filter((result): result is string => result !== undefined)
      if (failed.length === 0) {
        this.#document = document
        isPrepared = true
        return
      }
      this.#broadcast({ type: 'srvgate:abort', generation })
      throw new Error(`${failed.length} of ${serving} workers could not apply it (${failed.join('; ')}); they are replaced, every worker keeps the previous configuration`)
    } finally {
      this.#pending = undefined
      // Prepared: the reload ends at commit, when the control plane runs the new state.
      if (!isPrepared) this.#endReload()
    }
  }

  commit (generation: number): void {
    this.#broadcast({ type: 'srvgate:commit', generation })
    // A hello waiting for the reload reads the state after the control plane's swap, which follows
    // this call in the same turn: its worker starts with this generation and its document together.
    this.#endReload()
  }

  discoveryChanged (generation: number, name: string, snapshot: DiscoverySnapshot): void {
    this.#broadcast({ type: 'srvgate:set', generation, name, snapshot: toWire(snapshot) })
  }

  healthChanged (generation: number, name: string, health: HealthFact): void {
    this.#broadcast({ type: 'srvgate:health', generation, name, health })
  }

  async stats (): Promise<DataPlaneStats[]> {
    const serving = [...this.#members.values()].filter((member) => member.isServing && member.worker.isConnected())
    const { answers } = await this.#stats.ask(serving.map((member) => member.worker.id), (id) => {
      for (const member of serving) member.channel.send({ type: 'srvgate:stats', id })
    })
    return answers
  }


  /** SIGTERM: every worker drains (readyz is already 503); resolves when all have exited. */
  async drain (): Promise<void> {
    this.#isDraining = true
    const exits = [...this.#members.values()].map(async ({ worker, channel }) => {
      if (worker.isDead()) return
      await new Promise<void>((resolve) => {
        worker.onExit(() => { resolve() })
        channel.send({ type: 'srvgate:drain' })
      })
    })
    await Promise.all(exits)
  }

  /** Kill every worker now (start-up failed, or the drain overran). */
  killAll (): void {
    this.#isDraining = true
    for (const { worker } of this.#members.values()) if (!worker.isDead()) worker.kill()
  }

  // ---- internals ----

  #fork (): void {
    const worker = this.#options.spawner.spawn(this.#log)
    const member: Member = { worker, channel: worker.channel, forkedAtMs: systemClock.now(), isServing: false, generation: undefined, holds: new Set(), isRefused: false }
    this.#members.set(worker.id, member)
    member.channel.onMessage((message) => { this.#onMessage(member, message) })
    worker.onExit((code, signal) => { this.#onExit(worker, code, signal) })
  }

  #onMessage (member: Member, message: ToPrimary): void {
    const worker = member.worker
    switch (message.type) {
      case 'srvgate:hello':
        if (message.version === PROTOCOL_VERSION) void this.#init(member)
        else this.#refuse(member, message.version)
        return
      case 'srvgate:listening':
        member.isServing = true
        this.#log.debug({ worker: worker.id, pid: worker.pid }, 'worker listening')
        if (this.#listening !== undefined && this.status().running === this.#options.count) {
          this.#listening.resolve(message.addresses)
          this.#listening = undefined
        }
        return
      case 'srvgate:start-failed':
        if (this.#listening !== undefined) {
          this.#listening.reject(new Error(`a worker could not start: ${message.error}`))
          this.#listening = undefined
        } else {
          this.#log.error({ worker: worker.id, error: message.error }, 'a worker could not start')
        }
        return
      case 'srvgate:prepared':
        // askToPrepare, which sent the configuration, takes the answer.
        return
      case 'srvgate:report':
        this.#registryOf(message.generation)?.registry.named(message.name)?.reportKey(message.key, message.outcome)
        return
      case 'srvgate:template':
        void this.#template(member, message.generation, message.name, message.template, message.env)
        return
      case 'srvgate:release': {
        const hold = `${message.generation}\u0000${message.name}`
        if (member.holds.delete(hold)) this.#registryOf(message.generation)?.registry.named(message.name)?.release()
        return
      }
      case 'srvgate:certificate-wanted': {
        const { id, name } = message
        this.#acme.certificate(name).catch(() => false).then((served) => {
          if (!worker.isDead()) member.channel.send({ type: 'srvgate:certificate-answer', id, served })
        }, () => {})
        return
      }
      case 'srvgate:rate-take': {
        const { id, frontend, key, want, perSecond, burst, maxKeys } = message
        const grant = this.#rates.take(frontend, key, want, { perSecond, burst, maxKeys }, systemClock.now())
        member.channel.send({ type: 'srvgate:rate-granted', id, granted: grant.granted, retryAfterMs: grant.retryAfterMs })
        return
      }
      case 'srvgate:challenge-wanted': {
        const { id } = message
        this.#acme.challenge(message.challenge, message.key).catch(() => undefined).then((found) => {
          if (!worker.isDead()) member.channel.send({ type: 'srvgate:challenge-answer', id, ...(found === undefined ? {} : { found }) })
        }, () => {})
        return
      }
      case 'srvgate:acme-challenges-applied':
        this.#challengeAcks.answer(message.id, worker.id, undefined)
        return
      case 'srvgate:stats':
        // A copy of prom-client's part: its aggregator takes mutable arrays.
        this.#stats.answer(message.id, worker.id, { ...message.stats, metrics: [...message.stats.metrics] })
    }
  }

  /**
   * A worker that speaks another protocol version (forked from files replaced
   * on disk under a running primary): it gets no configuration and is killed.
   * It is not replaced: its successor would run the same files.
   */
  #refuse (member: Member, version: number): void {
    member.isRefused = true
    const { worker } = member
    const reason = `worker ${worker.id} speaks cluster protocol version ${version}, this primary ${PROTOCOL_VERSION}: restart srvgate to run the installed version`
    this.#log.error({ worker: worker.id, pid: worker.pid, version, expected: PROTOCOL_VERSION }, 'worker refused: another cluster protocol version (restart srvgate)')
    if (this.#listening !== undefined) {
      this.#listening.reject(new Error(reason))
      this.#listening = undefined
    }
    worker.kill()
  }

  /** A worker said hello: after any reload under way, it gets what runs now. */
  async #init (member: Member): Promise<void> {
    await this.#reloading?.done
    const state = this.#state()
    member.generation = state.generation
    // First: the worker's HTTPS listener issues no ticket with a key of its own.
    if (this.#ticketKey !== undefined) member.channel.send({ type: 'srvgate:session-ticket-key', key: this.#ticketKey })
    // Before the configuration: the worker binds the DNS face once it listens.
    if (this.#dnsFace !== undefined) member.channel.send({ ...this.#dnsFace, required: this.#listening !== undefined })
    // Before it listens: it serves the ACME certificates, and answers a validation under way, from its first connection.
    if (this.#issued !== undefined) member.channel.send(this.#issued)
    if (this.#challenges !== undefined) member.channel.send(this.#challenges)
    const startDocument = this.#document === this.#startDocument ? {} : { startDocument: this.#startDocument }
    member.channel.send({ type: 'srvgate:config', phase: 'init', generation: state.generation, document: this.#document, ...startDocument, backends: state.registry.all().map(wireBackend) })
  }

  async #prepareOne (member: Member, message: MessageOf<ToWorker, 'srvgate:config'>): Promise<string | undefined> {
    member.generation = message.generation
    const error = await askToPrepare(member.channel, message, { clock: systemClock, timeoutMs: PREPARE_TIMEOUT_MS, name: `worker ${member.worker.id}` })
    if (error !== undefined && !member.worker.isDead()) {
      // Replaced with the configuration that keeps running: its successor starts from it. No
      // longer counted as serving from now, not from when its exit is seen: /admin/state and the
      // 422 agree, and no stats request is sent to it meanwhile.
      member.isServing = false
      member.worker.kill()
    }
    return error
  }

  /** A worker needs a templated backend: made (or found) here, held for it, its set sent once known. */
  async #template (member: Member, generation: number, name: string, template: string, env: string): Promise<void> {
    const state = this.#registryOf(generation)
    const config = state?.config.frontends.flatMap((frontend) => templatesOf(frontend.backend)).find((candidate) => candidate.template === template)
    const backend = config === undefined ? undefined : state?.registry.template(config, env)
    if (backend === undefined || backend instanceof TemplateRefusal || backend.name !== name) {
      // Past newPerSecond the worker answers 503 with Retry-After (route-request.ts); at the bound (or a template
      // this generation does not have), no_healthy_upstream.
      const refusal = backend instanceof TemplateRefusal ? backend : new TemplateRefusal('bound')
      member.channel.send({ type: 'srvgate:template-refused', generation, name, reason: refusal.reason, retryAfterMs: refusal.retryAfterMs })
      return
    }
    backend.hold()
    member.holds.add(`${generation}\u0000${name}`)
    await backend.ready()
    member.channel.send({ type: 'srvgate:set', generation, name, snapshot: toWire(backend.snapshot) })
    for (const health of backend.healthFacts()) member.channel.send({ type: 'srvgate:health', generation, name, health })
  }

  #registryOf (generation: number): RoutingState<ControlBackend> | undefined {
    return stateOfGeneration(generation, this.#state(), this.#pending?.state)
  }

  #onExit (worker: DataPlaneProcess, code: number | null, signal: string | null): void {
    const member = this.#members.get(worker.id)
    if (member === undefined) return
    this.#members.delete(worker.id)
    for (const hold of member.holds) {
      const [generation, name] = hold.split('\u0000') as [string, string]
      this.#registryOf(Number(generation))?.registry.named(name)?.release()
    }
    if (this.#isDraining || member.isRefused) return
    if (this.#listening !== undefined) {
      this.#listening.reject(new Error(`a worker exited during start-up (${signal ?? `code ${String(code)}`})`))
      this.#listening = undefined
      return
    }
    // Replaced at once (the other workers keep serving meanwhile); one that died young is
    // replaced a second later, so a worker that cannot live does not turn into a fork loop.
    this.#replaced++
    const livedMs = systemClock.now() - member.forkedAtMs
    this.#log.warn({ worker: worker.id, pid: worker.pid, code, signal, livedMs: Math.round(livedMs) }, 'worker exited: replacing it')
    if (livedMs >= MIN_LIFE_MS) this.#fork()
    else systemClock.setTimeout(() => { if (!this.#isDraining) this.#fork() }, MIN_LIFE_MS, { unref: true })
  }

  #endReload (): void {
    const reloading = this.#reloading
    this.#reloading = undefined
    reloading?.settle()
  }

  #broadcast (message: ToWorker): void {
    for (const { channel } of this.#members.values()) channel.send(message)
  }
}
