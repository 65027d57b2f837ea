/**
 * Log lines gathered over one turn of the event loop and handed to the
 * destination as one chunk. Measured on Node 20 with sonic-boom 4
 * (docs/BENCHMARKS.md, 2026-11-30): sonic-boom's `write` measures the byte
 * length of everything still pending on each call, which flattens and scans
 * that buffer per line; one access line per request cost ~15 µs that way.
 * One write per turn costs the same as one line.
 */
export class LineBatch {
  readonly #write: (chunk: string) => void
  readonly #maxChars: number
  #pending = ''
  #isScheduled = false

  /** `maxChars`: a batch this long is written at once, so one busy turn never holds more. */
  constructor (write: (chunk: string) => void, maxChars = 64 * 1024) {
    this.#write = write
    this.#maxChars = maxChars
  }

  push (line: string): void {
    this.#pending += line
    if (this.#pending.length >= this.#maxChars) {
      this.flush()
      return
    }
    if (this.#isScheduled) return
    this.#isScheduled = true
    setImmediate(this.#onTurnEnd)
  }

  /** Everything pushed so far goes to the destination now (also at exit, before the destination's own flush). */
  flush (): void {
    if (this.#pending === '') return
    const chunk = this.#pending
    this.#pending = ''
    this.#write(chunk)
  }

  readonly #onTurnEnd = (): void => {
    this.#isScheduled = false
    this.flush()
  }
}
