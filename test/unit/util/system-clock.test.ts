/**
 * systemClock's timers past Node's 32-bit limit (about 24.8 days): Node would
 * fire them after 1 ms, again and again (a tls.sessionTickets.rotateEvery of
 * 30d rotated the ticket key every millisecond). Node's own setTimeout is
 * replaced by a recorder here, so the test walks 30 days without waiting.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { MAX_TIMER_MS, systemClock } from '../../../src/util/clock.js'

type Armed = { readonly callback: () => void, readonly delayMs: number, isCleared: boolean, isUnref: boolean }

function recordTimers (run: (armed: Armed[]) => void): void {
  const realSet = globalThis.setTimeout
  const realClear = globalThis.clearTimeout
  const armed: Armed[] = []
  const byHandle = new Map<object, Armed>()
  globalThis.setTimeout = ((callback: () => void, delayMs: number) => {
    const timer: Armed = { callback, delayMs, isCleared: false, isUnref: false }
    armed.push(timer)
    const handle = { unref: () => { timer.isUnref = true } }
    byHandle.set(handle, timer)
    return handle
  }) as unknown as typeof setTimeout
  globalThis.clearTimeout = ((handle: object) => {
    const timer = byHandle.get(handle)
    if (timer !== undefined) timer.isCleared = true
  }) as typeof clearTimeout
  try {
    run(armed)
  } finally {
    globalThis.setTimeout = realSet
    globalThis.clearTimeout = realClear
  }
}

const DAY_MS = 86_400_000

test('a 30-day timer is armed in steps Node honours and fires once, after 30 days; unref holds for every step', () => {
  recordTimers((armed) => {
    let fired = 0
    systemClock.setTimeout(() => { fired++ }, 30 * DAY_MS, { unref: true })
    let waitedMs = 0
    while (fired === 0 && armed.length < 10) {
      const step = armed.at(-1) as Armed
      assert.ok(step.delayMs <= MAX_TIMER_MS, `${step.delayMs} ms fits in 32 bits`)
      assert.equal(step.isUnref, true)
      waitedMs += step.delayMs
      step.callback()
    }
    assert.equal(fired, 1)
    assert.equal(waitedMs, 30 * DAY_MS)
    assert.equal(armed.length, 2)
  })
})

test('a delay within the limit is one timer; cancel() stops a long one between steps', () => {
  recordTimers((armed) => {
    systemClock.setTimeout(() => {}, 12 * 3_600_000)
    assert.deepEqual(armed.map((timer) => timer.delayMs), [12 * 3_600_000])
    let fired = false
    const timer = systemClock.setTimeout(() => { fired = true }, 60 * DAY_MS)
    ;(armed.at(-1) as Armed).callback()
    timer.cancel()
    assert.equal((armed.at(-1) as Armed).isCleared, true, 'the step armed now is the one cancelled')
    assert.equal(fired, false)
  })
})
