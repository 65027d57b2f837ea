import { Type } from '@sinclair/typebox'
import { cidrList, durationString, integer } from './schema-backend.js'
import { Closed, Defaulted, IfThenElse } from './schema-kit.js'
import { COMPRESS_DEFAULTS } from './compile-policies.js'

/**
 * The schema of a frontend's access and rate-limit policies (policy/ applies
 * them, in this order, before a redirect, header rules or any backend).
 * schema.ts puts them on each frontend.
 */

export const access = Type.Optional(Closed({
  allow: Type.Optional(cidrList('When set, only clients in these blocks get through (CIDR; a bare address is one host). The client is the address trustedProxies decides.')),
  deny: Type.Optional(cidrList('Clients in these blocks are refused (403), even when allow holds them.')),
  basicAuth: Type.Optional(Closed({
    realm: Defaulted(Type.String({ minLength: 1, maxLength: 200, pattern: '^[^"\\\\\\r\\n]*$', default: 'srvgate', description: 'Named in the WWW-Authenticate challenge (no quotes or backslashes); {env} is the captured environment.' })),
    usersFile: Type.String({ minLength: 1, description: 'An htpasswd file of user:bcrypt-hash lines (htpasswd -B). Read at start and at each reload.' })
  }, {
    description: 'HTTP basic authentication (RFC 7617) against an htpasswd file with bcrypt hashes: 401 with a challenge without valid credentials.'
  })),
  forwardAuth: Type.Optional(Closed({
    url: Type.String({ pattern: '^https?://', description: 'Asked with GET and the request\'s headers plus X-Forwarded-Method, -Proto, -Host, -Uri and -For; {env} is the captured environment. A 2xx lets the request through; any other answer is returned to the client as it is.' }),
    copyHeaders: Defaulted(Type.Array(Type.String({ minLength: 1 }), { default: [], description: 'Headers of a 2xx answer set on the forwarded request (X-User). A header the answer lacks is removed from the request, so a client cannot send its own.' })),
    timeout: Defaulted(durationString({ default: '5s', description: 'The whole exchange with the auth service; past it the client gets 503 auth_unavailable.' }))
  }, {
    description: 'Ask an auth service about each request first (Traefik forwardAuth, nginx auth_request).'
  }))
}, {
  description: 'Who may use this frontend: allow/deny (403), then basicAuth (401), then forwardAuth. A refused request is never forwarded.'
}))

export const rateLimit = Type.Optional(Closed({
  requestsPerSecond: Type.Number({ exclusiveMinimum: 0, maximum: 1000000, description: 'Sustained requests a second for each key.' }),
  burst: integer({ minimum: 1, maximum: 1000000, default: 10, description: 'Requests a key may make at once above the sustained rate.' }),
  key: Defaulted(Type.String({ pattern: '^(client-ip|header:[A-Za-z0-9!#$%&\'*+.^_`|~-]+)$', default: 'client-ip', description: 'What is limited: client-ip (as trustedProxies decides), or header:NAME (a request without it is limited under the key "-").' })),
  maxKeys: integer({ minimum: 1, maximum: 10000000, default: 100000, description: 'Keys held at once; the least recently seen is forgotten past it.' }),
  store: Type.Optional(Closed({
    redis: Closed({
      url: Type.String({ pattern: '^rediss?://', description: 'redis://host:6379/0' }),
      prefix: Defaulted(Type.String({ default: 'srvgate:ratelimit:', description: 'Key prefix in Redis.' })),
      timeout: Defaulted(durationString({ default: '50ms', description: 'Longest wait for Redis on a request; past it the local limit decides.' }))
    }, { description: 'Redis shared by every replica (GCRA in one Lua script, one round trip a request). Unreachable: the local limit decides (fail open), logged and counted.' })
  }, { description: 'Where the limit is held beyond this gateway.' }))
}, {
  description: 'A limit per key for the whole gateway (its workers together): past it 429 with Retry-After.'
}))

export const compress = Type.Optional(IfThenElse({
  description: 'Compress answers on the way to the client by its Accept-Encoding (zstd, br, gzip), streaming: true for the defaults, or { types, minBytes }. Never an answer already encoded, one with Cache-Control: no-transform, a range, or a HEAD.',
  if: { type: 'boolean' },
  then: Type.Boolean(),
  else: Closed({
    types: Defaulted(Type.Array(Type.String({ pattern: '^[a-z0-9!#$&^_.+-]+/([a-z0-9!#$&^_.+-]+|\\*)$' }), { minItems: 1, default: [...COMPRESS_DEFAULTS.types], description: 'Content types compressed: type/subtype, or type/* (lower case; parameters ignored).' })),
    minBytes: integer({ minimum: 0, maximum: 1073741824, default: COMPRESS_DEFAULTS.minBytes, description: 'An answer whose Content-Length is below this is sent as it is (one without a length is compressed).' })
  })
}))
