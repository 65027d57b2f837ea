import { Type, type Static, type TObject } from '@sinclair/typebox'
import { DURATION_PATTERN } from '../util/duration.js'
import { Closed, Defaulted, IfThenElse, Implied, OneOf, Section } from './schema-kit.js'

/**
 * The schema of what a backend says (discovery, balance, health, retries,
 * TLS to instances), shared by named backends, templated backends and the
 * members of a templated split. schema.ts assembles the whole document.
 */

/** A duration string: the format (checked by util/duration.ts) and the same syntax as a pattern, for editors. */
export const durationString = (options: { default?: string, description: string }) =>
  Type.String({ format: 'duration', pattern: DURATION_PATTERN, ...options })

export const duration = (defaultValue: string, description: string) => Defaulted(durationString({ default: defaultValue, description }))

const optionalDuration = (description: string) => Type.Optional(durationString({ description }))

export const cidrList = (description: string, options: { default?: string[] } = {}) => Type.Array(Type.String({ format: 'cidr' }), { description, ...options })

export const addressPolicy = Type.Optional(Closed({
  allow: Type.Optional(cidrList('When set, only addresses in these blocks are used (CIDR, e.g. 10.0.0.0/8; a bare address is one host).')),
  deny: Type.Optional(cidrList('Addresses in these blocks are never used.'))
}, {
  description: 'Which discovered addresses may be instances. 0.0.0.0, ::, multicast, broadcast and cloud metadata addresses (169.254.169.254, fd00:ec2::254) are always refused, and so are srvgate\'s own listeners.'
}))

/** A value taken from each request: for hashing to an instance, or to a split's member. */
const requestKey = (description: string) => Type.Optional(Type.String({
  pattern: '^(header:[A-Za-z0-9!#$%&\'*+.^_`|~-]+|cookie:[^\\s;=]+|client-ip|path)$',
  description
}))

export const integer = (options: { minimum: number, maximum?: number, default: number, description: string }) => Defaulted(Type.Integer(options))

export const backendOptions = {
  balance: Defaulted(OneOf(['weighted', 'round-robin', 'least-request', 'random', 'hash'], {
    default: 'weighted',
    description: 'How requests spread over instances. weighted follows SRV priority and weight (RFC 2782).'
  })),
  hashOn: requestKey('Key for balance: hash. header:NAME | cookie:NAME | client-ip | path.'),
  healthCheck: Type.Optional(Closed({
    path: Defaulted(Type.String({ pattern: '^/', default: '/healthz', description: 'GET this path; 2xx or 3xx passes.' })),
    interval: duration('5s', 'Time between checks of one instance (jittered).'),
    timeout: duration('1s', 'Time allowed for one check.'),
    rise: integer({ minimum: 1, default: 2, description: 'Passing checks in a row to mark an instance healthy.' }),
    fall: integer({ minimum: 1, default: 3, description: 'Failing checks in a row to mark an instance unhealthy.' })
  }, {
    description: 'Active HTTP health check run against every discovered instance.'
  })),
  outlier: Section({
    consecutiveFailures: integer({ minimum: 1, default: 3, description: 'Connect failures, timeouts, resets or 5xx in a row that eject an instance.' }),
    ejectFor: duration('10s', 'Base ejection time; grows with repeated ejections (capped at 5m).'),
    maxEjectedPercent: integer({ minimum: 0, maximum: 100, default: 50, description: 'Most of a backend\'s instances ejected at once (its errors are not turned into 503s). Not applied while its traffic has somewhere else to go (a split sibling or failover target with a usable instance): then every failing instance may be ejected, the last one too. 0: never eject.' })
  }, 'Passive health: eject instances that fail consecutive requests.'),
  retry: Section({
    attempts: integer({ minimum: 0, maximum: 10, default: 2, description: 'Retries after the first try.' }),
    on: Defaulted(Type.Array(OneOf(['connect-failure', 502, 503, 504]), {
      uniqueItems: true,
      description: 'connect-failure: any method; 502/503/504: idempotent methods only.',
      default: ['connect-failure', 502, 503, 504]
    }))
  }, 'Retries on another instance, never the same one.'),
  timeouts: Section({
    connect: duration('1s', 'Time to open a connection to an instance.'),
    response: duration('30s', 'Time waiting for a pooled connection plus time from request sent to response headers; also the longest pause within a response body.')
  }, 'Per attempt.'),
  maxConnectionsPerInstance: integer({
    minimum: 1,
    maximum: 65536,
    default: 256,
    description: 'Most connections open to one instance (HAProxy maxconn per server); further requests wait for one, within timeouts.response.'
  }),
  protocol: Defaulted(OneOf(['http1', 'h2c', 'h2'], {
    default: 'http1',
    description: 'How instances are spoken to: http1 (HTTP/1.1, over tls when set), h2c (HTTP/2 without TLS, prior knowledge), h2 (HTTP/2 over tls, ALPN h2 only). gRPC instances need h2c or h2.'
  })),
  maxConnectionAge: optionalDuration('Connections to an instance older than this are not reused (recycled after their request); unset: kept while in use and alive.'),
  tls: Type.Optional(Closed({
    serverName: Type.String({ minLength: 1, description: 'SNI sent to every instance, and the name its certificate must carry.' }),
    ca: Type.Optional(Type.String({ minLength: 1, description: 'PEM file of the CA(s) that sign the instances\' certificates; unset: the system\'s.' })),
    verify: Defaulted(Type.Boolean({ default: true, description: 'false accepts any certificate (for tests only).' }))
  }, {
    description: 'Instances speak HTTPS. An SRV target (web-1.node.dc1.consul) is not a name certificates carry: serverName is what is sent as SNI and verified.'
  })),
  slowStart: optionalDuration('A new instance (in DNS, back from ejection or from a failed active check) gets a share that ramps linearly from 10 % to its full weight over this time (weighted, round-robin, least-request, random). When every usable instance is new (a cold start, a mass replacement) none is held back. Unset: full share at once.'),
  addressPolicy
}

