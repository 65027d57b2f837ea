import { compileChecked } from '../config/compile-checked.js'
import type { GatewayConfig } from '../config/types.js'
import type { GatewayDocument } from '../config/schema.js'
import type { PublicAddresses } from '../data-plane/listeners.js'
import type { DataPlane } from '../data-plane/data-plane.js'
import { statsOf } from '../data-plane/stats.js'
import { withStartOnly } from '../control-plane/restart-only.js'
import type { ProcessOptions } from '../process.js'
import type { BackendRegistry } from '../upstream/registry.js'
import type { ReplicaBackend } from '../upstream/replica-backend.js'
import { NO_CHALLENGES, type ChallengeSet } from '../tls/acme-answers.js'
import type { IssuedPem } from '../tls/certificates.js'
import type { Grant, RateLimitTerms } from '../policy/rate-buckets.js'
import { WorkerGateway, type PendingGeneration } from './worker-gateway.js'
import { GenerationFacts, applyFromPrimary } from './control-facts.js'
import { PROTOCOL_VERSION } from './protocol-version.js'
import type { Frozen, MessageOf, ToWorker, WireBackend } from './protocol.js'
import type { WorkerEnd } from './channel.js'
import { stateOfGeneration } from './generations.js'

export type WorkerLoopOptions = {
  /** Its end of the channel to the control plane: node:cluster IPC, or in-process. */
  readonly channel: WorkerEnd
  /** The data plane's clock, randomness and log level (metrics role included). */
  readonly process: ProcessOptions & { readonly role: 'worker' | 'in-process' }
  /** Bind the configuration's public listeners (a cluster worker), or nothing (one process: server.ts listens). */
  readonly listen: (data: DataPlane, config: GatewayConfig) => Promise<PublicAddresses>
  /** Drained (told to, or the control plane is gone), or could not start. */
  readonly exit: (code: number) => Promise<void> | void
  /** Drain the data plane's traffic before exit (a cluster worker); one process drains in server.ts. */
  readonly drain: (gateway: WorkerGateway) => Promise<void>
}

/**
 * A data plane fed by its control plane over a channel: serves traffic with
 * the configuration and instance sets the control plane sends; reports
 * passive failures; never asks DNS, never checks health, never writes the
 * state file, never reloads on its own. The same loop runs in a cluster
 * worker (cluster/worker.ts, over IPC) and beside the control plane in one
 * process (cluster/in-process.ts, over the in-memory channel). Messages are
 * handled one at a time, in order, so a set sent after a configuration
 * always finds it.
 */
export class WorkerLoop {
  readonly #options: WorkerLoopOptions
  readonly #views = new Map<number, GenerationFacts>()
  #gateway: WorkerGateway | undefined
  #pending: PendingGeneration | undefined
  #isDraining = false
  /** The control plane's session ticket key: it comes before the configuration, and again at each rotation. */
  #ticketKey: Buffer | undefined
  /** tls.acme's certificates and challenges under way, from the control plane: they too come before the configuration. */
  #issued: readonly IssuedPem[] = []
  #challenges: ChallengeSet = NO_CHALLENGES
  /** The DNS face this worker answers too (sent before the configuration), if any. */
  #dnsFace: MessageOf<ToWorker, 'srvgate:dns-face'> | undefined
  /** Handshakes waiting for the control plane's answer about a name's certificate (tls.acme.onDemand). */
  readonly #wanted = new Map<number, (served: boolean) => void>()
  readonly #challengesWanted = new Map<number, (found: ChallengeFound) => void>()
  readonly #tokensAsked = new Map<number, (grant: Grant) => void>()
  #nextWantedId = 1
  #queue = Promise.resolve()

