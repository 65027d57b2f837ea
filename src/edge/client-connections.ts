import type { Socket } from 'node:net'
import { descriptorLimit } from '../util/descriptor-limit.js'

/** Descriptors kept out of the client budget whatever the limit: logs, DNS sockets, the admin listener, IPC. */
const RESERVED_DESCRIPTORS = 64

/**
 * client.maxConnections when unset: half of what is left after the reserve.
 * Each proxied request holds a client and an instance connection, so the
 * other half stays for instance connects (HAProxy derives maxconn from
 * `ulimit -n` the same way).
 */
export function defaultMaxConnections (limit = processLimit()): number {
  return Math.max(1, Math.floor((limit - RESERVED_DESCRIPTORS) / 2))
}

let readLimit: number | undefined

/** The process's descriptor limit, read once (a file read per connection showed in the handshake rate). */
function processLimit (): number {
  readLimit ??= descriptorLimit()
  return readLimit
}

export type ConnectionLimits = { readonly maxConnections: number, readonly maxConnectionsPerIp: number | undefined }

export type RefusalReason = 'max_connections' | 'max_connections_per_ip'

export type Listener = 'http' | 'https'

/**
 * Every client connection this process holds on its public listeners (http
 * and https together), admitted or closed at accept: past the process cap or
 * the per-address cap, a new connection is destroyed at once, before any
 * parser or TLS state is made for it. Connections already open are never
 * touched, so a flood of held connections leaves requests on open connections
 * working and descriptors for instance connects. One owner for the counts;
 * the limits are read per connection, so a reload changes them at once.
 */
export class ClientConnections {
  readonly #limits: () => ConnectionLimits
  readonly #onRefused: (listener: Listener, reason: RefusalReason) => void
  readonly #byAddress = new Map<string, number>()
  #open = 0

  constructor (limits: () => ConnectionLimits, onRefused: (listener: Listener, reason: RefusalReason) => void = () => {}) {
    this.#limits = limits
    this.#onRefused = onRefused
  }

  /** Client connections open now. */
  get open (): number { return this.#open }

  /** A connection was accepted: counted until it closes (true), or destroyed now (false). */
  admit (socket: Socket, listener: Listener): boolean {
    const { maxConnections, maxConnectionsPerIp } = this.#limits()
    const address = socket.remoteAddress ?? ''
    const fromAddress = this.#byAddress.get(address) ?? 0
    const reason: RefusalReason | undefined = this.#open >= maxConnections
      ? 'max_connections'
      : maxConnectionsPerIp !== undefined && fromAddress >= maxConnectionsPerIp ? 'max_connections_per_ip' : undefined
    if (reason !== undefined) {
      socket.on('error', () => {})
      // A reset, not a FIN: the client learns at once, and no TIME_WAIT is left here.
      socket.resetAndDestroy()
      this.#onRefused(listener, reason)
      return false
    }
    this.#open++
    this.#byAddress.set(address, fromAddress + 1)
    socket.once('close', () => {
      this.#open--
      const left = (this.#byAddress.get(address) ?? 1) - 1
      if (left === 0) this.#byAddress.delete(address)
      else this.#byAddress.set(address, left)
    })
    return true
  }
}
