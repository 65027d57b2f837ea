import { Type, type ObjectOptions, type Static, type TObject, type TProperties, type TSchema, type TUnsafe } from '@sinclair/typebox'

/**
 * The few schema shapes TypeBox has no builder for, or builds differently
 * from the JSON Schema this project has always published (Type.Record prints
 * patternProperties, Type.Union prints anyOf, Type.Literal adds a type). Each
 * keeps the JSON it prints and still derives its TypeScript type.
 */

/**
 * A field the file may leave out that ajv's useDefaults always fills: optional
 * in the schema (not in `required`), present in the validated document's type.
 * The cast is the whole point: TypeBox ties the two together, defaults split them.
 */
export function Defaulted<T extends TSchema> (schema: T): T {
  return Type.Optional(schema) as unknown as T
}

/** `enum`, printed as one keyword (Type.Union of literals would print anyOf). */
export function OneOf<const T extends ReadonlyArray<string | number>> (values: T, options: { default?: T[number], description?: string } = {}): TUnsafe<T[number]> {
  return Type.Unsafe<T[number]>({ enum: values, ...options })
}

/** `const`, without the `type` Type.Literal adds. */
export function Constant<const T extends string | number | boolean> (value: T, options: { description?: string } = {}): TUnsafe<T> {
  return Type.Unsafe<T>({ const: value, ...options })
}

/** An object of named entries (resolvers, backends, DNS names): additionalProperties, not Type.Record's patternProperties. */
export function MapOf<V extends TSchema> (value: V, options: { default?: object, description?: string, propertyNames?: object } = {}): TUnsafe<Record<string, Static<V>>> {
  return Type.Unsafe<Record<string, Static<V>>>({ type: 'object', ...options, additionalProperties: value })
}

/** if/then/else: the value is the `then` shape where `if` holds, else the `else` shape. */
export function IfThenElse<T extends TSchema, E extends TSchema> (options: { description?: string, if: object, then: T, else: E }): TUnsafe<Static<T> | Static<E>> {
  return Type.Unsafe<Static<T> | Static<E>>({ ...options })
}

/**
 * A field a branch's `if` already requires (a split's `split`): left out of
 * the branch's own `required`, as it always was, yet present in its type.
 */
export function Implied<T extends TSchema> (schema: T): T {
  return Type.Optional(schema) as unknown as T
}

/** An object that takes no fields but its own. */
export function Closed<P extends TProperties> (properties: P, options: ObjectOptions = {}): TObject<P> {
  return Type.Object(properties, { additionalProperties: false, ...options })
}

/** A section the file may leave out: no unknown fields, and `{}` filled in with its defaults. */
export function Section<P extends TProperties> (properties: P, description: string): TObject<P> {
  return Defaulted(Type.Object(properties, { additionalProperties: false, default: {}, description }))
}
