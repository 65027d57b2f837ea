/**
 * What crosses the process boundary between a cluster's primary and its
 * workers (node:cluster IPC, JSON). Everything is by value: configuration as
 * the document the primary checked (each worker compiles the same document),
 * instance sets as plain instances, health as durations (each process has its
 * own monotonic clock). Every message about backends names the configuration
 * generation it belongs to, so a reload's new backends and the old ones never
 * mix.
 *
 * Each message is written once, as a TypeBox schema: its TypeScript type is
 * the schema's `Static`, and every message received is checked against it
 * (message-check.ts), so nothing that crosses the boundary is trusted by
 * cast. The checks are compiled from these schemas at build time
 * (scripts/write-message-checks.ts → generated-message-checks.ts): at run
 * time only an invalid message's explanation (message-errors.ts) loads
 * TypeBox. The version is protocol-version.ts.
 */
import { Type, type Static, type TLiteral, type TObject, type TProperties } from '@sinclair/typebox'
import { ErrorCode } from '../errors.js'
import type { GatewayDocument } from '../config/schema.js'

/** Deeply read-only: a message received is a fact, never edited. */
export type Frozen<T> = T extends object ? { readonly [K in keyof T]: Frozen<T[K]> } : T

function message<Name extends string, Fields extends TProperties> (name: Name, fields: Fields): TObject<{ type: TLiteral<`srvgate:${Name}`> } & Fields> {
  return Type.Object({ type: Type.Literal(`srvgate:${name}` as const), ...fields })
}

const Generation = Type.Integer({ minimum: 0 })
const Port = Type.Integer({ minimum: 0, maximum: 65535 })
const Text = Type.String()
/**
 * A checked configuration document: its shape is the configuration schema's,
 * checked by the primary before it is sent (config/validate.ts); here only an
 * object, so that no process loads that schema's validator to read a message.
 */
const ConfigDocument = Type.Unsafe<GatewayDocument>(Type.Object({}))

/** One backend's discovery snapshot, by value (wire.ts makes and reads it). */
export const WireSnapshotSchema = Type.Object({
  status: Type.Union([Type.Literal('pending'), Type.Literal('answer'), Type.Literal('empty'), Type.Literal('failed')]),
  instances: Type.Array(Type.Object({ address: Text, port: Port, priority: Type.Integer({ minimum: 0 }), weight: Type.Integer({ minimum: 0 }) })),
  isStale: Type.Boolean(),
  // JSON drops an undefined field: no error is no field.
  lastError: Type.Optional(Type.Object({ code: Type.Enum(ErrorCode), message: Text })),
  refused: Type.Array(Type.Object({ key: Text, reason: Text }))
})
export type WireSnapshot = Frozen<Static<typeof WireSnapshotSchema>>

/** One instance's health as the primary decided it; relative times (each process has its own monotonic clock). */
const HealthSchema = Type.Object({
  key: Text,
  ejectedForMs: Type.Number({ minimum: 0 }),
  ejections: Type.Integer({ minimum: 0 }),
  isFailingActiveCheck: Type.Boolean()
})

/** A backend as a worker needs it when it starts or prepares a generation. */
const WireBackendSchema = Type.Object({ name: Text, snapshot: WireSnapshotSchema, health: Type.Array(HealthSchema) })
export type WireBackend = Frozen<Static<typeof WireBackendSchema>>

const OutcomeSchema = Type.Union([Type.Literal('success'), Type.Literal('connect-failure'), Type.Literal('timeout'), Type.Literal('reset'), Type.Literal('status-5xx')])

const Address = Type.Object({ host: Text, port: Port })

/** A worker's figures for /metrics and /admin/state (data-plane/stats.ts's DataPlaneStats). */
const StatsSchema = Type.Object({
  // prom-client's getMetricsAsJSON(): its own shape, aggregated by prom-client in the primary.
  metrics: Type.Array(Type.Unknown()),
  byBackend: Type.Array(Type.Tuple([Text, Type.Object({ requests: Type.Number({ minimum: 0 }), errors: Type.Number({ minimum: 0 }) })])),
  inFlight: Type.Array(Type.Tuple([Text, Text, Type.Number({ minimum: 0 })]))
})

