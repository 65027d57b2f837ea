import type { Address } from '../util/address.js'
import type { Milliseconds } from '../util/duration.js'
import type { CidrSet } from '../util/cidr.js'
import type { ConfigIssue } from '../errors.js'

/**
 * The compiled configuration: durations in milliseconds, addresses parsed,
 * patterns compiled, everything frozen. Request code trusts it and never
 * checks configuration again.
 */
export type GatewayConfig = {
  /** What is valid but probably not meant (a frontend that can never match, an ignored field). */
  readonly warnings: readonly ConfigIssue[]
  /** http, https or both (the schema wants one). */
  /** h2c: listen.http also takes HTTP/2 with prior knowledge. */
  readonly listen: { readonly http: Address | undefined, readonly https: Address | undefined, readonly admin: Address, readonly h2c: boolean }
  /** Certificates and HTTPS rules; set whenever listen.https is. */
  readonly tls: TlsConfig | undefined
  /** Bearer token for the admin listener; undefined: no token required. */
  readonly adminToken: string | undefined
  /** admin.allowedHosts, lower case: more names the admin listener answers to without a token (default none). */
  readonly adminAllowedHosts: ReadonlySet<string>
  readonly drain: { readonly delayMs: Milliseconds, readonly timeoutMs: Milliseconds }
  readonly client: ClientLimits
  /** Peers whose forwarding headers are believed; empty: none. */
  readonly trustedProxies: CidrSet
  /** Bounds on templated backends: how many alive, how long idle, how many made a second (a token bucket, burst = newPerSecond). */
  readonly templatedBackends: { readonly max: number, readonly idleTimeoutMs: Milliseconds, readonly newPerSecond: number }
  readonly accessLog: AccessLogConfig
  /** Where last-known instance sets are kept; undefined: not kept. */
  readonly statePath: string | undefined
  /** metrics.perInstance: series per instance (admin/instance-metrics.ts). */
  readonly metrics: { readonly perInstance: boolean }
  /** Worker processes; undefined: one per core (cluster/worker-count.ts; SRVGATE_WORKERS wins). */
  readonly workers: number | undefined
  readonly resolvers: ReadonlyMap<string, ResolverConfig>
  /** Backends with discovery. */
  readonly backends: ReadonlyMap<string, BackendConfig>
  /** Backends made of other backends by weight (a name is in backends or in splits, never both). */
  readonly splits: ReadonlyMap<string, SplitConfig>
  readonly frontends: readonly FrontendConfig[]
  /** The DNS face; undefined: not served. */
  readonly dns: DnsFaceConfig | undefined
  /** Spans over OTLP; undefined: no tracing (not a cost on any request). */
  readonly tracing: TracingConfig | undefined
}

/** tracing, with the OTEL_* environment's values where the file sets none (compile-tracing.ts). */
export type TracingConfig = {
  /** The full OTLP/HTTP traces URL. */
  readonly endpoint: string
  readonly protocol: 'http/protobuf' | 'http/json'
  readonly headers: Readonly<Record<string, string>>
  readonly timeoutMs: Milliseconds
  /** Exports sent gzip-compressed (OTEL_EXPORTER_OTLP_(TRACES_)COMPRESSION=gzip). */
  readonly isGzipped: boolean
  /** Share of new traces recorded, 0 to 1 (parent-based). */
  readonly sampleRatio: number
  readonly serviceName: string
  /** OTEL_RESOURCE_ATTRIBUTES, on every span's resource (service.name: `serviceName`). */
  readonly resourceAttributes: Readonly<Record<string, string>>
  /** Clients outside trustedProxies start a new trace: their traceparent is not continued. */
  readonly restartAtEdge: boolean
}

/** accessLog: schema.ts says what each field means and its default. */
export type AccessLogConfig = {
  readonly format: 'json' | 'common'
  /** The query string: false never, true as sent, a set: only these keys' values (decoded keys). */
  readonly query: boolean | ReadonlySet<string>
}

