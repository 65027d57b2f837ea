import { Type, type Static } from '@sinclair/typebox'
import { addressPolicy, backend, cidrList, duration, durationString, frontendBackend, integer } from './schema-backend.js'
import { Closed, Constant, Defaulted, IfThenElse, MapOf, OneOf, Section } from './schema-kit.js'
import { access, compress, rateLimit } from './schema-policies.js'
import { toJsonSchema } from './json-schema.js'

/**
 * The configuration document, defined once with TypeBox: its JSON Schema
 * (draft 2020-12, with every default) and its TypeScript type both come from
 * here. `npm run schema` prints it to `config/gateway.schema.json`, which
 * editors read and the loader validates with (ajv fills the defaults; see
 * validate.ts for why not this module); `npm run docs` writes the docs/CONFIG.md
 * reference from it. Tests keep both in step. At run time only the types
 * below are used: nothing outside the schema sources imports this as a value.
 *
 * Custom formats: `duration` ('250ms', '1s', '1h30m'; also a pattern, for editors), `address` ('host:port',
 * '[::1]:8600') and `cidr`; each is checked by a util/ parser.
 */

const optionalInteger = (options: { minimum: number, maximum: number, description: string }) => Type.Optional(Type.Integer(options))
const address = (description: string) => Type.String({ format: 'address', description })
const nameKey = { pattern: '^[A-Za-z0-9][A-Za-z0-9_.-]*$' }

const listen = Closed({
  http: Type.Optional(address('Public plain-HTTP listener, host:port (optional once https is set).')),
  https: Type.Optional(address('Public HTTPS listener (HTTP/2 and HTTP/1.1 by ALPN), host:port; needs tls.certificates or tls.acme.')),
  admin: Defaulted(Type.String({ format: 'address', default: '127.0.0.1:9901', description: 'Admin API, metrics and dashboard.' })),
  h2c: Defaulted(Type.Boolean({ default: true, description: 'listen.http also takes HTTP/2 with prior knowledge (h2c: gRPC without TLS, a TLS-terminating load balancer speaking HTTP/2), told from HTTP/1.1 by its first bytes; false: HTTP/1.x only. Changed by a restart.' }))
}, {
  anyOf: [{ required: ['http'] }, { required: ['https'] }],
  description: 'Where srvgate listens: http, https or both.'
})

const admin = Section({
  token: Type.Optional(Type.String({ minLength: 1, description: 'Bearer token required on the admin listener.' })),
  allowedHosts: Defaulted(Type.Array(Type.String({ pattern: '^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?\\.?$' }), {
    default: [],
    description: 'Without a token, every admin path but /healthz and /readyz answers only a Host naming the listener itself (its address, localhost, the listen.admin host, with its port), against DNS rebinding. These names are accepted too, on any port: the name Prometheus scrapes by (a Kubernetes Service, a compose service). Names only, no port. Ignored with a token.'
  }))
}, 'The admin listener\'s access.')

const client = Section({
  headersTimeout: duration('10s', 'The whole request head must arrive within this, else 408.'),
  bodyIdleTimeout: duration('30s', 'Longest pause while a request body arrives, else 408 and the connection closes.'),
  keepAliveTimeout: duration('5s', 'An idle keep-alive connection from a client is closed after this.'),
  sendTimeout: duration('30s', 'A client that reads nothing of an answer for this long has it cut, and the instance\'s connection is let go (nginx send_timeout, HAProxy timeout client).'),
  maxHeaderCount: integer({ minimum: 1, maximum: 10000, default: 100, description: 'Most header fields in a request (Envoy and HAProxy use about 100); more is 431.' }),
  maxHeaderBytes: integer({ minimum: 1024, maximum: 1048576, default: 16384, description: 'Largest request head in bytes (Node\'s default); more is 431.' }),
  maxConnections: optionalInteger({ minimum: 1, maximum: 10000000, description: 'Most client connections one process holds open, over the http and https listeners together; past it a new connection is closed at once (srvgate_client_connections_refused_total). Unset: half of the process\'s descriptor limit less 64 (HAProxy derives maxconn from ulimit -n the same way), leaving room for instance connections.' }),
  maxConnectionsPerIp: optionalInteger({ minimum: 1, maximum: 10000000, description: 'Most client connections one address holds open per process; past it its new connections are closed at once. Unset: no per-address cap (addresses behind one NAT share it).' }),
  maxConcurrentStreams: integer({ minimum: 1, maximum: 10000, default: 100, description: 'HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS: most requests one HTTP/2 connection has open at once (HAProxy and Envoy: 100).' }),
  bufferBodyBytes: integer({ minimum: 0, maximum: 1073741824, default: 1048576, description: 'A request body up to this size is received whole, in memory, before an instance connection is taken (nginx proxy_request_buffering), and can be replayed on a retry. Larger bodies stream. 0: every body streams.' }),
  bufferTotalBytes: integer({ minimum: 0, maximum: 17179869184, default: 67108864, description: 'Most bytes of request bodies one process buffers at once; past it, bodies stream.' }),
  minBodyRate: integer({ minimum: 0, maximum: 1073741824, default: 1024, description: 'A streamed request body slower than this (bytes per second, averaged over 10 s) is cut with 408. 0: no floor.' })
}, 'Limits on what clients send (HAProxy timeout http-request and timeout client). A client over a limit gets 408 or 431 and is never forwarded.')

