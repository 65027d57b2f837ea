/**
 * How the primary and a worker talk: `send` a message, `onMessage` for what
 * arrives, `onClose` when the other side is gone. Two transports: node:cluster
 * IPC (channelToWorker in the primary, channelToPrimary in a worker) and an
 * in-memory pair (inProcessChannel) that joins both sides in one process.
 * Whatever the transport, every message is checked against its schema on
 * receipt (message-check.ts): an invalid one is logged (sparingly) and
 * dropped, and messages not ours (prom-client's cluster messages share the
 * IPC channel) are ignored without a word.
 */
import type { Worker } from 'node:cluster'
import type { Static } from '@sinclair/typebox'
import { InvalidMessage, InvalidMessageLog, toPrimaryCheck, toWorkerCheck, type MessageCheck, type MessageSchema } from './message-check.js'
import type { Frozen, ToPrimary, ToPrimarySchema, ToWorker, ToWorkerSchema } from './protocol.js'

export type Unsubscribe = () => void

export interface Channel<Out, In> {
  /** Dropped without a word once the channel is closed: the close notice has told the sender already. */
  send: (message: Out) => void
  onMessage: (handler: (message: In) => void) => Unsubscribe
  /** Once, when the other side is gone; at once when it already is. */
  onClose: (handler: () => void) => Unsubscribe
}

/** The primary's end of its channel to one worker. */
export type PrimaryEnd = Channel<ToWorker, ToPrimary>
/** A worker's end of its channel to the primary. */
export type WorkerEnd = Channel<ToPrimary, ToWorker>

/** Where invalid messages are told (a pino logger fits). */
export type ProtocolLog = { readonly error: (fields: object, message: string) => void }

/** What both transports share: handlers, the check on receipt, the close notice. */
export abstract class Endpoint<Out, S extends MessageSchema> implements Channel<Out, Frozen<Static<S>>> {
  readonly #check: MessageCheck<S>
  readonly #log: ProtocolLog
  readonly #invalid = new InvalidMessageLog()
  #explained: Promise<void> = Promise.resolve()
  readonly #onMessage = new Set<(message: Frozen<Static<S>>) => void>()
  readonly #onClose = new Set<() => void>()
  #isClosed = false

  constructor (check: MessageCheck<S>, log: ProtocolLog) {
    this.#check = check
    this.#log = log
  }

  abstract send (message: Out): void