export type DnsFaceConfig = {
  readonly listen: readonly Address[]
  /** Lower case, without the root dot. */
  readonly zone: string
  /** The face's own name (`ns.ZONE`): the SOA's MNAME and the zone's NS, answering with the dns.listen addresses. */
  readonly nameserver: string
  readonly ttlSeconds: number
  /** Label → what it answers with. */
  readonly names: ReadonlyMap<string, { readonly kind: 'backend', readonly backend: string } | { readonly kind: 'gateway' }>
  readonly rateLimit: { readonly perSecond: number, readonly burst: number, readonly globalPerSecond: number }
  readonly tcp: { readonly messageTimeoutMs: Milliseconds, readonly idleTimeoutMs: Milliseconds, readonly maxConnections: number, readonly maxConnectionsPerSource: number }
}

/** DNS over TCP's limits (RFC 7766 §6.2.3): dns.tcp, durations in ms; schema.ts says what each means and its default. */
export type DnsFaceTcpConfig = DnsFaceConfig['tcp']

export type TlsConfig = {
  /** Files, read by tls/certificates.ts at start and on every reload. */
  readonly certificates: ReadonlyArray<{ readonly certPath: string, readonly keyPath: string }>
  /** Lower-case name served when the client sends no SNI or one no certificate carries. */
  readonly defaultName: string | undefined
  readonly minVersion: 'TLSv1.2' | 'TLSv1.3'
  readonly redirectHttp: boolean
  /** Resumption by ticket: the key is the control plane's (tls/session-tickets.ts), rotated every rotateEveryMs. */
  readonly sessionTickets: { readonly enabled: boolean, readonly rotateEveryMs: Milliseconds }
  /** The Strict-Transport-Security value, built once. */
  readonly hsts: string | undefined
  /** Certificates from an ACME CA, ordered by the control plane (acme/). */
  readonly acme: AcmeConfig | undefined
}

export type AcmeChallenge = 'http-01' | 'tls-alpn-01'

/** tls.acme, compiled: schema.ts says what each field means and its default. */
export type AcmeConfig = {
  readonly directoryUrl: string
  readonly directoryCaPath: string | undefined
  readonly email: string | undefined
  readonly eab: { readonly kid: string, readonly hmacKey: string } | undefined
  readonly storage: { readonly kind: 'dir', readonly dir: string } | { readonly kind: 'redis', readonly url: string, readonly prefix: string }
  /** Lower-case, each its own certificate. */
  readonly names: readonly string[]
  /** The types this gateway can answer: http-01 only with listen.http. */
  readonly challenges: readonly AcmeChallenge[]
  readonly renewBeforeMs: Milliseconds
  /** tls.acme.onDemand: certificates at the first handshake of an environment that exists. */
  readonly onDemand: { readonly frontends: readonly string[], readonly perMinute: number, readonly max: number, readonly negativeTtlMs: Milliseconds, readonly waitMs: Milliseconds } | undefined
}

/** What clients may send, and how slowly (see schema.ts for the defaults). */
export type ClientLimits = {
  readonly headersTimeoutMs: Milliseconds
  readonly bodyIdleTimeoutMs: Milliseconds
  readonly keepAliveTimeoutMs: Milliseconds
  /** Longest a client may leave an answer unread before it is cut. */
  readonly sendTimeoutMs: Milliseconds
  readonly maxHeaderCount: number
  readonly maxHeaderBytes: number
  /** Per process, over the public listeners; undefined: derived from the descriptor limit (edge/client-connections.ts). */
  readonly maxConnections: number | undefined
  /** Per client address, per process; undefined: no cap. */
  readonly maxConnectionsPerIp: number | undefined
  readonly maxConcurrentStreams: number
  /** Bodies up to this many bytes are received whole before an instance connection is taken (0: none). */
  readonly bufferBodyBytes: number
  /** Most body bytes buffered at once in this process. */
  readonly bufferTotalBytes: number
  /** Bytes per second a streamed body must keep up, averaged over 10 s (0: no floor). */
  readonly minBodyRate: number
}

