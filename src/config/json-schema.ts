/**
 * A TypeBox schema as the plain JSON Schema ajv compiles and editors read:
 * TypeBox's symbol-keyed fields dropped, and keys in the order
 * config/gateway.schema.json has always had, so regenerating it from TypeBox
 * changes nothing. TypeBox writes a node's options first and its own keys
 * (type, required, properties, items) last; they are put back where they were:
 *   - type first (after $schema, $id and title on the root);
 *   - required right after additionalProperties;
 *   - properties right after description (else last);
 *   - items of a scalar type right before description, other items (objects,
 *     enums) right after it (else last).
 */
export function toJsonSchema (schema: object): Record<string, unknown> {
  return node(schema) as Record<string, unknown>
}

const HEAD = ['$schema', '$id', 'title']
const PLACED = new Set(['type', 'required', 'properties', 'items'])
// Values that are data, not schemas: copied as they are.
const DATA = new Set(['default', 'enum', 'const', 'required', 'dependentRequired'])
// Values that are maps of name → schema: their keys keep their order.
const SCHEMA_MAPS = new Set(['properties'])

function node (value: unknown): unknown {
  if (Array.isArray(value)) return value.map(node)
  if (value === null || typeof value !== 'object') return value
  const record = value as Record<string, unknown>
  const result: Record<string, unknown> = {}
  for (const key of keyOrder(record)) {
    const child = record[key]
    if (child === undefined) continue
    if (DATA.has(key)) result[key] = structuredClone(child)
    else if (SCHEMA_MAPS.has(key)) result[key] = Object.fromEntries(Object.entries(child as object).map(([name, schema]) => [name, node(schema)]))
    else result[key] = node(child)
  }
  return result
}

function keyOrder (record: Record<string, unknown>): string[] {
  const keys = Object.keys(record)
  const order = keys.filter((key) => HEAD.includes(key))
  if ('type' in record) order.push('type')
  for (const key of keys) {
    if (HEAD.includes(key) || PLACED.has(key)) continue
    if (key === 'description' && 'items' in record && isScalarSchema(record.items)) order.push('items')
    order.push(key)
    if (key === 'additionalProperties' && 'required' in record) order.push('required')
    if (key === 'description' && 'properties' in record) order.push('properties')
    if (key === 'description' && 'items' in record && !isScalarSchema(record.items)) order.push('items')
  }
  for (const key of ['required', 'properties', 'items']) {
    if (key in record && !order.includes(key)) order.push(key)
  }
  return order
}

function isScalarSchema (schema: unknown): boolean {
  const type = (schema as { type?: unknown } | null)?.type
  return typeof type === 'string' && type !== 'object' && type !== 'array'
}
