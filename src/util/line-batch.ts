import type { Clock, Timer } from './clock.js'

export type LineBatchOptions = {
  /** A batch this long is written at once (characters). */
  readonly maxChars?: number
  /** The longest a line waits for company before it is written. */
  readonly maxDelayMs?: number
}

/**
 * Log lines gathered for a few milliseconds and handed to the destination as
 * one chunk. Measured on Node 20 with sonic-boom 4 (docs/BENCHMARKS.md,
 * 2026-11-30): sonic-boom's `write` measures the byte length of everything
 * still pending on each call, which flattens and scans that buffer per line
 * (~15 µs a request with one write per line), and each asynchronous write
 * has a fixed cost of its own: one write per 20 ms or 64 K characters cost
 * ~3 µs a request less than one per event-loop turn, larger batches more.
 * A process killed with SIGKILL loses at most the lines of the last 20 ms
 * (plus what sonic-boom held); a normal exit flushes.
 */
export class LineBatch {
  readonly #write: (chunk: string) => void
  readonly #clock: Clock
  readonly #maxChars: number
  readonly #maxDelayMs: number
  #pending = ''
  #timer: Timer | undefined

  constructor (write: (chunk: string) => void, clock: Clock, options: LineBatchOptions = {}) {
    this.#write = write
    this.#clock = clock
    this.#maxChars = options.maxChars ?? 64 * 1024
    this.#maxDelayMs = options.maxDelayMs ?? 20
  }

  push (line: string): void {
    this.#pending += line
    if (this.#pending.length >= this.#maxChars) {
      this.flush()
      return
    }
    // An idle process writes its first line within maxDelayMs; the timer never keeps it alive.
    this.#timer ??= this.#clock.setTimeout(this.#onDelay, this.#maxDelayMs, { unref: true })
  }

  /** Everything pushed so far goes to the destination now (also at exit, before the destination's own flush). */
  flush (): void {
    this.#timer?.cancel()
    this.#timer = undefined
    if (this.#pending === '') return
    const chunk = this.#pending
    this.#pending = ''
    this.#write(chunk)
  }

  readonly #onDelay = (): void => {
    this.#timer = undefined
    this.flush()
  }
}
