import cluster, { type Worker } from 'node:cluster'
import type { DataPlanes, WorkersStatus } from '../control-plane/data-planes.js'
import type { DataPlaneStats } from '../data-plane/stats.js'
import type { Log } from '../log/process-log.js'
import { templatesOf } from '../config/types.js'
import type { RoutingState } from '../proxy/route-request.js'
import { Backend } from '../upstream/backend.js'
import { TemplateRefusal } from '../upstream/templated-backends.js'
import { ErrorCode } from '../errors.js'
import type { PublicAddresses } from '../data-plane/listeners.js'
import { systemClock, type Timer } from '../util/clock.js'
import { TEMPLATE_REFUSED, isToPrimary, toWire, wireBackend, type ToPrimary, type ToWorker } from './protocol.js'

export type WorkerPoolOptions = {
  readonly count: number
  /** The worker entry point (cluster/worker-main.js) and its arguments. */
  readonly exec: string
  readonly args: readonly string[]
}

/** A worker that has not prepared a reload by then is taken as failed (and replaced). */
const PREPARE_TIMEOUT_MS = 10_000
/** A worker that dies younger than this is replaced after this long (no fork loop). */
const MIN_LIFE_MS = 1_000
/** /metrics and /admin/state wait this long for a worker's figures, then go without them. */
const STATS_TIMEOUT_MS = 2_000

