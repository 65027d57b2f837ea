import type { DataPlanes } from '../control-plane/data-planes.js'
import type { DataCandidate, DataPlane } from '../data-plane/data-plane.js'
import type { GatewayConfig } from '../config/types.js'
import type { Instance } from '../discovery/instance-set.js'
import type { RoutingState } from '../proxy/route-request.js'

/**
 * One process serving its own configuration: the control plane's one data
 * plane is in the same process and reads the control plane's routing state
 * directly, so sets and health need no relaying; a reload still runs the
 * same two phases as with workers (prepare reads the certificates, commit
 * applies them and the listeners' limits).
 */
export class InProcessDataPlane implements DataPlanes {
  readonly #data: DataPlane
  #pending: { readonly generation: number, readonly config: GatewayConfig, readonly candidate: DataCandidate } | undefined

  constructor (data: DataPlane) { this.#data = data }

  readonly prepare = async (generation: number, _text: string, state: RoutingState): Promise<void> => {
    this.#pending = { generation, config: state.config, candidate: await this.#data.prepare(state.config) }
  }

  readonly commit = (generation: number): void => {
    const pending = this.#pending
    if (pending?.generation !== generation) return
    this.#pending = undefined
    this.#data.commit(pending.config, pending.candidate)
  }

  // The data plane reads the same registry: nothing to relay.
  readonly discoveryChanged = (): void => {}
  readonly healthChanged = (): void => {}

  readonly setChanged = (removed: readonly Instance[]): void => { this.#data.retireDeparted(removed) }

  readonly isServing = (): boolean => true
}