const trustedProxies = Defaulted(cidrList('Peers whose X-Forwarded-For, X-Forwarded-Proto/Host, X-Real-IP and Forwarded headers are believed (CIDR). From any other peer they are replaced by srvgate\'s own. Default: none.', { default: [] }))

const templatedBackends = Section({
  max: integer({ minimum: 1, maximum: 100000, default: 256, description: 'Most templated backends alive at once; the least recently used idle one makes room.' }),
  idleTimeout: duration('5m', 'A templated backend unused this long is reclaimed.'),
  newPerSecond: integer({ minimum: 1, maximum: 100000, default: 50, description: 'New templated backends made per second (a token bucket, burst: the same number), for the whole gateway: past it a request for an environment not alive is answered 503 with Retry-After and DNS is asked nothing. Environments alive, or alive before a reload, are not counted.' })
}, 'Bounds on backends made from templates (web-{env}) on demand.')

const accessLog = Section({
  format: Defaulted(OneOf(['json', 'common'], { default: 'json', description: 'json: pino JSON lines; common: Apache combined log format, for people who grep.' })),
  // One node with two types (not anyOf): ajv reports one message for a wrong value, the reference prints one row.
  query: Defaulted(Type.Unsafe<boolean | string[]>({
    type: ['boolean', 'array'],
    items: { type: 'string', minLength: 1 },
    default: false,
    description: 'The query string in the log (it may carry tokens): false: never; true: as sent; a list of keys: those keys with their values, every other key with its value replaced by REDACTED (a part without =, by REDACTED alone). Keys are compared decoded and case-sensitively.'
  }))
}, 'One line per request on stdout.')

const drain = Section({
  delay: duration('5s', 'After SIGTERM, readyz answers 503 this long before the listener closes.'),
  timeout: duration('30s', 'Longest wait for in-flight requests to finish.')
}, 'What SIGTERM does before exiting 0.')

