import { innerMap } from '../util/maps.js'

/**
 * Values per frontend and key, each frontend's keys bounded by its maxKeys:
 * a Map kept in the order keys were last seen, so the first is the one to
 * forget (rateLimit's buckets and leases).
 */
export class FrontendKeys<T> {
  readonly #byFrontend = new Map<string, Map<string, T>>()

  /** `key`'s value under `frontend`, made by `make` when new (the least recently seen key forgotten past maxKeys); now the most recently seen. */
  touch (frontend: string, key: string, maxKeys: number, make: () => T): T {
    const values = innerMap(this.#byFrontend, frontend)
    let value = values.get(key)
    if (value === undefined) {
      value = make()
      while (values.size >= maxKeys) values.delete(values.keys().next().value as string)
    } else {
      values.delete(key)
    }
    values.set(key, value)
    return value
  }

  /** Keys held for `frontend`. */
  sizeOf (frontend: string): number { return this.#byFrontend.get(frontend)?.size ?? 0 }
}
