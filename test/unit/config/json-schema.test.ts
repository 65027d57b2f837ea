import { test } from 'node:test'
import assert from 'node:assert/strict'
import { Type } from '@sinclair/typebox'
import { toJsonSchema } from '../../../src/config/json-schema.js'
import { Closed, Defaulted, OneOf } from '../../../src/config/schema-kit.js'

test('a TypeBox schema prints as plain JSON Schema: no symbol-keyed fields, optional fields out of required', () => {
  const schema = toJsonSchema(Closed({ name: Type.String(), size: Defaulted(Type.Integer({ default: 1 })) }))
  const symbols = (value: unknown): symbol[] => value !== null && typeof value === 'object'
    ? [...Object.getOwnPropertySymbols(value), ...Object.values(value).flatMap(symbols)]
    : []
  assert.deepEqual(symbols(schema), [])
  assert.deepEqual(schema, { type: 'object', additionalProperties: false, required: ['name'], properties: { name: { type: 'string' }, size: { type: 'integer', default: 1 } } })
})

test('keys print in the published order: type first, required after additionalProperties, properties after description', () => {
  const schema = toJsonSchema(Type.Object({ b: Type.String({ minLength: 1, description: 'B' }), a: Type.Optional(Type.String()) }, {
    $schema: 'S', title: 'T', additionalProperties: false, description: 'D', anyOf: [{ required: ['a'] }]
  }))
  assert.deepEqual(Object.keys(schema), ['$schema', 'title', 'type', 'additionalProperties', 'required', 'description', 'properties', 'anyOf'])
  // Property names keep the order they were written in, not a sorted one.
  assert.deepEqual(Object.keys(schema.properties as object), ['b', 'a'])
  assert.deepEqual(Object.keys((schema.properties as { b: object }).b), ['type', 'minLength', 'description'])
})

test('items: a scalar item schema prints before the description, an object or enum after it', () => {
  const scalar = toJsonSchema(Type.Array(Type.String(), { minItems: 1, description: 'D', default: [] }))
  assert.deepEqual(Object.keys(scalar), ['type', 'minItems', 'items', 'description', 'default'])
  const enumerated = toJsonSchema(Type.Array(OneOf(['x', 1]), { uniqueItems: true, description: 'D', default: ['x'] }))
  assert.deepEqual(Object.keys(enumerated), ['type', 'uniqueItems', 'description', 'items', 'default'])
  const objects = toJsonSchema(Type.Array(Closed({}), { default: [], description: 'D' }))
  assert.deepEqual(Object.keys(objects), ['type', 'default', 'description', 'items'])
})
