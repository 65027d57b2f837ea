import type { AcmeAnswerer, DataPlanes } from '../control-plane/data-planes.js'
import type { DataPlane } from '../data-plane/data-plane.js'
import type { DataPlaneStats } from '../data-plane/stats.js'
import type { Log } from '../log/process-log.js'
import type { ProcessOptions } from '../process.js'
import type { RoutingState } from '../proxy/route-request.js'
import type { DiscoverySnapshot } from '../discovery/watcher.js'
import type { HealthFact } from '../upstream/backend.js'
import type { ControlBackend } from '../upstream/control-backend.js'
import type { ChallengeSet } from '../tls/acme-answers.js'
import type { IssuedPem } from '../tls/certificates.js'
import { inProcessChannel } from './channel.js'
import type { WorkerGateway } from './worker-gateway.js'
import { WorkerLoop } from './worker-loop.js'
import { WorkerPool } from './worker-pool.js'
import type { DataPlaneProcess } from './spawner.js'
import type { GatewayDocument } from '../config/schema.js'

/**
 * One process serving its own configuration: the control plane's one data
 * plane runs beside it, the same WorkerLoop a cluster worker runs, joined by
 * the in-memory channel instead of IPC (synchronous and checked,
 * cluster/channel.ts). So there is one code path for both: the data plane
 * gets the configuration's document, its instance sets and health as messages,
 * reports passive outcomes and asks for templated backends as messages, and a
 * reload runs the same two phases. It does not bind listeners or drain on its
 * own: server.ts (or a test) does, as it did before.
 */
export class InProcessDataPlane implements DataPlanes {
  readonly #pool: WorkerPool
  readonly #process: ProcessOptions
  #loop: WorkerLoop | undefined
  #closed: Promise<void> = Promise.resolve()

  constructor (options: ProcessOptions) {
    this.#process = options
    this.#pool = new WorkerPool({ count: 1, spawner: { setup: () => {}, spawn: (log) => this.#spawn(log) } })
  }

  /** Start the data plane with the running configuration (its checked document) and every instance set. */
  async start (state: () => RoutingState<ControlBackend>, document: GatewayDocument, log: Log): Promise<void> {
    await this.#pool.start(state, document, log)
  }

  /** The data plane and the routing state it serves from, once started. */
  get gateway (): WorkerGateway {
    const gateway = this.#loop?.gateway
    if (gateway === undefined) throw new Error('the data plane has not started (start() first)')
    return gateway
  }

  get data (): DataPlane { return this.gateway.data }

  readonly prepare = async (generation: number, document: GatewayDocument, state: RoutingState<ControlBackend>): Promise<void> => { await this.#pool.prepare(generation, document, state) }
  readonly commit = (generation: number): void => { this.#pool.commit(generation) }
  readonly discoveryChanged = (generation: number, name: string, snapshot: DiscoverySnapshot): void => { this.#pool.discoveryChanged(generation, name, snapshot) }
  readonly healthChanged = (generation: number, name: string, health: HealthFact): void => { this.#pool.healthChanged(generation, name, health) }
  /** The data plane retires its own pools, told by its own view of the sets. */
  readonly setChanged = (): void => {}
  readonly sessionTicketKey = (key: Buffer): void => { this.#pool.sessionTicketKey(key) }
  readonly acmeChallenges = async (set: ChallengeSet): Promise<void> => { await this.#pool.acmeChallenges(set) }
  readonly issuedCertificates = (certificates: readonly IssuedPem[]): void => { this.#pool.issuedCertificates(certificates) }
  readonly answerAcme = (answerer: AcmeAnswerer): void => { this.#pool.answerAcme(answerer) }
  readonly isServing = (): boolean => this.#pool.isServing()
  readonly stats = async (): Promise<DataPlaneStats[]> => await this.#pool.stats()

  /** Close the data plane (its pools, its registry); the listeners are the caller's. */
  async close (): Promise<void> {
    this.#pool.killAll()
    await this.#closed
  }

  #spawn (log: Log): DataPlaneProcess {
    const { primary, worker, close } = inProcessChannel(log)
    const exits = new Set<(code: number | null, signal: string | null) => void>()
    let isDead = false
    let closed: () => void = () => {}
    this.#closed = new Promise((resolve) => { closed = resolve })
    const loop = new WorkerLoop({
      channel: worker,
      process: { ...this.#process, role: 'in-process' },
      listen: async () => ({}),
      drain: async () => {},
      exit: (code) => {
        if (isDead) return
        isDead = true
        close()
        for (const handler of exits) handler(code, null)
        closed()
      }
    })
    this.#loop = loop
    // After the pool has subscribed to its end (the channel delivers at once).
    queueMicrotask(() => { loop.hello() })
    return {
      id: 1,
      pid: process.pid,
      channel: primary,
      isDead: () => isDead,
      isConnected: () => !isDead,
      kill: () => { void loop.drain() },
      onExit: (handler) => { exits.add(handler) }
    }
  }
}
