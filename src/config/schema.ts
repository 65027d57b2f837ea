/**
 * The configuration document's JSON Schema (draft 2020-12), with every default.
 * It is the single source of truth: ajv validates against it and fills
 * defaults, and `config/gateway.schema.json` (for editors) is written from it
 * by `npm run schema` and kept in step by a test.
 *
 * Custom formats: `duration` ('250ms', '1s', '5m') and `address` ('host:port',
 * '[::1]:8600'); both are checked by util/ parsers.
 */

const duration = (defaultValue: string, description: string) =>
  ({ type: 'string', format: 'duration', default: defaultValue, description }) as const

const backendOptions = {
  balance: {
    enum: ['weighted', 'round-robin', 'least-request', 'random', 'hash'],
    default: 'weighted',
    description: 'How requests spread over instances. weighted follows SRV priority and weight (RFC 2782).'
  },
  hashOn: {
    type: 'string',
    pattern: '^(header:[A-Za-z0-9!#$%&\'*+.^_`|~-]+|cookie:[^\\s;=]+|client-ip|path)$',
    description: 'Key for balance: hash. header:NAME | cookie:NAME | client-ip | path.'
  },
  healthCheck: {
    type: 'object',
    additionalProperties: false,
    description: 'Active HTTP health check run against every discovered instance.',
    properties: {
      path: { type: 'string', pattern: '^/', default: '/healthz' },
      interval: duration('5s', 'Time between checks of one instance (jittered).'),
      timeout: duration('1s', 'Time allowed for one check.'),
      rise: { type: 'integer', minimum: 1, default: 2, description: 'Passing checks in a row to mark an instance healthy.' },
      fall: { type: 'integer', minimum: 1, default: 3, description: 'Failing checks in a row to mark an instance unhealthy.' }
    }
  },
  outlier: {
    type: 'object',
    additionalProperties: false,
    default: {},
    description: 'Passive health: eject instances that fail consecutive requests.',
    properties: {
      consecutiveFailures: { type: 'integer', minimum: 1, default: 3 },
      ejectFor: duration('10s', 'Base ejection time; grows with repeated ejections.'),
      maxEjectedPercent: { type: 'integer', minimum: 0, maximum: 100, default: 50 }
    }
  },
  retry: {
    type: 'object',
    additionalProperties: false,
    default: {},
    properties: {
      attempts: { type: 'integer', minimum: 0, maximum: 10, default: 2, description: 'Retries after the first try.' },
      on: {
        type: 'array',
        uniqueItems: true,
        items: { enum: ['connect-failure', 502, 503, 504] },
        default: ['connect-failure', 502, 503, 504]
      }
    }
  },
  timeouts: {
    type: 'object',
    additionalProperties: false,
    default: {},
    properties: {
      connect: duration('1s', 'Time to open a connection to an instance.'),
      response: duration('30s', 'Time from request sent to response headers received.')
    }
  }
} as const

const discovery = {
  type: 'object',
  additionalProperties: false,
  required: ['resolver'],
  description: 'Where the instances come from: an SRV name, or an A/AAAA name plus a fixed port.',
  properties: {
    resolver: { type: 'string', minLength: 1, description: 'Name of an entry under resolvers.' },
    srv: { type: 'string', minLength: 1, description: 'SRV name, e.g. _web._prod.service.consul.' },
    a: { type: 'string', minLength: 1, description: 'A/AAAA name for DNS-only services; needs port.' },
    port: { type: 'integer', minimum: 1, maximum: 65535 }
  },
  anyOf: [{ required: ['srv'] }, { required: ['a'] }],
  not: { required: ['srv', 'a'] },
  dependentRequired: { a: ['port'] }
} as const

