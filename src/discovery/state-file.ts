import { readFile, rename, writeFile, mkdir } from 'node:fs/promises'
import { dirname } from 'node:path'
import type { Lookup } from '../dns/resolver.js'
import type { DiscoveredInstance } from '../dns/types.js'
import { systemClock, type Clock, type Timer } from '../util/clock.js'

/** What is kept per lookup: the last instance set DNS gave, through which resolver, and when. */
export type SavedSet = { readonly lookup: Lookup, readonly resolver?: string, readonly instances: readonly DiscoveredInstance[], readonly savedAt: string }
type StateDocument = { readonly version: 1, readonly sets: readonly SavedSet[] }

/**
 * Last-known instance sets on disk, so a gateway restarted while DNS is
 * unreachable serves them (marked stale) instead of failing. Written
 * atomically (temp file, then rename); a missing or unreadable file is
 * simply no saved state.
 */
export async function readStateFile (path: string): Promise<{ sets: SavedSet[], problem?: string }> {
  let text: string
  try {
    text = await readFile(path, 'utf8')
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code
    return { sets: [], problem: code === 'ENOENT' ? undefined : `cannot read ${path}: ${(error as Error).message}` }
  }
  try {
    const document = JSON.parse(text) as StateDocument
    if (document.version !== 1 || !Array.isArray(document.sets)) return { sets: [], problem: `${path}: not a srvgate state file` }
    const sets = document.sets.filter((set) => isLookup(set.lookup) && (set.resolver === undefined || typeof set.resolver === 'string') && Array.isArray(set.instances) && set.instances.every(isInstance))
    return { sets }
  } catch (error) {
    return { sets: [], problem: `${path}: ${(error as Error).message}` }
  }
}

async function writeStateFile (path: string, sets: readonly SavedSet[]): Promise<void> {
  const document: StateDocument = { version: 1, sets }
  await mkdir(dirname(path), { recursive: true })
  const temporary = `${path}.tmp-${process.pid}`
  await writeFile(temporary, `${JSON.stringify(document, null, 2)}\n`)
  await rename(temporary, path)
}

/** Coalesces bursts of changes into one write, at most every `everyMs`; writes never overlap. */
export class StateFileWriter {
  readonly #path: string
  readonly #everyMs: number
  readonly #collect: () => SavedSet[]
  readonly #onError: (error: unknown) => void
  readonly #clock: Clock
  #timer: Timer | undefined
  #writing: Promise<void> = Promise.resolve()

  constructor (path: string, collect: () => SavedSet[], options: { everyMs?: number, onError: (error: unknown) => void, clock?: Clock }) {
    this.#path = path
    this.#collect = collect
    this.#everyMs = options.everyMs ?? 500
    this.#onError = options.onError
    this.#clock = options.clock ?? systemClock
  }

  schedule (): void {
    if (this.#timer !== undefined) return
    this.#timer = this.#clock.setTimeout(() => {
      this.#timer = undefined
      this.#writing = this.#writing.then(async () => { await writeStateFile(this.#path, this.#collect()) }).catch(this.#onError)
    }, this.#everyMs, { unref: true })
  }

  /** The write in progress, if any (tests wait for it). */
  get writing (): Promise<void> { return this.#writing }

  /** Write now (at shutdown), after any write in progress. */
  async flush (): Promise<void> {
    this.#timer?.cancel()
    this.#timer = undefined
    this.#writing = this.#writing.then(async () => { await writeStateFile(this.#path, this.#collect()) }).catch(this.#onError)
    await this.#writing
  }
}

function isLookup (value: unknown): value is Lookup {
  const lookup = value as Lookup | undefined
  return lookup !== undefined && typeof lookup.name === 'string' && (lookup.kind === 'srv' || (lookup.kind === 'address' && typeof lookup.port === 'number'))
}

function isInstance (value: unknown): value is DiscoveredInstance {
  const instance = value as DiscoveredInstance | undefined
  return instance !== undefined && typeof instance.address === 'string' && Number.isInteger(instance.port) && Number.isInteger(instance.priority) && Number.isInteger(instance.weight)
}
