import { createHash } from 'node:crypto'
import { watch, type FSWatcher } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { basename, dirname } from 'node:path'
import { systemClock, type Clock, type Timer } from '../util/clock.js'

export type ConfigWatcher = { readonly stop: () => void }

/**
 * Calls `onChange` when the configuration file's content changes. Watches
 * the file's folder, not the file: editors replace files by rename, and
 * Kubernetes swaps a ConfigMap by re-pointing the `..data` symlink, both of
 * which a watch on the old inode would miss. Bursts are debounced, and a
 * change is only reported when the bytes differ from the last ones seen.
 */
export function watchConfigFile (path: string, onChange: () => void, options: { debounceMs?: number, onError?: (error: unknown) => void, clock?: Clock, runningText?: string } = {}): ConfigWatcher {
  const debounceMs = options.debounceMs ?? 250
  const clock = options.clock ?? systemClock
  // The text that runs, when known: a change made between loading and watching is not missed.
  let lastHash: string | undefined = options.runningText === undefined ? undefined : createHash('sha256').update(options.runningText).digest('hex')
  let timer: Timer | undefined
  let isStopped = false
  const hashNow = async (): Promise<string | undefined> => {
    try {
      return createHash('sha256').update(await readFile(path)).digest('hex')
    } catch {
      return undefined
    }
  }
  if (lastHash === undefined) void hashNow().then((hash) => { lastHash ??= hash })
  const check = (): void => {
    timer = undefined
    void hashNow().then((hash) => {
      if (isStopped || hash === undefined || hash === lastHash) return
      lastHash = hash
      onChange()
    })
  }
  const name = basename(path)
  let watcher: FSWatcher | undefined
  try {
    watcher = watch(dirname(path), { persistent: false }, (_event, file) => {
      // The file itself, or a symlink swap (..data) that changes what it points to.
      if (file !== null && file !== name && !String(file).startsWith('..')) return
      timer?.cancel()
      timer = clock.setTimeout(check, debounceMs)
    })
    watcher.on('error', (error) => { options.onError?.(error) })
  } catch (error) {
    options.onError?.(error)
  }
  // A change made between loading and watching has no event of its own: look once now.
  if (options.runningText !== undefined) timer = clock.setTimeout(check, 0)
  return {
    stop: () => {
      isStopped = true
      timer?.cancel()
      watcher?.close()
    }
  }
}
