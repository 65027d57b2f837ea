import type { IncomingHttpHeaders } from 'node:http'
import { randomUUID } from 'node:crypto'

/**
 * RFC 9110 §7.6.1 hop-by-hop headers, plus `proxy-connection` (legacy) and
 * `expect`: undici will not send `Expect: 100-continue`, and Node has already
 * answered it to the client.
 */
const HOP_BY_HOP_REQUEST = ['connection', 'keep-alive', 'proxy-connection', 'proxy-authorization', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'expect']
const HOP_BY_HOP_RESPONSE = ['connection', 'keep-alive', 'proxy-connection', 'proxy-authenticate', 'te', 'trailer', 'transfer-encoding', 'upgrade']

/** Names listed in a Connection header are hop-by-hop too. */
function connectionListed (value: string | string[] | undefined): string[] {
  if (value === undefined) return []
  return [value].flat().flatMap((item) => item.split(',')).map((name) => name.trim().toLowerCase()).filter((name) => name.length > 0)
}

export type ForwardFacts = {
  readonly clientIp: string
  /** The Host header as the client sent it. */
  readonly host: string
  readonly requestId: string
}

/**
 * The headers an instance receives: the client's, minus hop-by-hop ones,
 * with the original Host, `x-forwarded-for` (appended), `x-forwarded-proto`
 * and `x-forwarded-host` (set: at the edge, client-sent values are not
 * trusted) and `x-request-id`.
 */
export function forwardRequestHeaders (headers: IncomingHttpHeaders, clientHeaders: IncomingHttpHeaders, facts: ForwardFacts): IncomingHttpHeaders {
  for (const name of [...HOP_BY_HOP_REQUEST, ...connectionListed(clientHeaders.connection)]) delete headers[name]
  const previous = clientHeaders['x-forwarded-for']
  const chain = previous === undefined ? [] : [previous].flat()
  headers['x-forwarded-for'] = [...chain, facts.clientIp].join(', ')
  headers['x-forwarded-proto'] = 'http'
  headers['x-forwarded-host'] = facts.host
  headers['x-request-id'] = facts.requestId
  headers.host = facts.host
  return headers
}

/** Response headers a client receives: hop-by-hop ones dropped (the gateway's own connection rules apply). */
export function forwardResponseHeaders (headers: Record<string, string | string[] | undefined>): Record<string, string | string[] | undefined> {
  for (const name of [...HOP_BY_HOP_RESPONSE, ...connectionListed(headers.connection)]) delete headers[name]
  return headers
}

const REQUEST_ID = /^[A-Za-z0-9._:@/+=-]{1,128}$/

/** Spec §3: the client's x-request-id is kept when it is a sane token; otherwise a new UUID. */
export function requestIdOf (value: string | string[] | undefined): string {
  return typeof value === 'string' && REQUEST_ID.test(value) ? value : randomUUID()
}