const templateName = (description: string) => Type.String({ pattern: '\\{env\\}', description })
const splitWeight = Type.Integer({ minimum: 0, maximum: 1000000, description: 'Relative share; 0 takes no traffic.' })
const stickyOn = requestKey('Optional: requests with the same key always go to the same member while the weights stand, on every replica (rendezvous hashing, no state). header:NAME | cookie:NAME | client-ip | path. Requests without the key are shared by weight.')

export const discovery = Closed({
  resolver: Type.String({ minLength: 1, description: 'Name of an entry under resolvers.' }),
  srv: Type.Optional(Type.String({ minLength: 1, description: 'SRV name, e.g. _web._prod.service.consul.' })),
  a: Type.Optional(Type.String({ minLength: 1, description: 'A/AAAA name for DNS-only services; needs port.' })),
  port: Type.Optional(Type.Integer({ minimum: 1, maximum: 65535, description: 'The port for a: discovery.' }))
}, {
  description: 'Where the instances come from: an SRV name, or an A/AAAA name plus a fixed port.',
  anyOf: [{ required: ['srv'] }, { required: ['a'] }],
  not: { required: ['srv', 'a'] },
  dependentRequired: { a: ['port'] }
})

/** backends.NAME: a split of other backends, or instances found by discovery. */
export const backend = IfThenElse({
  description: 'One backend: instances found by discovery, or a split of other backends by weight.',
  if: { type: 'object', required: ['split'] },
  then: Closed({
    split: Implied(Type.Array(Closed({
      backend: Type.String({ minLength: 1, description: 'Name of a backend with discovery.' }),
      weight: splitWeight
    }, {
      description: 'One member.'
    }), {
      minItems: 1,
      description: 'The member backends (each with discovery; splits do not nest) and their weights.'
    })),
    stickyOn
  }, {
    description: 'A split: each request goes to one member backend, shared by weight among the members that have a usable instance. Members keep their own balance, health and retry settings.'
  }),
  else: Closed({
    discovery,
    failover: Type.Optional(Type.Array(discovery, {
      minItems: 1,
      maxItems: 8,
      description: 'Other datacenters, tried in order, only while the backend has no usable instance (Consul prepared-query failover). Each is resolved in the background like discovery; traffic returns as soon as discovery has a usable instance again.'
    })),
    ...backendOptions
  })
})

/** frontends[].backend: a backend name, or a template per captured {env}. */
export const frontendBackend = IfThenElse({
  description: 'A backend name, or a template instantiated per captured {env} (a backend, or a split of templated backends).',
  if: { type: 'object' },
  then: IfThenElse({
    if: { type: 'object', required: ['split'] },
    then: Closed({
      template: templateName('The backend name per env, e.g. web-{env}.'),
      split: Type.Array(Closed({
        template: templateName('The member backend name per env, e.g. web-{env}-v2.'),
        weight: splitWeight,
        discovery,
        ...backendOptions
      }, {
        description: 'One member.'
      }), {
        minItems: 1,
        description: 'The members: templated backends with their weights.'
      }),
      stickyOn
    }, {
      description: 'A templated split: per env, each request goes to one member, by weight, among the members of that env with a usable instance (never another env\'s).'
    }),
    else: Closed({
      template: templateName('The backend name per env, e.g. web-{env}.'),
      discovery,
      ...backendOptions
    })
  }),
  else: Type.String({ minLength: 1 })
})

// The validated document's parts the compiler reads, derived from the schema above.
export type DiscoveryDocument = Static<typeof discovery>
export type BackendOptionsDocument = Static<TObject<typeof backendOptions>>
export type AddressPolicyDocument = NonNullable<BackendOptionsDocument['addressPolicy']>
export type BackendDocument = Static<typeof backend>
export type SplitDocument = Extract<BackendDocument, { split: unknown }>
export type DiscoveryBackendDocument = Exclude<BackendDocument, { split: unknown }>
export type FrontendBackendDocument = Static<typeof frontendBackend>
// A string has a `split` method: strings are set aside before asking for one.
export type TemplateSplitDocument = Extract<Exclude<FrontendBackendDocument, string>, { split: unknown }>
export type BackendTemplateDocument = Exclude<FrontendBackendDocument, string | { split: unknown }>