  constructor (options: WorkerLoopOptions) {
    this.#options = options
    const { channel } = options
    channel.onMessage((message) => {
      // Stats and drain must not wait behind a slow prepare: they do not touch configuration.
      if (message.type === 'srvgate:drain' || message.type === 'srvgate:stats') {
        void this.#handle(message)
        return
      }
      this.#queue = this.#queue.then(async () => { await this.#handle(message) }).catch((error: unknown) => {
        this.#gateway?.data.log.error({ err: error }, 'cluster message failed')
      })
    })
    // The control plane is gone (the primary killed): nobody will tell us to drain, so drain now.
    channel.onClose(() => {
      for (const answer of this.#wanted.values()) answer(false)
      this.#wanted.clear()
      for (const answer of this.#challengesWanted.values()) answer(undefined)
      this.#challengesWanted.clear()
      void this.drain()
    })
  }

  /** The data plane serving, once the control plane's configuration has arrived. */
  get gateway (): WorkerGateway | undefined { return this.#gateway }

  /** Say hello: the control plane answers with the configuration. */
  hello (): void { this.#options.channel.send({ type: 'srvgate:hello', version: PROTOCOL_VERSION }) }

  async drain (): Promise<void> {
    if (this.#isDraining) return
    this.#isDraining = true
    if (this.#gateway !== undefined) {
      await this.#options.drain(this.#gateway)
      await this.#gateway.close().catch(() => {})
    }
    await this.#options.exit(0)
  }

  /** The DNS face in this worker too; closed again if a drain began meanwhile (drain skips the queue). */
  async #startFace (gateway: WorkerGateway, face: MessageOf<ToWorker, 'srvgate:dns-face'>, addresses: PublicAddresses): Promise<void> {
    try {
      await gateway.startFace(face.listen, face.workers, addresses.http ?? addresses.https)
    } catch (error) {
      if (face.required) throw error
      // A replacement that cannot bind (the address gone from the host): HTTP still served here, DNS by the others.
      gateway.data.log.error({ err: error }, 'DNS face: this worker cannot bind it; the other workers answer')
      return
    }
    if (this.#isDraining) await gateway.closeFace()
  }

  async #handle (message: ToWorker): Promise<void> {
    const send = this.#options.channel.send.bind(this.#options.channel)
    switch (message.type) {
      case 'srvgate:config': {
        const { generation, document, backends } = message
        let config: GatewayConfig
        try {
          // Checked by the control plane; compiled here again (a compiled configuration cannot cross processes).
          config = compiled(document)
          // A replacement keeps what the other workers bound at start (a reload could not change it).
          if (message.startDocument !== undefined) config = withStartOnly(compiled(message.startDocument), config)
        } catch (error) {
          // Not a ConfigError (the document was checked): a compiler that throws on what the check let through.
          const reason = (error as Error).message
          if (message.phase === 'prepare') send({ type: 'srvgate:prepared', generation, error: reason })
          else send({ type: 'srvgate:start-failed', error: reason })
          return
        }
        this.#views.set(generation, new GenerationFacts(generation, backends, send))
        if (message.phase === 'init') {
          try {
            this.#gateway = await WorkerGateway.start(config, generation, { ...this.#options.process, wantCertificate: this.#wantCertificate, findChallenge: this.#findChallenge, askTokens: this.#askTokens }, this.#views)
            applyHealth(this.#gateway.state.registry, backends)
            if (this.#ticketKey !== undefined) this.#gateway.data.useSessionTicketKey(this.#ticketKey)
            this.#gateway.data.useIssued(this.#issued)
            this.#gateway.data.useChallenges(this.#challenges)
            const addresses = await this.#options.listen(this.#gateway.data, config)
            if (this.#dnsFace !== undefined) await this.#startFace(this.#gateway, this.#dnsFace, addresses)
            send({ type: 'srvgate:listening', addresses })
          } catch (error) {
            send({ type: 'srvgate:start-failed', error: (error as Error).message })
            await this.#options.exit(1)
          }
          return
        }
        if (this.#gateway === undefined) return
        try {
          this.#pending = await this.#gateway.prepare(config, generation)
          applyHealth(this.#pending.state.registry, backends)
          send({ type: 'srvgate:prepared', generation })
        } catch (error) {
          this.#views.delete(generation)
          send({ type: 'srvgate:prepared', generation, error: (error as Error).message })
        }
        return
      }
      case 'srvgate:commit':
        if (this.#gateway === undefined || this.#pending?.generation !== message.generation) return
        this.#gateway.commit(this.#pending)
        this.#pending = undefined
        for (const generation of this.#views.keys()) if (generation < message.generation) this.#views.delete(generation)
        return
      case 'srvgate:abort':
        if (this.#pending?.generation === message.generation) {
          this.#pending.state.registry.stop()
          this.#pending = undefined
        }
        this.#views.delete(message.generation)
        return
      case 'srvgate:set':
      case 'srvgate:health':
      case 'srvgate:template-refused':
        applyFromPrimary(message, this.#views.get(message.generation), this.#registryOf(message.generation))
        return
      case 'srvgate:dns-face':
        this.#dnsFace = message
        return
      case 'srvgate:session-ticket-key':
        this.#ticketKey = Buffer.from(message.key, 'base64')
        this.#gateway?.data.useSessionTicketKey(this.#ticketKey)
        return
      case 'srvgate:issued-certificates':
        this.#issued = message.certificates
        this.#gateway?.data.useIssued(this.#issued)
        return
      case 'srvgate:certificate-answer':
        answer(this.#wanted, message.id, message.served)
        return
      case 'srvgate:rate-granted':
        answer(this.#tokensAsked, message.id, { granted: message.granted, retryAfterMs: message.retryAfterMs })
        return
      case 'srvgate:challenge-answer':
        answer(this.#challengesWanted, message.id, message.found)
        return
      case 'srvgate:acme-challenges':
        this.#challenges = { http: message.http, alpn: message.alpn }
        this.#gateway?.data.useChallenges(this.#challenges)
        send({ type: 'srvgate:acme-challenges-applied', id: message.id })
        return
      case 'srvgate:stats':
        if (this.#gateway !== undefined) send({ type: 'srvgate:stats', id: message.id, stats: await statsOf(this.#gateway.data.metrics, this.#gateway.state.registry) })
        return
      case 'srvgate:drain':
        void this.drain()
    }
  }

  /** Ask the control plane for a certificate for `name`; true once issued-certificates has brought one. */
  readonly #wantCertificate = async (name: string): Promise<boolean> => {
    const id = this.#nextWantedId++
    return await new Promise<boolean>((resolve) => {
      this.#wanted.set(id, resolve)
      this.#options.channel.send({ type: 'srvgate:certificate-wanted', id, name })
    })
  }

  /** A frontend's rateLimit: tokens from the control plane's buckets. */
  readonly #askTokens = async (frontend: string, key: string, want: number, terms: RateLimitTerms): Promise<Grant> => {
    const id = this.#nextWantedId++
    return await new Promise<Grant>((resolve) => {
      this.#tokensAsked.set(id, resolve)
      this.#options.channel.send({ type: 'srvgate:rate-take', id, frontend, key, want, perSecond: terms.perSecond, burst: terms.burst, maxKeys: terms.maxKeys })
    })
  }

  /** A challenge this process does not hold, from the control plane (another replica's, through shared storage). */
  readonly #findChallenge = async (type: 'http-01' | 'tls-alpn-01', key: string): Promise<ChallengeFound> => {
    const id = this.#nextWantedId++
    return await new Promise<ChallengeFound>((resolve) => {
      this.#challengesWanted.set(id, resolve)
      this.#options.channel.send({ type: 'srvgate:challenge-wanted', id, challenge: type, key })
    })
  }

  #registryOf (generation: number): BackendRegistry<ReplicaBackend> | undefined {
    return stateOfGeneration(generation, this.#gateway?.state, this.#pending?.state)?.registry
  }
}

/** The control plane answered question `id`: its waiter gets the value, once. */
function answer<T> (waiting: Map<number, (value: T) => void>, id: number, value: T): void {
  waiting.get(id)?.(value)
  waiting.delete(id)
}

type ChallengeFound = { readonly keyAuthorization?: string, readonly cert?: string, readonly key?: string } | undefined

/**
 * A document the control plane checked, compiled here. A message is typed
 * deeply read-only; compiling only reads the document (in one process the
 * control plane and its data plane compile the same object), hence the cast.
 */
function compiled (document: Frozen<GatewayDocument>): GatewayConfig {
  return compileChecked({ document: document as GatewayDocument, warnings: [] })
}

function applyHealth (registry: BackendRegistry<ReplicaBackend>, backends: readonly WireBackend[]): void {
  for (const backend of backends) for (const view of backend.health) registry.named(backend.name)?.applyHealth(view)
}
