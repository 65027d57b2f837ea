import { createRequire } from 'node:module'
import { Worker } from 'node:worker_threads'

/**
 * bcrypt checks on threads of their own, with bcryptjs: a check at cost 10
 * is ~50–100 ms of CPU, which on the event loop would stall every request
 * of the process. bcryptjs is plain JavaScript (no native addon, no install
 * script for a consumer to approve) and compares in constant time. The
 * threads start with the first check and do not keep the process alive.
 */
export class BcryptThreads {
  readonly #size: number
  readonly #threads: Array<{ worker: Worker, pending: Map<number, (isMatch: boolean) => void> }> = []
  #nextId = 0

  constructor (size: number) { this.#size = size }

  /** True when `password` matches the bcrypt `hash` ($2a$/$2b$/$2y$); false for anything else, a broken hash included. */
  async compare (password: string, hash: string): Promise<boolean> {
    const thread = this.#leastBusy()
    const id = this.#nextId++
    return await new Promise<boolean>((resolve) => {
      thread.pending.set(id, resolve)
      thread.worker.postMessage({ id, password, hash })
    })
  }

  async close (): Promise<void> {
    const threads = this.#threads.splice(0)
    await Promise.all(threads.map(async ({ worker }) => await worker.terminate()))
  }

  #leastBusy (): { worker: Worker, pending: Map<number, (isMatch: boolean) => void> } {
    if (this.#threads.length < this.#size) return this.#start()
    return this.#threads.reduce((best, thread) => thread.pending.size < best.pending.size ? thread : best)
  }

  #start (): { worker: Worker, pending: Map<number, (isMatch: boolean) => void> } {
    const worker = new Worker(threadCode(createRequire(import.meta.url).resolve('bcryptjs')), { eval: true })
    worker.unref()
    const thread = { worker, pending: new Map<number, (isMatch: boolean) => void>() }
    worker.on('message', ({ id, isMatch }: { id: number, isMatch: boolean }) => {
      thread.pending.get(id)?.(isMatch)
      thread.pending.delete(id)
    })
    // A thread that dies answers no to what it held, and the next check starts another.
    const fail = (): void => {
      const index = this.#threads.indexOf(thread)
      if (index >= 0) this.#threads.splice(index, 1)
      for (const resolve of thread.pending.values()) resolve(false)
      thread.pending.clear()
    }
    worker.on('error', fail)
    worker.on('exit', fail)
    this.#threads.push(thread)
    return thread
  }
}

/** The thread's program: bcryptjs by its resolved path (an eval'd thread resolves from no file of ours). */
function threadCode (bcryptjs: string): string {
  return `const { parentPort } = require('node:worker_threads')
const bcrypt = require(${JSON.stringify(bcryptjs)})
parentPort.on('message', ({ id, password, hash }) => {
  let isMatch = false
  try { isMatch = bcrypt.compareSync(password, hash) } catch {}
  parentPort.postMessage({ id, isMatch })
})`
}