const acme = Type.Optional(Closed({
  directory: Defaulted(Type.String({ pattern: '^https?://', default: 'https://acme-v02.api.letsencrypt.org/directory', description: 'The ACME directory URL (RFC 8555 §7.1.1). The default is Let\'s Encrypt\'s production CA.' })),
  directoryCa: Type.Optional(Type.String({ minLength: 1, description: 'A PEM file of CA certificates to trust for the directory\'s own HTTPS (a private CA, a test CA); unset: the system\'s.' })),
  email: Type.Optional(Type.String({ pattern: '^[^@\\s]+@[^@\\s]+$', description: 'Contact for the ACME account (expiry notices).' })),
  agreeToTerms: Constant(true, { description: 'Must be true: you agree to the CA\'s terms of service.' }),
  eab: Type.Optional(Closed({
    kid: Type.String({ minLength: 1, description: 'Key identifier from the CA.' }),
    hmacKey: Type.String({ minLength: 1, description: 'The HMAC key from the CA, base64url.' })
  }, { description: 'External account binding (RFC 8555 §7.3.4), for CAs that require one.' })),
  storage: Section({
    dir: Type.Optional(Type.String({ minLength: 1, description: 'Directory for the account key and the certificates (private keys mode 0600, written atomically); each directory URL has its own folder in it. The default when redis is not set: /var/lib/srvgate/acme.' })),
    redis: Type.Optional(Closed({
      url: Type.String({ pattern: '^rediss?://', description: 'redis://[user:password@]host:port[/db], or rediss:// for TLS.' }),
      prefix: Defaulted(Type.String({ default: 'srvgate:acme:', description: 'Prefix of every key and channel srvgate uses.' }))
    }, { description: 'Shared storage for several replicas behind one balancer: one account, each name ordered by one replica at a time (a lease), certificates and challenges seen by all within a second.' }))
  }, 'Where ACME accounts and certificates are kept (dir or redis); a restart serves from here, CA reachable or not.'),
  names: Defaulted(Type.Array(Type.String({ minLength: 1 }), { uniqueItems: true, default: [], description: 'DNS names to obtain certificates for at start (one certificate each), renewed before they expire. No wildcards: those need DNS-01.' })),
  challenges: Defaulted(Type.Array(OneOf(['http-01', 'tls-alpn-01']), { minItems: 1, uniqueItems: true, default: ['http-01', 'tls-alpn-01'], description: 'Challenge types srvgate answers: http-01 on listen.http (the CA connects to port 80), tls-alpn-01 on listen.https (port 443, RFC 8737).' })),
  renewBefore: duration('30d', 'Renew this long before notAfter (at most a third of the certificate\'s lifetime before it), unless the CA suggests a renewal window (ARI, RFC 9773): then at a moment in that window.'),
  onDemand: Type.Optional(Closed({
    frontends: Type.Array(Type.String({ minLength: 1 }), { minItems: 1, uniqueItems: true, description: 'Templated frontends ({env} in match.host) whose environments get a certificate at their first handshake.' }),
    perMinute: integer({ minimum: 1, maximum: 100000, default: 10, description: 'Orders on demand per minute at most (a token bucket holding this many).' }),
    max: integer({ minimum: 1, maximum: 1000000, default: 1000, description: 'Certificates obtained on demand held at once at most.' }),
    negativeTtl: duration('1m', 'A name refused (no such frontend, env not matching env.pattern, no usable instance) is refused again this long without asking.'),
    wait: duration('20s', 'Longest a handshake is held while its certificate is obtained; then the unrecognized_name alert (the order goes on).')
  }, {
    description: 'Certificates obtained at the first handshake for an environment that exists: the host matches one of these frontends, its env passes env.pattern, and its templated backend has a usable instance. Anything else gets the unrecognized_name alert and causes no order.'
  }))
}, {
  required: ['agreeToTerms'],
  description: 'Certificates obtained and renewed from an ACME CA (Let\'s Encrypt and others). The primary orders them; every worker serves them. A certificate file for a name wins over an ACME one.'
}))

const tls = Type.Optional(Closed({
  certificates: Defaulted(Type.Array(Closed({
    cert: Type.String({ minLength: 1, description: 'Certificate chain (PEM): the leaf first, then intermediates.' }),
    key: Type.String({ minLength: 1, description: 'Its private key (PEM).' })
  }), {
    default: [],
    description: 'PEM files; each certificate serves the DNS names of its subjectAltName (exact names first, then the most specific wildcard). At least one, unless tls.acme is set.'
  })),
  acme,
  default: Type.Optional(Type.String({ minLength: 1, description: 'A name of one of the certificates: served to clients that send no SNI or a name no certificate carries. Unset: such handshakes fail with an alert.' })),
  minVersion: Defaulted(OneOf(['TLSv1.2', 'TLSv1.3'], { default: 'TLSv1.2', description: 'Oldest TLS version accepted.' })),
  redirectHttp: Defaulted(Type.Boolean({ default: false, description: 'The http listener answers 308 to https (same host, path and query).' })),
  sessionTickets: Section({
    enabled: Defaulted(Type.Boolean({ default: true, description: 'Resume TLS sessions by ticket (RFC 8446 §4.6.1; RFC 5077 for TLS 1.2): a returning client skips the key exchange and the certificate. One key, made at start, held by the primary and shared by every worker, so a ticket works on any worker. false: every handshake is a full one. A change takes a restart.' })),
    rotateEvery: duration('12h', 'A new ticket key this often (a fresh one at every start too). srvgate keeps one key: a ticket made with the previous key gets a full handshake, as it would after a restart.')
  }, 'Session resumption by ticket on listen.https.'),
  hsts: Type.Optional(Closed({
    maxAge: durationString({ description: 'max-age, e.g. 365d.' }),
    includeSubDomains: Defaulted(Type.Boolean({ default: false, description: 'Add includeSubDomains.' }))
  }, {
    description: 'Strict-Transport-Security on HTTPS answers (never on plain HTTP).'
  }))
}, {
  description: 'Certificates for listen.https, picked by SNI.'
}))

