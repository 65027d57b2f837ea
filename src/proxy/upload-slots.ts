/**
 * How many of an instance's connections streamed request bodies may hold at
 * once (half of maxConnectionsPerInstance, at least one). A streamed body
 * holds its connection for as long as the client takes to send it, so
 * without a bound, slow uploads take every connection and ordinary requests
 * to the backend wait behind them (504). Uploads past the bound wait here,
 * in arrival order, before they ask undici for a connection; the other half
 * of the connections stays for everything else. Per process, like the pools.
 */
export class UploadSlots {
  readonly #byOrigin = new Map<string, { held: number, readonly waiting: Array<() => void> }>()

  /**
   * A slot at `origin` under `cap`: true when taken now; otherwise `granted`
   * is called when one frees, and `withdraw` must be called if the upload
   * stops waiting first.
   */
  take (origin: string, cap: number, granted: () => void): boolean {
    let slots = this.#byOrigin.get(origin)
    if (slots === undefined) {
      slots = { held: 0, waiting: [] }
      this.#byOrigin.set(origin, slots)
    }
    if (slots.held < cap && slots.waiting.length === 0) {
      slots.held++
      return true
    }
    slots.waiting.push(granted)
    return false
  }

  /** A waiting upload that stopped waiting (its client left, its time ran out). */
  withdraw (origin: string, granted: () => void): void {
    const slots = this.#byOrigin.get(origin)
    const index = slots?.waiting.indexOf(granted) ?? -1
    if (index >= 0) slots?.waiting.splice(index, 1)
    if (slots !== undefined && slots.held === 0 && slots.waiting.length === 0) this.#byOrigin.delete(origin)
  }

  /** A slot is free again: the longest waiting upload gets it. */
  give (origin: string): void {
    const slots = this.#byOrigin.get(origin)
    if (slots === undefined) return
    const next = slots.waiting.shift()
    if (next !== undefined) {
      next()
      return
    }
    slots.held--
    if (slots.held <= 0) this.#byOrigin.delete(origin)
  }

  /** Uploads waiting for a slot now (for tests and /metrics). */
  get waiting (): number {
    let total = 0
    for (const slots of this.#byOrigin.values()) total += slots.waiting.length
    return total
  }
}
