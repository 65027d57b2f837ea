/** The map under `key` in a map of maps, made empty on first use. */
export function innerMap<K, V> (outer: Map<string, Map<K, V>>, key: string): Map<K, V> {
  let inner = outer.get(key)
  if (inner === undefined) {
    inner = new Map()
    outer.set(key, inner)
  }
  return inner
}
