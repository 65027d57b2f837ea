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

const cidrList = (description: string) =>
  ({ type: 'array', items: { type: 'string', format: 'cidr' }, description }) as const

const addressPolicy = {
  type: 'object',
  additionalProperties: false,
  description: 'Which discovered addresses may be instances. 0.0.0.0, ::, multicast, broadcast and cloud metadata addresses (169.254.169.254, fd00:ec2::254) are always refused, and so are srvgate\'s own listeners.',
  properties: {
    allow: cidrList('When set, only addresses in these blocks are used (CIDR, e.g. 10.0.0.0/8; a bare address is one host).'),
    deny: cidrList('Addresses in these blocks are never used.')
  }
} as const

/** A value taken from each request: for hashing to an instance, or to a split's member. */
const requestKey = (description: string) => ({
  type: 'string',
  pattern: '^(header:[A-Za-z0-9!#$%&\'*+.^_`|~-]+|cookie:[^\\s;=]+|client-ip|path)$',
  description
}) as const

const backendOptions = {
  balance: {
    enum: ['weighted', 'round-robin', 'least-request', 'random', 'hash'],
    default: 'weighted',
    description: 'How requests spread over instances. weighted follows SRV priority and weight (RFC 2782).'
  },
  hashOn: requestKey('Key for balance: hash. header:NAME | cookie:NAME | client-ip | path.'),
  healthCheck: {
    type: 'object',
    additionalProperties: false,
    description: 'Active HTTP health check run against every discovered instance.',
    properties: {
      path: { type: 'string', pattern: '^/', default: '/healthz', description: 'GET this path; 2xx or 3xx passes.' },
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
      consecutiveFailures: { type: 'integer', minimum: 1, default: 3, description: 'Connect failures, timeouts, resets or 5xx in a row that eject an instance.' },
      ejectFor: duration('10s', 'Base ejection time; grows with repeated ejections (capped at 5m).'),
      maxEjectedPercent: { type: 'integer', minimum: 0, maximum: 100, default: 50, description: 'Most of a backend\'s instances ejected at once (its errors are not turned into 503s). Not applied while its traffic has somewhere else to go (a split sibling or failover target with a usable instance): then every failing instance may be ejected, the last one too. 0: never eject.' }
    }
  },
  retry: {
    type: 'object',
    additionalProperties: false,
    default: {},
    description: 'Retries on another instance, never the same one.',
    properties: {
      attempts: { type: 'integer', minimum: 0, maximum: 10, default: 2, description: 'Retries after the first try.' },
      on: {
        type: 'array',
        uniqueItems: true,
        description: 'connect-failure: any method; 502/503/504: idempotent methods only.',
        items: { enum: ['connect-failure', 502, 503, 504] },
        default: ['connect-failure', 502, 503, 504]
      }
    }
  },
  timeouts: {
    type: 'object',
    additionalProperties: false,
    default: {},
    description: 'Per attempt.',
    properties: {
      connect: duration('1s', 'Time to open a connection to an instance.'),
      response: duration('30s', 'Time waiting for a pooled connection plus time from request sent to response headers; also the longest pause within a response body.')
    }
  },
  maxConnectionsPerInstance: {
    type: 'integer',
    minimum: 1,
    maximum: 65536,
    default: 256,
    description: 'Most connections open to one instance (HAProxy maxconn per server); further requests wait for one, within timeouts.response.'
  },
  maxConnectionAge: {
    type: 'string',
    format: 'duration',
    description: 'Connections to an instance older than this are not reused (recycled after their request); unset: kept while in use and alive.'
  },
  tls: {
    type: 'object',
    additionalProperties: false,
    required: ['serverName'],
    description: 'Instances speak HTTPS. An SRV target (web-1.node.dc1.consul) is not a name certificates carry: serverName is what is sent as SNI and verified.',
    properties: {
      serverName: { type: 'string', minLength: 1, description: 'SNI sent to every instance, and the name its certificate must carry.' },
      ca: { type: 'string', minLength: 1, description: 'PEM file of the CA(s) that sign the instances\' certificates; unset: the system\'s.' },
      verify: { type: 'boolean', default: true, description: 'false accepts any certificate (for tests only).' }
    }
  },
  slowStart: {
    type: 'string',
    format: 'duration',
    description: 'A new instance (in DNS, back from ejection or from a failed active check) gets a share that ramps linearly from 10 % to its full weight over this time (weighted, round-robin, least-request, random). When every usable instance is new (a cold start, a mass replacement) none is held back. Unset: full share at once.'
  },
  addressPolicy
} as const

