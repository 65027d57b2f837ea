import type { Clock, Timer } from '../util/clock.js'

/**
 * One question to several workers at once, answered under its id: resolves
 * when every worker asked has answered, or after timeoutMs with what came
 * (`isComplete` false). A worker's second answer, or one to a question that
 * has ended, is ignored.
 */
export class Gathering<T> {
  readonly #clock: Clock
  readonly #timeoutMs: number
  readonly #asked = new Map<number, { readonly waiting: Set<number>, readonly answers: T[], readonly done: () => void }>()
  #nextId = 1

  constructor (clock: Clock, timeoutMs: number) {
    this.#clock = clock
    this.#timeoutMs = timeoutMs
  }

  /** `send` sends the question with its id; `workers` are the ids of those that must answer. */
  async ask (workers: readonly number[], send: (id: number) => void): Promise<{ readonly answers: T[], readonly isComplete: boolean }> {
    const id = this.#nextId++
    const asked = { waiting: new Set(workers), answers: [] as T[], done: () => {} }
    let timer: Timer | undefined
    try {
      await new Promise<void>((resolve) => {
        asked.done = resolve
        this.#asked.set(id, asked)
        timer = this.#clock.setTimeout(resolve, this.#timeoutMs)
        send(id)
        if (asked.waiting.size === 0) resolve()
      })
    } finally {
      timer?.cancel()
      this.#asked.delete(id)
    }
    return { answers: asked.answers, isComplete: asked.waiting.size === 0 }
  }

  answer (id: number, worker: number, value: T): void {
    const asked = this.#asked.get(id)
    if (asked === undefined || !asked.waiting.delete(worker)) return
    asked.answers.push(value)
    if (asked.waiting.size === 0) asked.done()
  }
}