const dns = Type.Optional(Closed({
  listen: Type.Array(Type.String({ format: 'address' }), { minItems: 1, description: 'host:port addresses; UDP and TCP on each.' }),
  zone: Type.String({ minLength: 1, description: 'The names srvgate answers for (e.g. srvgate.internal); names outside it are REFUSED.' }),
  ttl: duration('5s', 'TTL of fresh answers (at least 1s). Answers from stale instance sets (DNS behind srvgate down) carry 30 s (RFC 8767).'),
  names: MapOf(Closed({
    backend: Type.Optional(Type.String({ minLength: 1, description: 'A backend with discovery.' })),
    gateway: Type.Optional(Constant(true, { description: 'Answer with srvgate\'s own public address (for clients that cache addresses forever).' }))
  }, {
    description: 'backend: the usable instances of that backend; gateway: true: srvgate\'s own public listener.'
  }), {
    description: 'Names under zone: NAME.zone (A, AAAA) and _NAME._tcp.zone (SRV). ns is reserved: ns.zone is the face itself (the zone\'s NS and SOA), answering with the dns.listen addresses.',
    propertyNames: { pattern: '^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$' }
  }),
  rateLimit: Section({
    perSecond: integer({ minimum: 1, maximum: 1000000, default: 500, description: 'Queries per second one source block (/24, /56) may send.' }),
    burst: integer({ minimum: 1, maximum: 1000000, default: 1000, description: 'Queries one source block may send at once after a quiet time.' }),
    globalPerSecond: integer({ minimum: 1, maximum: 1000000, default: 20000, description: 'UDP answers per second over all sources (spoofed sources are free, so only this bounds a flood); TCP is bounded by dns.tcp instead.' })
  }, 'A token bucket per source block (/24 for IPv4, /56 for IPv6, as BIND\'s RRL), and one over all UDP answers; queries beyond them are dropped (and counted).'),
  tcp: Section({
    messageTimeout: duration('2s', 'A whole message (length prefix and body) must arrive within this after its first byte; a connection\'s first message within this after it opens. Else the connection is closed.'),
    idleTimeout: duration('10s', 'A connection with no message under way is closed after this (between messages, after an answer).'),
    maxConnections: integer({ minimum: 1, maximum: 100000, default: 256, description: 'TCP connections one process holds open at once over every dns.listen address (BIND tcp-clients); more are refused. Per process, as client.maxConnections: with workers each holds up to this many.' }),
    maxConnectionsPerSource: integer({ minimum: 1, maximum: 100000, default: 16, description: 'TCP connections one process holds open at once from one source address (an IPv6 /64); more are refused. Per process: with workers, a source\'s connections spread round-robin over them.' })
  }, 'DNS over TCP (RFC 7766 §6.2.3): deadlines and connection caps, so clients that hold connections cannot lock others out. Connections over a cap are closed at once (the oldest are never cut to make room).')
}, {
  description: 'The DNS face: srvgate answers A, AAAA and SRV queries for its own names from its health-filtered view (for DNS-only clients). Authoritative for zone only; never recursive.'
}))

