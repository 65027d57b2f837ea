import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { watchConfigFile } from '../../../src/config/watch.js'

const until = async (condition: () => boolean, withinMs = 3000): Promise<void> => {
  const deadline = Date.now() + withinMs
  while (!condition() && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20))
}

test('--watch: a file changed between loading and watching is reloaded; the text that runs is not', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'srvgate-watch-'))
  t.after(() => { rmSync(dir, { recursive: true, force: true }) })
  const path = join(dir, 'gateway.yaml')
  writeFileSync(path, 'v: 2\n')
  let changes = 0
  const changed = watchConfigFile(path, () => { changes++ }, { runningText: 'v: 1\n', debounceMs: 20 })
  t.after(() => { changed.stop() })
  await until(() => changes === 1)
  assert.equal(changes, 1, 'the file differs from what runs: one reload, without any event')

  let unchanged = 0
  const same = watchConfigFile(path, () => { unchanged++ }, { runningText: 'v: 2\n', debounceMs: 20 })
  t.after(() => { same.stop() })
  await new Promise((resolve) => setTimeout(resolve, 200))
  assert.equal(unchanged, 0, 'the file is what runs: no reload')
  // A write right after the watch starts is seen, compared with what runs (not with a late first read).
  writeFileSync(path, 'v: 3\n')
  await until(() => unchanged === 1)
  assert.equal(unchanged, 1)
})