type Member = {
  readonly worker: Worker
  readonly forkedAtMs: number
  /** Listening, with the running configuration. */
  isServing: boolean
  /** Templated backends this worker holds, as generation and name. */
  readonly holds: Set<string>
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
  #state!: () => RoutingState
  #log!: Log
  #text = ''
  #replaced = 0
  #isDraining = false
  #pending: { readonly generation: number, readonly state: RoutingState } | undefined
  /** A reload under way: a worker that starts meanwhile waits for its outcome, then gets what runs. */
  #reloading: Promise<void> | undefined
  readonly #prepared = new Map<string, (error: string | undefined) => void>()
  readonly #stats = new Map<number, { readonly results: DataPlaneStats[], waiting: number, readonly done: () => void }>()
  #nextStatsId = 1
  #listening: { resolve: (addresses: PublicAddresses) => void, reject: (error: Error) => void } | undefined

  constructor (options: WorkerPoolOptions) { this.#options = options }

  /** Fork every worker with the running configuration; resolves with the public address once all listen. */
  async start (state: () => RoutingState, text: string, log: Log): Promise<PublicAddresses> {
    this.#state = state
    this.#log = log
    this.#text = text
    // The kernel hands connections to the workers (SCHED_NONE), not the primary (SCHED_RR):
    // a connection the primary has passed to a worker that dies before taking it is lost
    // in the primary and hangs its client forever; accepted by the kernel, it is reset.
    // No primary hop per connection either. Under load the kernel spreads them evenly
    // enough (docs/BENCHMARKS.md); Node 20 has no SO_REUSEPORT to do better.
    cluster.schedulingPolicy = cluster.SCHED_NONE
    cluster.setupPrimary({ exec: this.#options.exec, args: [...this.#options.args] })
    cluster.on('message', (worker, message: unknown) => { if (isToPrimary(message)) this.#onMessage(worker, message) })
    cluster.on('exit', (worker, code, signal) => { this.#onExit(worker, code, signal) })
    const listening = new Promise<PublicAddresses>((resolve, reject) => { this.#listening = { resolve, reject } })
    for (let index = 0; index < this.#options.count; index++) this.#fork()
    return await listening
  }

  status (): WorkersStatus {
    const pids: number[] = []
    for (const member of this.#members.values()) if (member.isServing && member.worker.process.pid !== undefined) pids.push(member.worker.process.pid)
    return { configured: this.#options.count, running: pids.length, replaced: this.#replaced, pids }
  }

  // ---- DataPlanes: what the control plane asks of the workers ----

  readonly isServing = (): boolean => this.status().running > 0
  readonly workers = (): WorkersStatus => this.status()
  /** Each worker retires its own pools, told by its own view of the sets. */
  readonly setChanged = (): void => {}

  async prepare (generation: number, text: string, state: RoutingState): Promise<void> {
    let settle: () => void = () => {}
    this.#reloading = new Promise((resolve) => { settle = resolve })
    this.#pending = { generation, state }
    try {
      const serving = [...this.#members.values()].filter((member) => member.isServing)
      const message: ToWorker = { type: 'srvgate:config', phase: 'prepare', generation, text, backends: state.registry.all().map(wireBackend) }
      const results = await Promise.all(serving.map(async (member) => await this.#prepareOne(member, generation, message)))
      const failed = results.filter((result): result is string => result !== undefined)
      if (failed.length === 0) {
        this.#text = text
        return
      }
      this.#broadcast({ type: 'srvgate:abort', generation })
      throw new Error(`${failed.length} of ${serving.length} workers could not apply it (${failed.join('; ')}); they are replaced, every worker keeps the previous configuration`)
    } finally {
      this.#pending = undefined
      this.#reloading = undefined
      settle()
    }
  }

  commit (generation: number): void { this.#broadcast({ type: 'srvgate:commit', generation }) }

  discoveryChanged (generation: number, backend: Backend): void {
    this.#broadcast({ type: 'srvgate:set', generation, name: backend.name, snapshot: toWire(backend.snapshot) })
  }

  healthChanged (generation: number, backend: Backend, key: string): void {
    this.#broadcast({ type: 'srvgate:health', generation, name: backend.name, health: backend.healthView(key) })
  }

  async stats (): Promise<DataPlaneStats[]> {
    const serving = [...this.#members.values()].filter((member) => member.isServing && member.worker.isConnected())
    if (serving.length === 0) return []
    const id = this.#nextStatsId++
    const results: DataPlaneStats[] = []
    let timer: Timer | undefined
    await new Promise<void>((resolve) => {
      this.#stats.set(id, { results, waiting: serving.length, done: resolve })
      timer = systemClock.setTimeout(resolve, STATS_TIMEOUT_MS)
      for (const member of serving) this.#send(member.worker, { type: 'srvgate:stats', id })
    })
    timer?.cancel()
    this.#stats.delete(id)
    return results
  }

  /** SIGTERM: every worker drains (readyz is already 503); resolves when all have exited. */
  async drain (): Promise<void> {
    this.#isDraining = true
    const exits = [...this.#members.values()].map(async ({ worker }) => {
      if (worker.isDead()) return
      await new Promise<void>((resolve) => {
        worker.once('exit', () => { resolve() })
        this.#send(worker, { type: 'srvgate:drain' })
      })
    })
    await Promise.all(exits)
  }

  /** Kill every worker now (start-up failed, or the drain overran). */
  killAll (): void {
    this.#isDraining = true
    for (const { worker } of this.#members.values()) if (!worker.isDead()) worker.process.kill('SIGKILL')
  }

  // ---- internals ----

  #fork (): void {
    const worker = cluster.fork()
    this.#members.set(worker.id, { worker, forkedAtMs: systemClock.now(), isServing: false, holds: new Set() })
  }

  #onMessage (worker: Worker, message: ToPrimary): void {
    const member = this.#members.get(worker.id)
    if (member === undefined) return
    switch (message.type) {
      case 'srvgate:hello':
        void this.#init(member)
        return
      case 'srvgate:listening':
        member.isServing = true
        this.#log.debug({ worker: worker.id, pid: worker.process.pid }, 'worker listening')
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
        this.#prepared.get(`${worker.id}:${message.generation}`)?.(message.error)
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
      case 'srvgate:stats': {
        const waiting = this.#stats.get(message.id)
        if (waiting === undefined) return
        waiting.results.push(message.stats)
        if (--waiting.waiting === 0) waiting.done()
      }
    }
  }

  /** A worker said hello: after any reload under way, it gets what runs now. */
  async #init (member: Member): Promise<void> {
    await this.#reloading
    const state = this.#state()
    this.#send(member.worker, { type: 'srvgate:config', phase: 'init', generation: state.generation, text: this.#text, backends: state.registry.all().map(wireBackend) })
  }

  async #prepareOne (member: Member, generation: number, message: ToWorker): Promise<string | undefined> {
    const key = `${member.worker.id}:${generation}`
    let timer: Timer | undefined
    const error = await new Promise<string | undefined>((resolve) => {
      this.#prepared.set(key, resolve)
      timer = systemClock.setTimeout(() => { resolve(`worker ${member.worker.id} did not answer within ${PREPARE_TIMEOUT_MS / 1000} s`) }, PREPARE_TIMEOUT_MS)
      member.worker.once('exit', () => { resolve(`worker ${member.worker.id} exited`) })
      this.#send(member.worker, message)
    })
    timer?.cancel()
    this.#prepared.delete(key)
    if (error !== undefined && !member.worker.isDead()) {
      // Replaced with the configuration that keeps running: its successor starts from it.
      member.worker.process.kill('SIGKILL')
    }
    return error
  }

  /** A worker needs a templated backend: made (or found) here, held for it, its set sent once known. */
  async #template (member: Member, generation: number, name: string, template: string, env: string): Promise<void> {
    const state = this.#registryOf(generation)
    const config = state?.config.frontends.flatMap((frontend) => templatesOf(frontend.backend)).find((candidate) => candidate.template === template)
    const backend = config === undefined ? undefined : state?.registry.template(config, env)
    if (!(backend instanceof Backend) || backend.name !== name) {
      // Past newPerSecond the worker answers 503 with Retry-After (route-request.ts); at the bound, no_healthy_upstream.
      const lastError = backend instanceof TemplateRefusal && backend.reason === 'rate'
        ? { code: ErrorCode.TEMPLATE_RATE_LIMITED, message: `templatedBackends.newPerSecond spent; the next in ${backend.retryAfterMs} ms` }
        : { code: TEMPLATE_REFUSED, message: 'templatedBackends.max reached with every templated backend busy' }
      this.#send(member.worker, { type: 'srvgate:set', generation, name, snapshot: { status: 'failed', instances: [], isStale: false, lastError, refused: [] } })
      return
    }
    backend.hold()
    member.holds.add(`${generation}\u0000${name}`)
    await backend.ready()
    this.#send(member.worker, { type: 'srvgate:set', generation, name, snapshot: toWire(backend.snapshot) })
    for (const health of backend.healthViews()) this.#send(member.worker, { type: 'srvgate:health', generation, name, health })
  }

  #registryOf (generation: number): RoutingState | undefined {
    const state = this.#state()
    if (state.generation === generation) return state
    return this.#pending?.generation === generation ? this.#pending.state : undefined
  }

  #onExit (worker: Worker, code: number | null, signal: string | null): void {
    const member = this.#members.get(worker.id)
    if (member === undefined) return
    this.#members.delete(worker.id)
    for (const hold of member.holds) {
      const [generation, name] = hold.split('\u0000') as [string, string]
      this.#registryOf(Number(generation))?.registry.named(name)?.release()
    }
    if (this.#isDraining) return
    if (this.#listening !== undefined) {
      this.#listening.reject(new Error(`a worker exited during start-up (${signal ?? `code ${String(code)}`})`))
      this.#listening = undefined
      return
    }
    // Replaced at once (the other workers keep serving meanwhile); one that died young is
    // replaced a second later, so a worker that cannot live does not turn into a fork loop.
    this.#replaced++
    const livedMs = systemClock.now() - member.forkedAtMs
    this.#log.warn({ worker: worker.id, pid: worker.process.pid, code, signal, livedMs: Math.round(livedMs) }, 'worker exited: replacing it')
    if (livedMs >= MIN_LIFE_MS) this.#fork()
    else systemClock.setTimeout(() => { if (!this.#isDraining) this.#fork() }, MIN_LIFE_MS, { unref: true })
  }

  #broadcast (message: ToWorker): void {
    for (const { worker } of this.#members.values()) this.#send(worker, message)
  }

  #send (worker: Worker, message: ToWorker): void {
    if (!worker.isConnected()) return
    try {
      worker.send(message)
    } catch {
      // The channel closed between the check and the send: its exit event follows.
    }
  }
}