export const gatewaySchema = {
  $schema: 'https://json-schema.org/draft/2020-12/schema',
  $id: 'https://srvgate.dev/schema/gateway.json',
  title: 'srvgate configuration',
  type: 'object',
  additionalProperties: false,
  required: ['listen'],
  properties: {
    listen: {
      type: 'object',
      additionalProperties: false,
      required: ['http'],
      properties: {
        http: { type: 'string', format: 'address', description: 'Public listener, host:port.' },
        admin: { type: 'string', format: 'address', default: '127.0.0.1:9901', description: 'Admin API, metrics and dashboard.' }
      }
    },
    admin: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: {
        token: { type: 'string', minLength: 1, description: 'Bearer token required on the admin listener.' }
      }
    },
    drain: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: {
        delay: duration('5s', 'After SIGTERM, readyz answers 503 this long before the listener closes.'),
        timeout: duration('30s', 'Longest wait for in-flight requests to finish.')
      }
    },
    statePath: { type: 'string', minLength: 1, description: 'File for last-known instance sets; unset: none kept.' },
    resolvers: {
      type: 'object',
      default: {},
      propertyNames: { pattern: '^[A-Za-z0-9][A-Za-z0-9_.-]*$' },
      additionalProperties: {
        type: 'object',
        additionalProperties: false,
        required: ['nameservers'],
        properties: {
          nameservers: {
            type: 'array',
            minItems: 1,
            items: { type: 'string', format: 'address' },
            description: 'Tried in order, failing over. IP literals: host:port or [v6]:port.'
          },
          timeout: duration('500ms', 'Per attempt.'),
          attempts: { type: 'integer', minimum: 1, maximum: 10, default: 3, description: 'Queries in total over all nameservers.' },
          ttl: {
            type: 'object',
            additionalProperties: false,
            default: {},
            properties: {
              min: duration('1s', 'Floor of the record TTL (Consul answers TTL 0).'),
              max: duration('30s', 'Ceiling of the record TTL.')
            }
          },
          staleFor: duration('60s', 'Serve the last good answer this long past its expiry while DNS fails.'),
          negativeTtl: duration('5s', 'Cache NXDOMAIN and empty answers this long.'),
          emptyGrace: duration('2s', 'A known instance set survives NXDOMAIN/empty answers this long before it is emptied.'),
          ednsPayload: { type: 'integer', minimum: 512, maximum: 65535, default: 4096, description: 'EDNS0 UDP payload size.' }
        }
      }
    },
    backends: {
      type: 'object',
      default: {},
      propertyNames: { pattern: '^[A-Za-z0-9][A-Za-z0-9_.-]*$' },
      additionalProperties: {
        type: 'object',
        additionalProperties: false,
        required: ['discovery'],
        properties: { discovery, ...backendOptions }
      }
    },
    frontends: {
      type: 'array',
      default: [],
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['name', 'match', 'backend'],
        properties: {
          name: { type: 'string', pattern: '^[A-Za-z0-9][A-Za-z0-9_.-]*$' },
          match: {
            type: 'object',
            additionalProperties: false,
            properties: {
              host: { type: 'string', minLength: 1, description: 'exact, *.suffix, or a label {env} capture.' },
              pathPrefix: { type: 'string', pattern: '^/' },
              headers: { type: 'object', additionalProperties: { type: 'string' } },
              method: {
                description: 'An upper-case HTTP method or a list of them.',
                if: { type: 'array' },
                then: { type: 'array', minItems: 1, items: { type: 'string', pattern: '^[A-Z]+$' } },
                else: { type: 'string', pattern: '^[A-Z]+$' }
              }
            }
          },
          env: {
            type: 'object',
            additionalProperties: false,
            required: ['pattern'],
            properties: { pattern: { type: 'string', minLength: 1, description: 'Regular expression a captured {env} must match.' } }
          },
          backend: {
            description: 'A backend name, or a template instantiated per captured {env}.',
            if: { type: 'object' },
            then: {
              type: 'object',
              additionalProperties: false,
              required: ['template', 'discovery'],
              properties: {
                template: { type: 'string', pattern: '\\{env\\}' },
                discovery,
                ...backendOptions
              }
            },
            else: { type: 'string', minLength: 1 }
          },
          rewrite: {
            type: 'object',
            additionalProperties: false,
            properties: { stripPrefix: { type: 'string', pattern: '^/' } }
          }
        }
      }
    }
  }
} as const
