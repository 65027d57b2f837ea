import type { Clock, Timer } from './clock.js'

export type LineBatchOptions = {
  /** A batch this long is written at once (bytes of UTF-8). */
  readonly maxBytes?: number
  /** The longest a line waits for company before it is written. */
  readonly maxDelayMs?: number
}

/**
 * Log lines gathered for a few milliseconds and handed to the destination as
 * one chunk. Measured on Node 20 with sonic-boom 4 (docs/BENCHMARKS.md,
 * 2026-11-30): sonic-boom's `write` measures the byte length of everything
 * still pending on each call, which flattens and scans that buffer per line
 * (~15 µs a request with one write per line), and each asynchronous write
 * has a fixed cost of its own: one write per 20 ms or 64 KiB cost ~3 µs a
 * request less than one per event-loop turn, larger batches more.
 *
 * Each line is copied into a byte buffer as it comes, not appended to a
 * string: a line is built of many small strings, and a batch held as one
 * string is a tree of hundreds of those pieces that lives through young
 * collections and is flattened, cold, when sonic-boom measures it (1.3 µs a
 * request in a profile of 2026-12-06, docs/BENCHMARKS.md). Copied at once,
 * the pieces die young and the flush hands over one flat string.
 *
 * A process killed with SIGKILL loses at most the lines of the last 20 ms
 * (plus what sonic-boom held); a normal exit flushes.
 */
export class LineBatch {
  readonly #write: (chunk: string) => void
  readonly #clock: Clock
  readonly #maxBytes: number
  readonly #maxDelayMs: number
  /** maxBytes plus room for the line that crosses it; a line that cannot fit is written alone. */
  readonly #bytes: Buffer
  #used = 0
  #timer: Timer | undefined

  constructor (write: (chunk: string) => void, clock: Clock, options: LineBatchOptions = {}) {
    this.#write = write
    this.#clock = clock
    this.#maxBytes = options.maxBytes ?? 64 * 1024
    this.#maxDelayMs = options.maxDelayMs ?? 20
    this.#bytes = Buffer.allocUnsafeSlow(this.#maxBytes + ROOM_BYTES)
  }

  push (line: string): void {
    // UTF-8 takes at most 3 bytes for each UTF-16 unit: a line this short surely fits, with no length measured.
    if (this.#used + line.length * 3 > this.#bytes.length) {
      this.flush()
      if (line.length * 3 > this.#bytes.length) {
        this.#write(line)
        return
      }
    }
    this.#used += this.#bytes.write(line, this.#used, 'utf8')
    if (this.#used >= this.#maxBytes) {
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
    if (this.#used === 0) return
    const chunk = this.#bytes.toString('utf8', 0, this.#used)
    this.#used = 0
    this.#write(chunk)
  }

  readonly #onDelay = (): void => {
    this.#timer = undefined
    this.flush()
  }
}

/** Room past maxBytes: any line of up to 16 KiB / 3 characters joins the batch that is nearly full instead of flushing it early. */
const ROOM_BYTES = 16 * 1024