/** Which discovered addresses may be instances; built-in refusals are added by upstream/address-policy.ts. */
export type AddressPolicyConfig = {
  /** When set, only addresses in these blocks. */
  readonly allow: CidrSet | undefined
  readonly deny: CidrSet
}

export type ResolverConfig = {
  readonly name: string
  readonly nameservers: readonly Address[]
  readonly timeoutMs: Milliseconds
  readonly attempts: number
  readonly ttl: { readonly minMs: Milliseconds, readonly maxMs: Milliseconds }
  /** Clamp for SRV targets' addresses asked one by one. */
  readonly targetTtl: { readonly minMs: Milliseconds, readonly maxMs: Milliseconds }
  readonly staleForMs: Milliseconds
  readonly negativeTtlMs: Milliseconds
  readonly emptyGraceMs: Milliseconds
  readonly ednsPayload: number
  readonly addressPolicy: AddressPolicyConfig
}

export type DiscoveryConfig =
  | { readonly kind: 'srv', readonly resolver: string, readonly name: string }
  | { readonly kind: 'address', readonly resolver: string, readonly name: string, readonly port: number }

export type BalanceName = 'weighted' | 'round-robin' | 'least-request' | 'random' | 'hash'

export type HashKey =
  | { readonly kind: 'header', readonly name: string }
  | { readonly kind: 'cookie', readonly name: string }
  | { readonly kind: 'client-ip' }
  | { readonly kind: 'path' }

export type RetryOn = 'connect-failure' | 502 | 503 | 504

export type BackendProtocol = 'http1' | 'h2c' | 'h2'

export type BackendOptions = {
  readonly balance: BalanceName
  readonly hashOn: HashKey | undefined
  readonly healthCheck: HealthCheckConfig | undefined
  readonly outlier: { readonly consecutiveFailures: number, readonly ejectForMs: Milliseconds, readonly maxEjectedPercent: number }
  readonly retry: { readonly attempts: number, readonly on: ReadonlySet<RetryOn> }
  readonly timeouts: { readonly connectMs: Milliseconds, readonly responseMs: Milliseconds }
  /** Most connections to one instance; more requests wait (within timeouts.response). */
  readonly maxConnectionsPerInstance: number
  /** Connections older than this are not reused (undici clientTtl); undefined: no age limit. */
  readonly maxConnectionAgeMs: Milliseconds | undefined
  /** HTTP/1.1, HTTP/2 with prior knowledge (h2c), or HTTP/2 over TLS (h2, needs tls). */
  readonly protocol: BackendProtocol
  /** Instances speak HTTPS: SNI and verified name, CA file, verification (undefined: plain HTTP). */
  readonly tls: { readonly serverName: string, readonly caPath: string | undefined, readonly verify: boolean } | undefined
  /** Narrows the resolver's address policy for this backend; undefined: the resolver's alone. */
  readonly addressPolicy: AddressPolicyConfig | undefined
  /** A new instance's share ramps up over this time; undefined: full share at once. */
  readonly slowStartMs: Milliseconds | undefined
}

export type HealthCheckConfig = {
  readonly path: string
  readonly intervalMs: Milliseconds
  readonly timeoutMs: Milliseconds
  readonly rise: number
  readonly fall: number
}

export type BackendConfig = BackendOptions & {
  readonly name: string
  readonly discovery: DiscoveryConfig
  /** Other datacenters, in order, used only while discovery has no usable instance. */
  readonly failover: readonly DiscoveryConfig[]
}

/** A backend made of backends: each request goes to one member, by weight or by a sticky key. */
export type SplitConfig = {
  readonly name: string
  readonly members: ReadonlyArray<{ readonly backend: string, readonly weight: number }>
  readonly stickyOn: HashKey | undefined
}

/** A backend instantiated per captured environment: `web-{env}`. Names keep `{env}` as a placeholder. */
export type BackendTemplateConfig = BackendOptions & {
  readonly template: string
  readonly discovery: DiscoveryConfig
}

