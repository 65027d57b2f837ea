import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { watchConfigFile } from '../../../src/config/watch.js'
import { ManualClock } from '../../../src/util/clock.js'

/**
 * The debounce runs on a ManualClock; what is waited for here is real I/O
 * (a file-system event reaching the watcher, a file being read), bounded in
 * turns and time, never a timer of the code under test.
 */
async function untilIo (condition: () => boolean, withinMs = 3000): Promise<void> {
  const start = performance.now()
  while (!condition()) {
    if (performance.now() - start > withinMs) throw new Error(`not within ${withinMs} ms`)
    await new Promise((resolve) => setImmediate(resolve))
  }
}

/** The reads the watcher has begun are done: ours, queued after them on the same pool, are. */
async function readsDone (path: string): Promise<void> {
  for (let round = 0; round < 3; round++) {
    await readFile(path).catch(() => undefined)
    for (let turn = 0; turn < 10; turn++) await new Promise((resolve) => setImmediate(resolve))
  }
}

/** A write's file-system events have all arrived (one write may raise several): none for a few turns. */
async function eventsQuiet (): Promise<void> {
  await new Promise((resolve) => { setTimeout(resolve, 30) })
}

test('--watch: a file changed between loading and watching is reloaded; the text that runs is not', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'srvgate-watch-'))
  t.after(() => { rmSync(dir, { recursive: true, force: true }) })
  const path = join(dir, 'gateway.yaml')
  writeFileSync(path, 'v: 2\n')
  let changes = 0
  const loaded = new ManualClock()
  const changed = watchConfigFile(path, () => { changes++ }, { runningText: 'v: 1\n', debounceMs: 250, clock: loaded })
  t.after(() => { changed.stop() })
  assert.equal(changes, 0)
  loaded.advance(0)
  await untilIo(() => changes === 1)
  assert.equal(changes, 1, 'the file differs from what runs: one reload, without any event')

  let unchanged = 0
  const clock = new ManualClock()
  const same = watchConfigFile(path, () => { unchanged++ }, { runningText: 'v: 2\n', debounceMs: 250, clock })
  t.after(() => { same.stop() })
  clock.advance(0)
  await readsDone(path)
  assert.equal(unchanged, 0, 'the file is what runs: no reload')
  // A write right after the watch starts is seen, compared with what runs (not with a late first read).
  writeFileSync(path, 'v: 3\n')
  await untilIo(() => clock.pendingTimers === 1)
  await eventsQuiet()
  clock.advance(250)
  await untilIo(() => unchanged === 1)
  await readsDone(path)
  assert.equal(unchanged, 1)
})

test('--watch: a burst of writes is one reload, debounceMs after the last event; a rewrite of the same bytes and another file are none', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'srvgate-watch-'))
  t.after(() => { rmSync(dir, { recursive: true, force: true }) })
  const path = join(dir, 'gateway.yaml')
  writeFileSync(path, 'v: 1\n')
  let changes = 0
  const clock = new ManualClock()
  const watcher = watchConfigFile(path, () => { changes++ }, { runningText: 'v: 1\n', debounceMs: 250, clock })
  t.after(() => { watcher.stop() })
  clock.advance(0)
  await readsDone(path)
  assert.equal(changes, 0)

  writeFileSync(path, 'v: 2\n')
  await untilIo(() => clock.pendingTimers === 1)
  await eventsQuiet()
  clock.advance(200)
  writeFileSync(path, 'v: 3\n')
  await eventsQuiet()
  clock.advance(249)
  assert.equal(clock.pendingTimers, 1, '449 ms after the first write, 249 after the last: still waiting')
  await readsDone(path)
  assert.equal(changes, 0)
  clock.advance(1)
  assert.equal(clock.pendingTimers, 0)
  await untilIo(() => changes === 1)

  // The same bytes written again: the check runs, nothing is reported.
  writeFileSync(path, 'v: 3\n')
  await untilIo(() => clock.pendingTimers === 1)
  await eventsQuiet()
  clock.advance(250)
  await readsDone(path)
  assert.equal(changes, 1)

  // Another file in the folder arms nothing; an editor's replace by rename is seen.
  writeFileSync(join(dir, 'other.yaml'), 'x: 1\n')
  await eventsQuiet()
  assert.equal(clock.pendingTimers, 0, 'another file arms no check')
  writeFileSync(join(dir, '.gateway.yaml.swp'), 'v: 4\n')
  renameSync(join(dir, '.gateway.yaml.swp'), path)
  await untilIo(() => clock.pendingTimers === 1)
  await eventsQuiet()
  clock.advance(250)
  await untilIo(() => changes === 2)
})