const tracing = Type.Optional(Closed({
  otlp: Type.Optional(Closed({
    endpoint: Type.Optional(Type.String({ format: 'http-url', description: 'The collector\'s OTLP/HTTP traces URL (http://collector:4318/v1/traces); a URL with no path gets /v1/traces. Unset: OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, else OTEL_EXPORTER_OTLP_ENDPOINT + /v1/traces, else http://localhost:4318/v1/traces.' })),
    protocol: Type.Optional(OneOf(['http/protobuf', 'http/json'], { description: 'OTLP encoding. Unset: OTEL_EXPORTER_OTLP_TRACES_PROTOCOL, else OTEL_EXPORTER_OTLP_PROTOCOL, else http/protobuf.' })),
    headers: Type.Optional(Type.Unsafe<Record<string, string>>({ type: 'object', additionalProperties: { type: 'string' }, description: 'Headers sent with each export (an API key). Merged over OTEL_EXPORTER_OTLP_TRACES_HEADERS / OTEL_EXPORTER_OTLP_HEADERS.' })),
    timeout: Type.Optional(durationString({ description: 'How long one export may take before its spans are dropped. Unset: OTEL_EXPORTER_OTLP_TRACES_TIMEOUT, else 10s.' }))
  }, { description: 'Where spans go: OTLP over HTTP, batched by each process that serves traffic.' })),
  sampleRatio: Type.Optional(Type.Number({ minimum: 0, maximum: 1, description: 'Share of new traces recorded (TraceIdRatioBased), parent-based: a request whose traceparent says sampled is recorded, one that says not is not. Unset: OTEL_TRACES_SAMPLER_ARG when OTEL_TRACES_SAMPLER is parentbased_traceidratio or traceidratio, else 1.' })),
  serviceName: Type.Optional(Type.String({ minLength: 1, description: 'The service.name resource attribute. Unset: OTEL_SERVICE_NAME, else srvgate.' })),
  restartAtEdge: Type.Optional(Type.Boolean({ description: 'Ignore traceparent and tracestate from clients outside trustedProxies and start a new trace (the client\'s trace id is not continued). Default false: every client\'s traceparent is continued, as Envoy and Traefik do.' }))
}, {
  description: 'W3C trace context and spans exported over OTLP (a SERVER span a request, a CLIENT span an attempt). Off when absent (`tracing: {}` turns it on with every value from OTEL_* or the defaults); OTEL_SDK_DISABLED=true turns it off too. Fields set here win over the OTEL_* environment variables.'
}))

const ttlClamp = (min: [string, string], max: [string, string], description: string) => Section({
  min: duration(...min),
  max: duration(...max)
}, description)

const resolvers = Defaulted(MapOf(Closed({
  nameservers: Type.Array(Type.String({ format: 'address' }), {
    minItems: 1,
    description: 'Tried in order, failing over: host:port or [v6]:port. A host name (consul:8600) is resolved by the system resolver at load and on every reload.'
  }),
  timeout: duration('500ms', 'Per attempt.'),
  attempts: integer({ minimum: 1, maximum: 10, default: 3, description: 'Queries in total over all nameservers.' }),
  ttl: ttlClamp(['1s', 'Floor of the record TTL (Consul answers TTL 0).'], ['30s', 'Ceiling of the record TTL.'], 'Clamp of record TTLs, CoreDNS style.'),
  targetTtl: ttlClamp(['5s', 'Floor: node addresses change far less often than instance sets.'], ['5m', 'Ceiling.'], 'Clamp of the TTL of SRV targets\' addresses, when an answer leaves them out of its additional section and they are asked one by one (cached by target name).'),
  staleFor: duration('60s', 'Serve the last good answer this long past its expiry while DNS fails.'),
  negativeTtl: duration('5s', 'Cache NXDOMAIN and empty answers this long.'),
  emptyGrace: duration('2s', 'A known instance set survives NXDOMAIN/empty answers this long before it is emptied.'),
  ednsPayload: integer({ minimum: 512, maximum: 65535, default: 4096, description: 'EDNS0 UDP payload size.' }),
  addressPolicy
}, {
  description: 'One resolver: its nameservers and cache rules.'
}), {
  default: {},
  description: 'Named DNS resolvers, referred to by backends.',
  propertyNames: nameKey
}))

const backends = Defaulted(MapOf(backend, {
  default: {},
  description: 'Named backends: where instances come from and how requests reach them.',
  propertyNames: nameKey
}))

const method = Type.Optional(IfThenElse({
  description: 'An upper-case HTTP method or a list of them.',
  if: { type: 'array' },
  then: Type.Array(Type.String({ pattern: '^[A-Z]+$' }), { minItems: 1 }),
  else: Type.String({ pattern: '^[A-Z]+$' })
}))

const headerRules = (what: string) => Closed({
  set: Type.Optional(Type.Unsafe<Record<string, string>>({ type: 'object', additionalProperties: { type: 'string' }, description: 'Header name → value, set on ' + what + '.' })),
  remove: Type.Optional(Type.Array(Type.String({ minLength: 1 }), { description: 'Header names removed from ' + what + '.' }))
}, { description: `Rules for ${what}.` })