  get isClosed (): boolean { return this.#isClosed }

  onMessage (handler: (message: Frozen<Static<S>>) => void): Unsubscribe {
    this.#onMessage.add(handler)
    return () => { this.#onMessage.delete(handler) }
  }

  onClose (handler: () => void): Unsubscribe {
    if (this.#isClosed) {
      handler()
      return () => {}
    }
    this.#onClose.add(handler)
    return () => { this.#onClose.delete(handler) }
  }

  /** Handlers subscribed now (what a reload must not leave behind). */
  listenerCounts (): { readonly message: number, readonly close: number } {
    return { message: this.#onMessage.size, close: this.#onClose.size }
  }

  /** Something arrived from the other side (the transport calls this): checked, then handed to every handler. */
  receive (raw: unknown): void {
    if (this.#isClosed) return
    const message = this.#check.read(raw)
    if (message === undefined) return
    if (message instanceof InvalidMessage) {
      const count = this.#invalid.note(message)
      if (count !== undefined) {
        // Dropped now; explained a moment later (the explanation loads TypeBox, message-check.ts), in the order received.
        const { type } = message
        this.#explained = this.#explained.then(async () => {
          this.#log.error({ type, reason: await message.reason(), invalidSoFar: count }, 'cluster message dropped: it does not match its schema')
        })
      }
      return
    }
    // A handler that unsubscribes itself meanwhile is fine: Set iteration allows it.
    for (const handler of this.#onMessage) handler(message)
  }

  /** The other side is gone (the transport calls this): the close notice, once; nothing is kept. */
  close (): void {
    if (this.#isClosed) return
    this.#isClosed = true
    const handlers = [...this.#onClose]
    this.#onClose.clear()
    this.#onMessage.clear()
    for (const handler of handlers) handler()
  }
}

/** The primary's channel to one worker, over node:cluster IPC. */
export function channelToWorker (worker: Worker, log: ProtocolLog): Endpoint<ToWorker, ToPrimarySchema> {
  return new ClusterWorkerEnd(worker, log)
}

class ClusterWorkerEnd extends Endpoint<ToWorker, ToPrimarySchema> {
  readonly #worker: Worker

  constructor (worker: Worker, log: ProtocolLog) {
    super(toPrimaryCheck, log)
    this.#worker = worker
    worker.on('message', (raw: unknown) => { this.receive(raw) })
    // The IPC channel closes when the worker disconnects or dies, whichever is first.
    worker.once('disconnect', () => { this.close() })
    worker.once('exit', () => { this.close() })
  }

  send (message: ToWorker): void {
    if (this.isClosed || !this.#worker.isConnected()) return
    // A worker killed a moment ago is still connected until its exit is seen: the write fails
    // (EPIPE). Without a callback Node emits that as an 'error' event on the worker, which
    // nothing listens to, and the primary dies of it. Dropped instead: the close notice follows.
    this.#worker.send(message, dropSendError)
  }
}

/** A worker's channel to the primary, over node:cluster IPC (`process`). */
export function channelToPrimary (log: ProtocolLog): Endpoint<ToPrimary, ToWorkerSchema> {
  return new ProcessEnd(log)
}

class ProcessEnd extends Endpoint<ToPrimary, ToWorkerSchema> {
  constructor (log: ProtocolLog) {
    super(toWorkerCheck, log)
    process.on('message', (raw: unknown) => { this.receive(raw) })
    process.once('disconnect', () => { this.close() })
  }

  send (message: ToPrimary): void {
    // As the primary's end: a primary gone a moment ago fails the write; the close notice follows.
    if (!this.isClosed && process.connected) process.send?.(message, undefined, undefined, dropSendError)
  }
}

/** A send that failed because the other side is gone: nothing to do, its close notice is on its way. */
function dropSendError (): void {}

/**
 * Both ends in one process, joined in memory. Delivery is synchronous: a
 * message is checked and handled before `send` returns, as a direct call
 * would be. That keeps one process's timing what it is without a channel: a
 * passive failure report is judged, and the ejection it decides is applied,
 * before the same request's retry picks its next instance. The price is
 * re-entrancy: a handler may be called from inside the other side's `send`,
 * so it must not assume the sender's state is settled, and a handler that
 * throws throws into that `send`, as a direct call would. Messages are not
 * copied (both sides treat them as read-only facts); they are still checked,
 * so the in-process path is held to the same protocol as IPC.
 */
export function inProcessChannel (log: ProtocolLog): { readonly primary: InProcessEnd<ToWorker, ToPrimarySchema>, readonly worker: InProcessEnd<ToPrimary, ToWorkerSchema>, readonly close: () => void } {
  const primary = new InProcessEnd<ToWorker, ToPrimarySchema>(toPrimaryCheck, log)
  const worker = new InProcessEnd<ToPrimary, ToWorkerSchema>(toWorkerCheck, log)
  primary.peer = worker
  worker.peer = primary
  return { primary, worker, close: () => { primary.close(); worker.close() } }
}

export class InProcessEnd<Out, S extends MessageSchema> extends Endpoint<Out, S> {
  peer: { receive: (raw: unknown) => void, close: () => void, readonly isClosed: boolean } | undefined

  send (message: Out): void {
    if (this.isClosed || this.peer === undefined || this.peer.isClosed) return
    this.peer.receive(message)
  }

  /** Either side going is the end of both. */
  override close (): void {
    if (this.isClosed) return
    super.close()
    this.peer?.close()
  }
}