/** Primary → worker. */
export const TO_WORKER = [
  /**
   * `document`: the configuration the primary checked (its YAML parsed,
   * `${NAME}` substituted, validated, defaults filled), compiled again by the
   * worker, which so loads neither the YAML parser nor the validator.
   * `startDocument`: a worker replacing one that died after a reload (which
   * may have changed a field bound at start: listen.http/https,
   * client.maxHeaderBytes, tls.sessionTickets.enabled): the document the
   * others started with, whose values of those fields it keeps
   * (control-plane/restart-only.ts).
   */
  message('config', { phase: Type.Union([Type.Literal('init'), Type.Literal('prepare')]), generation: Generation, document: ConfigDocument, startDocument: Type.Optional(ConfigDocument), backends: Type.Array(WireBackendSchema) }),
  message('commit', { generation: Generation }),
  message('abort', { generation: Generation }),
  message('set', { generation: Generation, name: Text, snapshot: WireSnapshotSchema }),
  message('health', { generation: Generation, name: Text, health: HealthSchema }),
  /**
   * The primary would not make a templated backend the worker asked for:
   * `rate` (templatedBackends.newPerSecond spent; the next in retryAfterMs)
   * or `bound` (templatedBackends.max reached with every one busy). The
   * worker answers the waiting request and forgets the backend.
   */
  message('template-refused', { generation: Generation, name: Text, reason: Type.Union([Type.Literal('rate'), Type.Literal('bound')]), retryAfterMs: Type.Number({ minimum: 0 }) }),
  message('stats', { id: Type.Integer({ minimum: 0 }) }),
  /**
   * The DNS face answers from every worker (cluster/worker-gateway.ts): the
   * dns.listen addresses with their ports bound (a port 0 made concrete by
   * the primary) and how many workers share the rate limits. Before the
   * configuration; not sent when the primary answers DNS itself.
   * `required`: at start-up a bind that fails fails the start; a
   * replacement worker that cannot bind serves HTTP and leaves DNS to the others.
   */
  message('dns-face', { listen: Type.Array(Type.Object({ host: Text, port: Type.Integer({ minimum: 1, maximum: 65535 }), family: Type.Union([Type.Literal(0), Type.Literal(4), Type.Literal(6)]), label: Text })), workers: Type.Integer({ minimum: 1 }), required: Type.Boolean() }),
  /** The HTTPS listener's session ticket key (tls/session-tickets.ts), base64 of its 48 bytes: at start, before the configuration, and at each rotation. */
  message('session-ticket-key', { key: Type.String({ pattern: '^[A-Za-z0-9+/]{64}$' }) }),
  /**
   * The ACME challenges under way (tls/acme-answers.ts), every one each time:
   * the worker answers `acme-challenges-applied` with the id once it would
   * answer the CA, and only then is the CA told to validate.
   */
  message('acme-challenges', {
    id: Type.Integer({ minimum: 0 }),
    http: Type.Array(Type.Object({ token: Text, keyAuthorization: Text })),
    alpn: Type.Array(Type.Object({ name: Text, cert: Text, key: Text }))
  }),
  /** Every certificate the primary holds from tls.acme, PEM (a file for the same name wins): at start, before the configuration, and at each change. */
  message('issued-certificates', { certificates: Type.Array(Type.Object({ cert: Text, key: Text })) }),
  /** The answer to `certificate-wanted`: `served` once issued-certificates (sent before it) carries one for the name. */
  message('certificate-answer', { id: Type.Integer({ minimum: 0 }), served: Type.Boolean() }),
  /** The answer to `challenge-wanted`: what the control plane (or shared storage) holds for it, if anything. */
  message('challenge-answer', { id: Type.Integer({ minimum: 0 }), found: Type.Optional(Type.Object({ keyAuthorization: Type.Optional(Text), cert: Type.Optional(Text), key: Type.Optional(Text) })) }),
  /** The answer to `rate-take`: tokens granted (0: none, the next in retryAfterMs). */
  message('rate-granted', { id: Type.Integer({ minimum: 0 }), granted: Type.Integer({ minimum: 0 }), retryAfterMs: Type.Number({ minimum: 0 }) }),
  message('drain', {})
] as const

/** Worker → primary. */
export const TO_PRIMARY = [
  // Its shape never changes: it is how versions are told apart.
  message('hello', { version: Type.Integer({ minimum: 0 }) }),
  message('listening', { addresses: Type.Object({ http: Type.Optional(Address), https: Type.Optional(Address) }) }),
  message('start-failed', { error: Text }),
  message('prepared', { generation: Generation, error: Type.Optional(Text) }),
  message('report', { generation: Generation, name: Text, key: Text, outcome: OutcomeSchema }),
  message('template', { generation: Generation, name: Text, template: Text, env: Text }),
  message('release', { generation: Generation, name: Text }),
  message('stats', { id: Type.Integer({ minimum: 0 }), stats: StatsSchema }),
  message('acme-challenges-applied', { id: Type.Integer({ minimum: 0 }) }),
  /** A handshake names a host no certificate carries, and tls.acme.onDemand is set: may it have one? */
  message('certificate-wanted', { id: Type.Integer({ minimum: 0 }), name: Text }),
  /** A CA's validation for a challenge this worker does not hold (tls.acme.storage.redis: another replica ordered it). */
  message('challenge-wanted', { id: Type.Integer({ minimum: 0 }), challenge: Type.Union([Type.Literal('http-01'), Type.Literal('tls-alpn-01')]), key: Text }),
  /** A frontend's rateLimit: up to `want` tokens of a key from the control plane's buckets (policy/rate-buckets.ts), under the worker's terms. */
  message('rate-take', {
    id: Type.Integer({ minimum: 0 }),
    frontend: Text,
    key: Text,
    want: Type.Integer({ minimum: 1 }),
    perSecond: Type.Number({ exclusiveMinimum: 0 }),
    burst: Type.Integer({ minimum: 1 }),
    maxKeys: Type.Integer({ minimum: 1 })
  })
] as const

export type ToWorkerSchema = (typeof TO_WORKER)[number]
export type ToPrimarySchema = (typeof TO_PRIMARY)[number]
export type ToWorker = Frozen<Static<ToWorkerSchema>>
export type ToPrimary = Frozen<Static<ToPrimarySchema>>

/** The one message of a direction with this type field. */
export type MessageOf<M extends { readonly type: string }, T extends M['type']> = Extract<M, { readonly type: T }>
