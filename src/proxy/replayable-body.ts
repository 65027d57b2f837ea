import { Readable } from 'node:stream'

/**
 * Hands a request body to one attempt at a time without giving the source
 * away: each attempt gets a fresh stream that reads from the source only when
 * undici pulls, with backpressure. A connect failure destroys the attempt's
 * stream, not the source, so the next instance gets the body whole (a plain
 * pipe would lose it: see ../shared/PACKAGES.md). Once a byte has been
 * pulled, the body can no longer be replayed.
 */
export class ReplayableBody {
  readonly #source: Readable
  #bytesPulled = 0
  #hasSourceFailed = false
  #current: Readable | undefined

  constructor (source: Readable) { this.#source = source }

  get canReplay (): boolean { return this.#bytesPulled === 0 }

  /** The client's side of the body broke (it went away mid-upload): not an instance's fault. */
  get hasSourceFailed (): boolean { return this.#hasSourceFailed }

  /** A stream for the next attempt; the previous attempt's stream is let go. */
  forAttempt (): Readable {
    this.#current?.destroy()
    const source = this.#source
    let wantsData = false
    let isAttached = false
    const pump = (): void => {
      while (wantsData) {
        const chunk = source.read() as Buffer | null
        if (chunk === null) {
          if (source.readableEnded) end()
          return
        }
        this.#bytesPulled += chunk.length
        wantsData = attempt.push(chunk)
      }
    }
    const end = (): void => { detach(); attempt.push(null) }
    const fail = (error: Error): void => {
      this.#hasSourceFailed = true
      detach()
      attempt.destroy(error)
    }
    const detach = (): void => {
      source.removeListener('readable', pump)
      source.removeListener('end', end)
      source.removeListener('error', fail)
    }
    const attempt: Readable = new Readable({
      read: () => {
        wantsData = true
        if (!isAttached) {
          // Listen only once undici asks: until then nothing leaves the source.
          isAttached = true
          if (source.readableEnded) return end()
          source.on('readable', pump)
          source.once('end', end)
          source.once('error', fail)
        }
        pump()
      },
      destroy: (error, callback) => {
        detach()
        callback(error)
      }
    })
    this.#current = attempt
    return attempt
  }
}
