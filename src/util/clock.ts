import type { Milliseconds } from './duration.js'

/** A scheduled callback; cancel() is safe to call any number of times. */
export interface Timer {
  cancel (): void
}

export type TimerOptions = {
  /** Do not keep the process alive for this timer (Node's unref()). */
  readonly unref?: boolean
}

/**
 * Time as srvgate's modules see it: the monotonic clock, the wall clock, and
 * timers. Production uses systemClock; tests use ManualClock and walk a
 * timeline without sleeping (its timers fire as time is advanced). The
 * architecture test fails on a direct setTimeout, setInterval, Date.now,
 * new Date or performance.now outside util/.
 */
export interface Clock {
  /** Monotonic milliseconds: for durations and deadlines. */
  now (): Milliseconds
  /** Unix epoch milliseconds: for what people read (timestamps in logs and state). */
  wallNow (): number
  setTimeout (callback: () => void, delayMs: number, options?: TimerOptions): Timer
}

/**
 * The longest delay Node's setTimeout honours (a signed 32-bit count of ms,
 * about 24.8 days): a longer one is set to 1 ms with a TimeoutOverflowWarning,
 * so a timer of 30 days would fire at once, and again, and again.
 */
export const MAX_TIMER_MS = 2 ** 31 - 1

export const systemClock: Clock = {
  now: () => performance.now() as Milliseconds,
  wallNow: () => Date.now(),
  setTimeout: (callback, delayMs, options) => {
    let handle: ReturnType<typeof setTimeout>
    // A delay past Node's limit is waited out in steps of at most the limit.
    const arm = (remainingMs: number): void => {
      handle = remainingMs > MAX_TIMER_MS ? setTimeout(() => { arm(remainingMs - MAX_TIMER_MS) }, MAX_TIMER_MS) : setTimeout(callback, remainingMs)
      if (options?.unref === true) handle.unref()
    }
    arm(delayMs)
    return { cancel: () => { clearTimeout(handle) } }
  }
}

/** An ISO 8601 UTC timestamp of the clock's wall time. */
export function isoNow (clock: Clock): string {
  const now = clock.wallNow()
  // Every log line asks: lines of the same millisecond share one string (one Date and toISOString per ms).
  if (now !== lastIso.at) {
    lastIso.at = now
    lastIso.text = new Date(now).toISOString()
  }
  return lastIso.text
}

const lastIso = { at: Number.NaN, text: '' }

/** A wall-clock time (epoch ms) as a Date, for formatting. */
export function dateAt (epochMs: number): Date {
  return new Date(epochMs)
}

/** Resolves after `ms` on `clock` (a timeline step on a ManualClock). */
export async function sleep (clock: Clock, ms: number): Promise<void> {
  await new Promise<void>((resolve) => { clock.setTimeout(resolve, ms) })
}

type Scheduled = { readonly dueMs: number, readonly order: number, readonly callback: () => void, isCancelled: boolean }

/** Epoch milliseconds a ManualClock's wall time starts from (2026-01-01T00:00:00Z). */
const MANUAL_EPOCH_MS = 1_767_225_600_000

/** A clock that moves only when told to; its timers fire, in due order, as it moves. */
export class ManualClock implements Clock {
  #now: number
  readonly #start: number
  #order = 0
  #timers: Scheduled[] = []

  constructor (start = 1_000_000) {
    this.#now = start
    this.#start = start
  }

  now (): Milliseconds { return this.#now as Milliseconds }
  wallNow (): number { return MANUAL_EPOCH_MS + this.#now - this.#start }

  setTimeout (callback: () => void, delayMs: number): Timer {
    const timer: Scheduled = { dueMs: this.#now + Math.max(0, delayMs), order: this.#order++, callback, isCancelled: false }
    this.#timers.push(timer)
    return { cancel: () => { timer.isCancelled = true } }
  }

  /** Timers not yet fired or cancelled. */
  get pendingTimers (): number { return this.#timers.filter((timer) => !timer.isCancelled).length }

  /** Move time forward, firing every timer that comes due on the way (also ones those timers set). */
  advance (byMs: number): void {
    const target = this.#now + byMs
    for (let next = this.#nextDue(target); next !== undefined; next = this.#nextDue(target)) {
      this.#now = Math.max(this.#now, next.dueMs)
      next.callback()
    }
    this.#now = target
  }

  /**
   * Like advance, letting promises settle after every timer that fires: a
   * timer whose callback starts async work (a watcher's DNS read) finishes it
   * before time moves on. Steps of `stepMs` at most.
   */
  async advanceAndSettle (byMs: number, stepMs = 10): Promise<void> {
    const target = this.#now + byMs
    await settle()
    while (this.#now < target) {
      const next = this.#nextDue(Math.min(target, this.#now + stepMs))
      if (next !== undefined) {
        this.#now = Math.max(this.#now, next.dueMs)
        next.callback()
      } else {
        this.#now = Math.min(target, this.#now + stepMs)
      }
      await settle()
    }
  }

  #nextDue (untilMs: number): Scheduled | undefined {
    this.#timers = this.#timers.filter((timer) => !timer.isCancelled)
    let best: Scheduled | undefined
    for (const timer of this.#timers) {
      if (timer.dueMs > untilMs) continue
      if (best === undefined || timer.dueMs < best.dueMs || (timer.dueMs === best.dueMs && timer.order < best.order)) best = timer
    }
    if (best !== undefined) best.isCancelled = true
    return best
  }
}

/** Let pending promise callbacks and I/O callbacks run (a few turns of the event loop). */
async function settle (): Promise<void> {
  for (let round = 0; round < 5; round++) await new Promise((resolve) => setImmediate(resolve))
}

/** `work`'s value, or 'timeout' after `ms` on `clock` (the timer is cancelled either way; `unref`: it keeps no process alive). */
export async function within<T> (clock: Clock, work: Promise<T>, ms: number, options: { readonly unref?: boolean } = {}): Promise<T | 'timeout'> {
  let timer: Timer | undefined
  const deadline = new Promise<'timeout'>((resolve) => { timer = clock.setTimeout(() => { resolve('timeout') }, ms, { unref: options.unref === true }) })
  try {
    return await Promise.race([work, deadline])
  } finally {
    timer?.cancel()
  }
}