/** A split per captured environment (`web-{env}` of `web-{env}-v1` and `web-{env}-v2`). */
export type TemplateSplitConfig = {
  readonly template: string
  readonly members: ReadonlyArray<{ readonly template: BackendTemplateConfig, readonly weight: number }>
  readonly stickyOn: HashKey | undefined
}

/** Every backend template a frontend names: its own, or its split's members. */
export function templatesOf (backend: FrontendConfig['backend']): readonly BackendTemplateConfig[] {
  if (backend.kind === 'template') return [backend.template]
  if (backend.kind === 'template-split') return backend.split.members.map((member) => member.template)
  return []
}

export type HostMatch =
  | { readonly kind: 'exact', readonly host: string }
  /** `*.staging.example.com` → suffix `.staging.example.com` (at least one label before it). */
  | { readonly kind: 'suffix', readonly suffix: string }
  /** `{env}.preview.example.com` → one whole label captured between prefix and suffix. */
  | { readonly kind: 'capture', readonly prefix: string, readonly suffix: string }

export type FrontendConfig = {
  readonly name: string
  readonly match: {
    readonly host: HostMatch | undefined
    readonly pathPrefix: string | undefined
    /** Lower-case header name → exact value. */
    readonly headers: ReadonlyMap<string, string>
    /** Upper-case methods; empty: any method. */
    readonly methods: ReadonlySet<string>
  }
  readonly envPattern: RegExp | undefined
  readonly backend:
    | { readonly kind: 'static', readonly name: string }
    | { readonly kind: 'split', readonly name: string }
    | { readonly kind: 'template-split', readonly split: TemplateSplitConfig }
    | { readonly kind: 'template', readonly template: BackendTemplateConfig }
  /** access: who may use the frontend (policy/frontend-gate.ts); undefined: anyone (nothing done per request). */
  readonly access: AccessConfig | undefined
  /** rateLimit: requests a second per key for the whole gateway; undefined: none. */
  readonly rateLimit: RateLimitConfig | undefined
  /** compress: answers compressed by Accept-Encoding (proxy/compression.ts); undefined: never. */
  readonly compress: CompressConfig | undefined
  readonly rewrite: { readonly stripPrefix: string | undefined, readonly addPrefix: string | undefined }
  /** redirect: answered at once with this status and Location (proxy/redirect.ts), never forwarded; undefined: none. */
  readonly redirect: { readonly to: string, readonly status: 301 | 302 | 307 | 308 } | undefined
  /** headers: rules for what the instance receives and what the client is answered; undefined: none (nothing done per request). */
  readonly headers: { readonly request: HeaderRules | undefined, readonly response: HeaderRules | undefined } | undefined
}

/** A frontend's `access`: each part undefined when not configured. */
export type AccessConfig = {
  readonly addresses: AddressPolicyConfig | undefined
  readonly basicAuth: { readonly realm: string, readonly usersFile: string } | undefined
  readonly forwardAuth: { readonly url: string, readonly copyHeaders: readonly string[], readonly timeoutMs: Milliseconds } | undefined
}

/** A frontend's `rateLimit`: a token bucket of `burst` filled at `requestsPerSecond`, per key. */
export type RateLimitConfig = {
  readonly requestsPerSecond: number
  readonly burst: number
  /** client-ip, or a header's value (lower-case name). */
  readonly key: { readonly kind: 'client-ip' } | { readonly kind: 'header', readonly name: string }
  readonly maxKeys: number
  readonly redis: { readonly url: string, readonly prefix: string, readonly timeoutMs: Milliseconds } | undefined
}

/** A frontend's `compress`. */
export type CompressConfig = {
  /** Exact lower-case types (application/json). */
  readonly types: ReadonlySet<string>
  /** type/* entries, as `type/`. */
  readonly typePrefixes: readonly string[]
  readonly minBytes: number
}

/** One side of a frontend's `headers` (proxy/header-rules.ts applies them): names lower case. */
export type HeaderRules = {
  readonly set: ReadonlyArray<readonly [string, string]>
  readonly setNames: ReadonlySet<string>
  readonly remove: ReadonlySet<string>
}
