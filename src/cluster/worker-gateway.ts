import type { DnsFaceConfig, GatewayConfig } from '../config/types.js'
import { DataPlane, type DataCandidate } from '../data-plane/data-plane.js'
import type { RoutingState } from '../proxy/route-request.js'
import { processParts, type ProcessOptions, type ProcessParts } from '../process.js'
import { Router } from '../routing/router.js'
import { BackendRegistry, type ControlPlaneFacts } from '../upstream/registry.js'
import type { ReplicaBackend } from '../upstream/replica-backend.js'
import type { ChallengeLookup } from '../tls/acme-answers.js'
import type { AskTokens } from '../policy/rate-limits.js'
import type { Address } from '../util/address.js'
import { faceViews } from '../upstream/face-view.js'
import type { DnsFace } from '../dns-face/dns-face.js'
import { workerShare } from '../dns-face/worker-share.js'
import { ListenError } from '../errors.js'

/** A generation prepared beside the running one, not yet serving. */
export type PendingGeneration = { readonly generation: number, readonly state: RoutingState<ReplicaBackend>, readonly candidate: DataCandidate }

/**
 * A cluster worker's composition root: a data plane and the routing state
 * it serves, whose instance sets and health are the primary's (one
 * ControlPlaneFacts per configuration generation). No discovery, no health checks,
 * no admin app, no state file here.
 */
export class WorkerGateway {
  readonly data: DataPlane
  readonly #parts: ProcessParts
  readonly #views: (generation: number) => ControlPlaneFacts
  #state: RoutingState<ReplicaBackend>
  #face: DnsFace | undefined

  static async start (config: GatewayConfig, generation: number, options: ProcessOptions & { readonly role: 'worker' | 'in-process', readonly wantCertificate?: (name: string) => Promise<boolean>, readonly findChallenge?: ChallengeLookup, readonly askTokens?: AskTokens }, views: ReadonlyMap<number, ControlPlaneFacts>): Promise<WorkerGateway> {
    const viewOf = (forGeneration: number): ControlPlaneFacts => {
      const view = views.get(forGeneration)
      if (view === undefined) throw new Error(`no instance sets for configuration generation ${forGeneration}`)
      return view
    }
    let worker: WorkerGateway | undefined
    const parts = processParts(options, options.role, () => worker?.state.registry.all() ?? [])
    worker = new WorkerGateway(parts, viewOf, await DataPlane.create(config, { ...parts, routing: () => (worker as WorkerGateway).state, wantCertificate: options.wantCertificate, findChallenge: options.findChallenge, askTokens: options.askTokens }), config, generation)
    await worker.data.start()
    await worker.state.registry.start()
    return worker
  }

  private constructor (parts: ProcessParts, views: (generation: number) => ControlPlaneFacts, data: DataPlane, config: GatewayConfig, generation: number) {
    this.#parts = parts
    this.#views = views
    this.data = data
    this.#state = this.#routingState(config, generation, undefined)
  }

  get state (): RoutingState<ReplicaBackend> { return this.#state }

  /** Build `config` beside the running generation (the primary's sets for it arrive through its view). */
  async prepare (config: GatewayConfig, generation: number): Promise<PendingGeneration> {
    const candidate = await this.data.prepare(config)
    const state = this.#routingState(config, generation, this.#state.registry)
    await state.registry.startBeside()
    return { generation, state, candidate }
  }

  /** Swap in one step. */
  commit (pending: PendingGeneration): void {
    const previous = this.#state
    this.#state = pending.state
    previous.registry.stop()
    this.data.commit(pending.state.config, pending.candidate)
  }

  /**
   * The DNS face in this worker too (SO_REUSEPORT beside the others' sockets;
   * TCP through the primary, as the HTTP listeners): answered from this
   * worker's view, the instance sets and health the primary sent, so every
   * worker answers alike within one IPC hop of a change. Its rate limits are this
   * worker's share. Loaded only when asked: a worker without a face keeps its memory.
   */
  async startFace (listen: readonly Address[], workers: number, publicAddress: { readonly host: string, readonly port: number } | undefined): Promise<void> {
    const { DnsFace } = await import('../dns-face/dns-face.js')
    const { faceReports } = await import('../dns-face/reports.js')
    const { clock, random, metrics, log } = this.#parts
    let sharedOf: DnsFaceConfig | undefined
    let shared: DnsFaceConfig | undefined
    const face = new DnsFace({
      view: faceViews(() => this.#state),
      config: () => {
        // This worker's share, worked out once per configuration (read on every query).
        const dns = this.#state.config.dns
        if (dns !== sharedOf) {
          sharedOf = dns
          shared = dns === undefined ? undefined : workerShare(dns, workers)
        }
        return shared
      },
      publicAddress,
      clock,
      random,
      ...faceReports(metrics, log)
    })
    try {
      await face.listen(listen, { reusePort: true })
    } catch (error) {
      throw ListenError.ofEntry('dns.listen', listen, error)
    }
    this.#face = face
  }

  /** Draining: DNS clients go to another replica at once (an answer naming a draining gateway helps nobody). */
  async closeFace (): Promise<void> {
    await this.#face?.close()
    this.#face = undefined
  }

  async close (): Promise<void> {
    await this.closeFace()
    await this.data.close()
    this.#state.registry.stop()
  }

  #routingState (config: GatewayConfig, generation: number, previous: BackendRegistry<ReplicaBackend> | undefined): RoutingState<ReplicaBackend> {
    const { clock, random, metrics } = this.#parts
    const registry = BackendRegistry.replica(config, {
      clock,
      random,
      // Backends of the same name keep their in-flight counts and the health the primary last sent.
      healthOf: (name) => previous?.named(name)?.health,
      wasAlive: (name) => previous?.named(name) !== undefined,
      onTemplateRefused: metrics.templateRefused,
      events: { setChanged: (_label, _added, removed) => { this.data.retireDeparted(removed) } }
    }, this.#views(generation))
    return { config, generation, router: new Router(config.frontends), registry }
  }
}