const templateName = { type: 'string', pattern: '\\{env\\}', description: 'The backend name per env, e.g. web-{env}.' } as const
const splitWeight = { type: 'integer', minimum: 0, maximum: 1000000, description: 'Relative share; 0 takes no traffic.' } as const
const stickyOn = requestKey('Optional: requests with the same key always go to the same member while the weights stand, on every replica (rendezvous hashing, no state). header:NAME | cookie:NAME | client-ip | path. Requests without the key are shared by weight.')

const discovery = {
  type: 'object',
  additionalProperties: false,
  required: ['resolver'],
  description: 'Where the instances come from: an SRV name, or an A/AAAA name plus a fixed port.',
  properties: {
    resolver: { type: 'string', minLength: 1, description: 'Name of an entry under resolvers.' },
    srv: { type: 'string', minLength: 1, description: 'SRV name, e.g. _web._prod.service.consul.' },
    a: { type: 'string', minLength: 1, description: 'A/AAAA name for DNS-only services; needs port.' },
    port: { type: 'integer', minimum: 1, maximum: 65535, description: 'The port for a: discovery.' }
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
      anyOf: [{ required: ['http'] }, { required: ['https'] }],
      description: 'Where srvgate listens: http, https or both.',
      properties: {
        http: { type: 'string', format: 'address', description: 'Public plain-HTTP listener, host:port (optional once https is set).' },
        https: { type: 'string', format: 'address', description: 'Public HTTPS listener (HTTP/2 and HTTP/1.1 by ALPN), host:port; needs tls.certificates.' },
        admin: { type: 'string', format: 'address', default: '127.0.0.1:9901', description: 'Admin API, metrics and dashboard.' }
      }
    },
    admin: {
      type: 'object',
      additionalProperties: false,
      default: {},
      description: 'The admin listener\'s access.',
      properties: {
        token: { type: 'string', minLength: 1, description: 'Bearer token required on the admin listener.' },
        allowedHosts: {
          type: 'array',
          default: [],
          items: { type: 'string', pattern: '^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?\\.?$' },
          description: 'Without a token, every admin path but /healthz and /readyz answers only a Host naming the listener itself (its address, localhost, the listen.admin host, with its port), against DNS rebinding. These names are accepted too, on any port: the name Prometheus scrapes by (a Kubernetes Service, a compose service). Names only, no port. Ignored with a token.'
        }
      }
    },
    client: {
      type: 'object',
      additionalProperties: false,
      default: {},
      description: 'Limits on what clients send (HAProxy timeout http-request and timeout client). A client over a limit gets 408 or 431 and is never forwarded.',
      properties: {
        headersTimeout: duration('10s', 'The whole request head must arrive within this, else 408.'),
        bodyIdleTimeout: duration('30s', 'Longest pause while a request body arrives, else 408 and the connection closes.'),
        keepAliveTimeout: duration('5s', 'An idle keep-alive connection from a client is closed after this.'),
        sendTimeout: duration('30s', 'A client that reads nothing of an answer for this long has it cut, and the instance\'s connection is let go (nginx send_timeout, HAProxy timeout client).'),
        maxHeaderCount: { type: 'integer', minimum: 1, maximum: 10000, default: 100, description: 'Most header fields in a request (Envoy and HAProxy use about 100); more is 431.' },
        maxHeaderBytes: { type: 'integer', minimum: 1024, maximum: 1048576, default: 16384, description: 'Largest request head in bytes (Node\'s default); more is 431.' },
        maxConnections: { type: 'integer', minimum: 1, maximum: 10000000, description: 'Most client connections one process holds open, over the http and https listeners together; past it a new connection is closed at once (srvgate_client_connections_refused_total). Unset: half of the process\'s descriptor limit less 64 (HAProxy derives maxconn from ulimit -n the same way), leaving room for instance connections.' },
        maxConnectionsPerIp: { type: 'integer', minimum: 1, maximum: 10000000, description: 'Most client connections one address holds open per process; past it its new connections are closed at once. Unset: no per-address cap (addresses behind one NAT share it).' },
        maxConcurrentStreams: { type: 'integer', minimum: 1, maximum: 10000, default: 100, description: 'HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS: most requests one HTTP/2 connection has open at once (HAProxy and Envoy: 100).' },
        bufferBodyBytes: { type: 'integer', minimum: 0, maximum: 1073741824, default: 1048576, description: 'A request body up to this size is received whole, in memory, before an instance connection is taken (nginx proxy_request_buffering), and can be replayed on a retry. Larger bodies stream. 0: every body streams.' },
        bufferTotalBytes: { type: 'integer', minimum: 0, maximum: 17179869184, default: 67108864, description: 'Most bytes of request bodies one process buffers at once; past it, bodies stream.' },
        minBodyRate: { type: 'integer', minimum: 0, maximum: 1073741824, default: 1024, description: 'A streamed request body slower than this (bytes per second, averaged over 10 s) is cut with 408. 0: no floor.' }
      }
    },
    trustedProxies: {
      ...cidrList('Peers whose X-Forwarded-For, X-Forwarded-Proto/Host, X-Real-IP and Forwarded headers are believed (CIDR). From any other peer they are replaced by srvgate\'s own. Default: none.'),
      default: []
    },
    templatedBackends: {
      type: 'object',
      additionalProperties: false,
      default: {},
      description: 'Bounds on backends made from templates (web-{env}) on demand.',
      properties: {
        max: { type: 'integer', minimum: 1, maximum: 100000, default: 256, description: 'Most templated backends alive at once; the least recently used idle one makes room.' },
        idleTimeout: duration('5m', 'A templated backend unused this long is reclaimed.'),
        newPerSecond: { type: 'integer', minimum: 1, maximum: 100000, default: 50, description: 'New templated backends made per second (a token bucket, burst: the same number), for the whole gateway: past it a request for an environment not alive is answered 503 with Retry-After and DNS is asked nothing. Environments alive, or alive before a reload, are not counted.' }
      }
    },
    accessLog: {
      type: 'object',
      additionalProperties: false,
      default: {},
      description: 'One line per request on stdout.',
      properties: {
        format: { enum: ['json', 'common'], default: 'json', description: 'json: pino JSON lines; common: Apache combined log format, for people who grep.' }
      }
    },
    drain: {
      type: 'object',
      additionalProperties: false,
      default: {},
      description: 'What SIGTERM does before exiting 0.',
      properties: {
        delay: duration('5s', 'After SIGTERM, readyz answers 503 this long before the listener closes.'),
        timeout: duration('30s', 'Longest wait for in-flight requests to finish.')
      }
    },
    tls: {
      type: 'object',
      additionalProperties: false,
      required: ['certificates'],
      description: 'Certificates for listen.https, picked by SNI.',
      properties: {
        certificates: {
          type: 'array',
          minItems: 1,
          description: 'PEM files; each certificate serves the DNS names of its subjectAltName (exact names first, then the most specific wildcard).',
          items: {
            type: 'object',
            additionalProperties: false,
            required: ['cert', 'key'],
            properties: {
              cert: { type: 'string', minLength: 1, description: 'Certificate chain (PEM): the leaf first, then intermediates.' },
              key: { type: 'string', minLength: 1, description: 'Its private key (PEM).' }
            }
          }
        },
        default: { type: 'string', minLength: 1, description: 'A name of one of the certificates: served to clients that send no SNI or a name no certificate carries. Unset: such handshakes fail with an alert.' },
        minVersion: { enum: ['TLSv1.2', 'TLSv1.3'], default: 'TLSv1.2', description: 'Oldest TLS version accepted.' },
        redirectHttp: { type: 'boolean', default: false, description: 'The http listener answers 308 to https (same host, path and query).' },
        hsts: {
          type: 'object',
          additionalProperties: false,
          required: ['maxAge'],
          description: 'Strict-Transport-Security on HTTPS answers (never on plain HTTP).',
          properties: {
            maxAge: { type: 'string', format: 'duration', description: 'max-age, e.g. 365d.' },
            includeSubDomains: { type: 'boolean', default: false, description: 'Add includeSubDomains.' }
          }
        }
      }
    },
    statePath: { type: 'string', minLength: 1, description: 'File for last-known instance sets; unset: none kept.' },
    workers: {
      type: 'integer',
      minimum: 1,
      maximum: 256,
      description: 'Worker processes serving traffic (node:cluster); unset: one per core the process may use (os.availableParallelism()). 1: a single process. The SRVGATE_WORKERS environment variable wins. Discovery, health checks, the state file and the admin listener run once, in the primary.'
    },
    dns: {
      type: 'object',
      additionalProperties: false,
      required: ['listen', 'zone', 'names'],
      description: 'The DNS face: srvgate answers A, AAAA and SRV queries for its own names from its health-filtered view (for DNS-only clients). Authoritative for zone only; never recursive.',
      properties: {
        listen: { type: 'array', minItems: 1, items: { type: 'string', format: 'address' }, description: 'host:port addresses; UDP and TCP on each.' },
        zone: { type: 'string', minLength: 1, description: 'The names srvgate answers for (e.g. srvgate.internal); names outside it are REFUSED.' },
        ttl: duration('5s', 'TTL of fresh answers (at least 1s). Answers from stale instance sets (DNS behind srvgate down) carry 30 s (RFC 8767).'),
        names: {
          type: 'object',
          description: 'Names under zone: NAME.zone (A, AAAA) and _NAME._tcp.zone (SRV).',
          propertyNames: { pattern: '^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$' },
          additionalProperties: {
            type: 'object',
            additionalProperties: false,
            description: 'backend: the usable instances of that backend; gateway: true: srvgate\'s own public listener.',
            properties: {
              backend: { type: 'string', minLength: 1, description: 'A backend with discovery.' },
              gateway: { const: true, description: 'Answer with srvgate\'s own public address (for clients that cache addresses forever).' }
            }
          }
        },
        rateLimit: {
          type: 'object',
          additionalProperties: false,
          default: {},
          description: 'A token bucket per source block (/24 for IPv4, /56 for IPv6, as BIND\'s RRL), and one over all UDP answers; queries beyond them are dropped (and counted).',
          properties: {
            perSecond: { type: 'integer', minimum: 1, maximum: 1000000, default: 500, description: 'Queries per second one source block (/24, /56) may send.' },
            burst: { type: 'integer', minimum: 1, maximum: 1000000, default: 1000, description: 'Queries one source block may send at once after a quiet time.' },
            globalPerSecond: { type: 'integer', minimum: 1, maximum: 1000000, default: 20000, description: 'UDP answers per second over all sources (spoofed sources are free, so only this bounds a flood); TCP is bounded by dns.tcp instead.' }
          }
        },
        tcp: {
          type: 'object',
          additionalProperties: false,
          default: {},
          description: 'DNS over TCP (RFC 7766 §6.2.3): deadlines and connection caps, so clients that hold connections cannot lock others out. Connections over a cap are closed at once (the oldest are never cut to make room).',
          properties: {
            messageTimeout: duration('2s', 'A whole message (length prefix and body) must arrive within this after its first byte; a connection\'s first message within this after it opens. Else the connection is closed.'),
            idleTimeout: duration('10s', 'A connection with no message under way is closed after this (between messages, after an answer).'),
            maxConnections: { type: 'integer', minimum: 1, maximum: 100000, default: 256, description: 'TCP connections open at once over every dns.listen address (BIND tcp-clients); more are refused.' },
            maxConnectionsPerSource: { type: 'integer', minimum: 1, maximum: 100000, default: 16, description: 'TCP connections open at once from one source address (an IPv6 /64); more are refused.' }
          }
        }
      }
    },
    resolvers: {
      type: 'object',
      default: {},
      description: 'Named DNS resolvers, referred to by backends.',
      propertyNames: { pattern: '^[A-Za-z0-9][A-Za-z0-9_.-]*$' },
      additionalProperties: {
        type: 'object',
        additionalProperties: false,
        required: ['nameservers'],
        description: 'One resolver: its nameservers and cache rules.',
        properties: {
          nameservers: {
            type: 'array',
            minItems: 1,
            items: { type: 'string', format: 'address' },
            description: 'Tried in order, failing over: host:port or [v6]:port. A host name (consul:8600) is resolved by the system resolver at load and on every reload.'
          },
          timeout: duration('500ms', 'Per attempt.'),
          attempts: { type: 'integer', minimum: 1, maximum: 10, default: 3, description: 'Queries in total over all nameservers.' },
          ttl: {
            type: 'object',
            additionalProperties: false,
            default: {},
            description: 'Clamp of record TTLs, CoreDNS style.',
            properties: {
              min: duration('1s', 'Floor of the record TTL (Consul answers TTL 0).'),
              max: duration('30s', 'Ceiling of the record TTL.')
            }
          },
          targetTtl: {
            type: 'object',
            additionalProperties: false,
            default: {},
            description: 'Clamp of the TTL of SRV targets\' addresses, when an answer leaves them out of its additional section and they are asked one by one (cached by target name).',
            properties: {
              min: duration('5s', 'Floor: node addresses change far less often than instance sets.'),
              max: duration('5m', 'Ceiling.')
            }
          },
          staleFor: duration('60s', 'Serve the last good answer this long past its expiry while DNS fails.'),
          negativeTtl: duration('5s', 'Cache NXDOMAIN and empty answers this long.'),
          emptyGrace: duration('2s', 'A known instance set survives NXDOMAIN/empty answers this long before it is emptied.'),
          ednsPayload: { type: 'integer', minimum: 512, maximum: 65535, default: 4096, description: 'EDNS0 UDP payload size.' },
          addressPolicy
        }
      }
    },
    backends: {
      type: 'object',
      default: {},
      description: 'Named backends: where instances come from and how requests reach them.',
      propertyNames: { pattern: '^[A-Za-z0-9][A-Za-z0-9_.-]*$' },
      additionalProperties: {
        description: 'One backend: instances found by discovery, or a split of other backends by weight.',
        if: { type: 'object', required: ['split'] },
        then: {
          type: 'object',
          additionalProperties: false,
          description: 'A split: each request goes to one member backend, shared by weight among the members that have a usable instance. Members keep their own balance, health and retry settings.',
          properties: {
            split: {
              type: 'array',
              minItems: 1,
              description: 'The member backends (each with discovery; splits do not nest) and their weights.',
              items: {
                type: 'object',
                additionalProperties: false,
                required: ['backend', 'weight'],
                description: 'One member.',
                properties: {
                  backend: { type: 'string', minLength: 1, description: 'Name of a backend with discovery.' },
                  weight: splitWeight
                }
              }
            },
            stickyOn
          }
        },
        else: {
          type: 'object',
          additionalProperties: false,
          required: ['discovery'],
          properties: {
            discovery,
            failover: {
              type: 'array',
              minItems: 1,
              maxItems: 8,
              description: 'Other datacenters, tried in order, only while the backend has no usable instance (Consul prepared-query failover). Each is resolved in the background like discovery; traffic returns as soon as discovery has a usable instance again.',
              items: discovery
            },
            ...backendOptions
          }
        }
      }
    },
    frontends: {
      type: 'array',
      default: [],
      description: 'Routing rules; the first that matches wins, in file order.',
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['name', 'match', 'backend'],
        properties: {
          name: { type: 'string', pattern: '^[A-Za-z0-9][A-Za-z0-9_.-]*$', description: 'Shown in logs, metrics and /admin/state.' },
          match: {
            type: 'object',
            additionalProperties: false,
            description: 'All given conditions must hold; {} matches every request.',
            properties: {
              host: { type: 'string', minLength: 1, description: 'exact, *.suffix, or a label {env} capture.' },
              pathPrefix: { type: 'string', pattern: '^/', description: 'A plain string prefix of the path (/api matches /apix; write /api/ for a segment).' },
              headers: { type: 'object', additionalProperties: { type: 'string' }, description: 'Header name → exact value.' },
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
            description: 'Required with an {env} capture: values failing the pattern are 404.',
            properties: { pattern: { type: 'string', minLength: 1, description: 'Regular expression a captured {env} must match.' } }
          },
          backend: {
            description: 'A backend name, or a template instantiated per captured {env} (a backend, or a split of templated backends).',
            if: { type: 'object' },
            then: {
              if: { type: 'object', required: ['split'] },
              then: {
                type: 'object',
                additionalProperties: false,
                required: ['template', 'split'],
                description: 'A templated split: per env, each request goes to one member, by weight, among the members of that env with a usable instance (never another env\'s).',
                properties: {
                  template: templateName,
                  split: {
                    type: 'array',
                    minItems: 1,
                    description: 'The members: templated backends with their weights.',
                    items: {
                      type: 'object',
                      additionalProperties: false,
                      required: ['template', 'weight', 'discovery'],
                      description: 'One member.',
                      properties: {
                        template: { ...templateName, description: 'The member backend name per env, e.g. web-{env}-v2.' },
                        weight: splitWeight,
                        discovery,
                        ...backendOptions
                      }
                    }
                  },
                  stickyOn
                }
              },
              else: {
                type: 'object',
                additionalProperties: false,
                required: ['template', 'discovery'],
                properties: {
                  template: templateName,
                  discovery,
                  ...backendOptions
                }
              }
            },
            else: { type: 'string', minLength: 1 }
          },
          rewrite: {
            type: 'object',
            additionalProperties: false,
            description: 'Changes to the request before it is forwarded.',
            properties: { stripPrefix: { type: 'string', pattern: '^/', description: 'Removed from the start of the path.' } }
          }
        }
      }
    }
  }
} as const
