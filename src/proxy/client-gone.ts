/**
 * "The client has gone": fired once, when a request's connection closes
 * before its answer was written. Every layer the request reached listens and
 * lets go. A plain list of callbacks rather than an AbortController: one is
 * made per request, and Node's EventTarget costs several microseconds there.
 */
export class ClientGone {
  #isGone = false
  #listeners: Array<() => void> | undefined

  get isGone (): boolean { return this.#isGone }

  /** Call `listener` once when the client goes (at once if it has gone). */
  on (listener: () => void): void {
    if (this.#isGone) {
      listener()
      return
    }
    (this.#listeners ??= []).push(listener)
  }

  off (listener: () => void): void {
    const listeners = this.#listeners
    if (listeners === undefined) return
    const index = listeners.indexOf(listener)
    if (index >= 0) listeners.splice(index, 1)
  }

  fire (): void {
    if (this.#isGone) return
    this.#isGone = true
    const listeners = this.#listeners
    this.#listeners = undefined
    for (const listener of listeners ?? []) listener()
  }
}
