/**
 * Freeze the compiled configuration all the way down. Object.freeze does not
 * stop Map#set or Set#add (their entries are not properties), so those methods
 * are replaced on each instance by one that throws: read-only for real, not
 * only in the ReadonlyMap type.
 */
export function deepFreeze<T> (value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value) && !(value instanceof RegExp)) {
    if (value instanceof Map || value instanceof Set) {
      const names = value instanceof Map ? ['set', 'delete', 'clear'] : ['add', 'delete', 'clear']
      for (const name of names) Object.defineProperty(value, name, { value: readOnly })
    }
    Object.freeze(value)
    const children = value instanceof Map ? [...value.values()] : value instanceof Set ? [] : Object.values(value)
    for (const child of children) deepFreeze(child)
  }
  return value
}

function readOnly (): never {
  throw new TypeError('the compiled configuration is read-only: a reload builds a new one')
}