const frontends = Defaulted(Type.Array(Closed({
  name: Type.String({ ...nameKey, description: 'Shown in logs, metrics and /admin/state.' }),
  match: Closed({
    host: Type.Optional(Type.String({ minLength: 1, description: 'exact, *.suffix, or a label {env} capture.' })),
    pathPrefix: Type.Optional(Type.String({ pattern: '^/', description: 'A plain string prefix of the path (/api matches /apix; write /api/ for a segment).' })),
    headers: Type.Optional(Type.Unsafe<Record<string, string>>({ type: 'object', additionalProperties: Type.String(), description: 'Header name → exact value.' })),
    method
  }, {
    description: 'All given conditions must hold; {} matches every request.'
  }),
  env: Type.Optional(Closed({
    pattern: Type.String({ minLength: 1, description: 'Regular expression a captured {env} must match.' })
  }, {
    description: 'Required with an {env} capture: values failing the pattern are 404.'
  })),
  backend: frontendBackend,
  access,
  rateLimit,
  compress,
  rewrite: Type.Optional(Closed({
    stripPrefix: Type.Optional(Type.String({ pattern: '^/', description: 'Removed from the start of the path.' })),
    addPrefix: Type.Optional(Type.String({ pattern: '^/', description: 'Added to the start of the path (after stripPrefix): /v2 makes /users /v2/users.' }))
  }, {
    description: 'Changes to the request before it is forwarded.'
  })),
  redirect: Type.Optional(Closed({
    to: Type.String({ minLength: 1, description: 'Where to: a URL or a path, with {host} (the request\'s host, no port), {path}, {query} (without its ?; a ?{query} with no query is left out whole) and {env}.' }),
    status: Defaulted(OneOf([301, 302, 307, 308], { default: 302, description: '301/308: permanent (308 keeps the method and body), 302/307: temporary (307 keeps them).' }))
  }, {
    description: 'Answer every request this frontend takes with a redirect, before any backend is asked (the backend is not used; Caddy redir, Traefik redirectRegex).'
  })),
  headers: Type.Optional(Closed({
    request: Type.Optional(headerRules('the request an instance receives')),
    response: Type.Optional(headerRules('the answer the client gets (answers from an instance; srvgate\'s own error answers are left as they are)'))
  }, {
    description: 'Header rules (Caddy header_up/header_down, HAProxy set-header/del-header): remove, then set (replacing any value of that name). {env} in a value is the captured environment. Hop-by-hop headers and the ones srvgate writes itself (X-Forwarded-*, Forwarded, X-Real-IP, X-Request-Id, traceparent, Strict-Transport-Security) are refused.'
  }))
}), {
  default: [],
  description: 'Routing rules; the first that matches wins, in file order.'
}))

const GatewayDocumentSchema = Type.Object({
  listen,
  admin,
  client,
  trustedProxies,
  templatedBackends,
  accessLog,
  drain,
  tls,
  metrics: Section({
    perInstance: Defaulted(Type.Boolean({ default: false, description: 'Attempts and latency per instance (srvgate_upstream_instance_attempts_total, srvgate_upstream_instance_latency_seconds), as HAProxy\'s per-server stats; at most 1000 instances a process, a departed instance\'s series removed.' }))
  }, 'What /metrics shows beyond the defaults.'),
  statePath: Type.Optional(Type.String({ minLength: 1, description: 'File for last-known instance sets; unset: none kept.' })),
  workers: Type.Optional(Type.Integer({
    minimum: 1,
    maximum: 256,
    description: 'Worker processes serving traffic (node:cluster); unset: one per core the process may use (os.availableParallelism()). 1: a single process. The SRVGATE_WORKERS environment variable wins. Discovery, health checks, the state file and the admin listener run once, in the primary.'
  })),
  dns,
  tracing,
  resolvers,
  backends,
  frontends
}, {
  $schema: 'https://json-schema.org/draft/2020-12/schema',
  $id: 'https://srvgate.dev/schema/gateway.json',
  title: 'srvgate configuration',
  additionalProperties: false
})

/** The configuration document after validation, with every default filled in. */
export type GatewayDocument = Static<typeof GatewayDocumentSchema>

/** The same schema as plain JSON Schema: what ajv compiles and config/gateway.schema.json holds. */
export const gatewaySchema = toJsonSchema(GatewayDocumentSchema)
