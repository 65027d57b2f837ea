import type { IncomingHttpHeaders } from 'node:http'
import { randomUUID } from 'node:crypto'
import { isIP } from 'node:net'
import { FORWARDING_HEADERS } from '../util/forwarding-headers.js'

/**
 * RFC 9110 §7.6.1 hop-by-hop headers, plus `proxy-connection` (legacy) and
 * `expect`: undici will not send `Expect: 100-continue`, and Node has already
 * answered it to the client.
 */
const HOP_BY_HOP_REQUEST = ['connection', 'keep-alive', 'proxy-connection', 'proxy-authorization', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'expect']
export const HOP_BY_HOP_RESPONSE: readonly string[] = ['connection', 'keep-alive', 'proxy-connection', 'proxy-authenticate', 'te', 'trailer', 'transfer-encoding', 'upgrade']

/** Names listed in a Connection header are hop-by-hop too. */
function connectionListed (value: string | string[] | undefined): string[] {
  if (value === undefined) return []
  // The common answers name nothing beyond the hop-by-hop list: no parsing per response.
  if (typeof value === 'string' && NAMES_NOTHING_MORE.has(value)) return []
  return [value].flat().flatMap((item) => item.split(',')).map((name) => name.trim().toLowerCase()).filter((name) => name.length > 0)
}

const NAMES_NOTHING_MORE = new Set(['keep-alive', 'close', 'Keep-Alive', 'Close', 'upgrade', 'Upgrade'])

export type ForwardFacts = {
  /** The address of the peer that opened the connection. */
  readonly peerIp: string
  /** The peer is one of `trustedProxies`: its forwarding headers are believed and extended. */
  readonly isPeerTrusted: boolean
  /** The client as srvgate believes it (see clientIpOf). */
  readonly clientIp: string
  /** The Host header as the client sent it (HTTP/2: :authority). */
  readonly host: string
  /** The scheme the client used: https on the HTTPS listener. */
  readonly proto: 'http' | 'https'
  readonly requestId: string
}

/** Part of the one Set the copy loop already checks: no cost per request. */
const FORWARDING = FORWARDING_HEADERS

/**
 * The headers an instance receives: the client's, minus hop-by-hop ones,
 * with the original Host, `x-request-id`, and forwarding headers. From an
 * untrusted peer (the default: `trustedProxies` is empty) every forwarding
 * header the client sent is replaced by srvgate's own, so nobody can pose as
 * another address; from a trusted proxy the chain is extended (HAProxy's
 * `option forwardfor`, nginx's `real_ip_from`).
 */
export function forwardRequestHeaders (incoming: IncomingHttpHeaders, clientHeaders: IncomingHttpHeaders, facts: ForwardFacts): IncomingHttpHeaders {
  const dropped = clientHeaders.connection === undefined ? undefined : connectionListed(clientHeaders.connection)
  const headers = copyWithout(incoming, facts.isPeerTrusted ? DROPPED_REQUEST : DROPPED_REQUEST_UNTRUSTED, dropped)
  const forwardedFor = facts.peerIp.includes(':') ? `"[${facts.peerIp}]"` : facts.peerIp
  if (facts.isPeerTrusted) {
    const chain = [clientHeaders['x-forwarded-for'] ?? []].flat()
    headers['x-forwarded-for'] = [...chain, facts.peerIp].join(', ')
    headers['x-forwarded-proto'] = firstValue(clientHeaders['x-forwarded-proto']) ?? facts.proto
    headers['x-forwarded-host'] = firstValue(clientHeaders['x-forwarded-host']) ?? facts.host
    const previous = [clientHeaders.forwarded ?? []].flat()
    headers.forwarded = [...previous, `for=${forwardedFor}`].join(', ')
  } else {
    headers['x-forwarded-for'] = facts.peerIp
    headers['x-forwarded-proto'] = facts.proto
    headers['x-forwarded-host'] = facts.host
    headers.forwarded = `for=${forwardedFor};host="${facts.host.replaceAll('"', '')}";proto=${facts.proto}`
  }
  headers['x-real-ip'] = facts.clientIp
  headers['x-request-id'] = facts.requestId
  headers.host = facts.host
  // TE is hop-by-hop, but "trailers" says the client takes trailer fields: srvgate passes them on (gRPC needs it).
  const te = clientHeaders.te
  if (te !== undefined && dropped?.includes('te') !== true && String(te).toLowerCase().includes('trailers')) headers.te = 'trailers'
  return headers
}

/**
 * The client's address: the peer's, or, when the peer is a trusted proxy,
 * the right-most address of X-Forwarded-For that is not a trusted proxy
 * itself (what proxy-addr and nginx's realip module compute).
 */
export function clientIpOf (peerIp: string, forwardedFor: string | string[] | undefined, isTrusted: (address: string) => boolean): string {
  if (!isTrusted(peerIp) || forwardedFor === undefined) return peerIp
  const chain = [forwardedFor].flat().flatMap((value) => value.split(',')).map((item) => item.trim()).filter((item) => item.length > 0)
  let client = peerIp
  for (let index = chain.length - 1; index >= 0; index--) {
    const hop = hopAddress(chain[index] as string)
    // Garbage in the chain ends it: the nearest hop that is an address is the client.
    if (hop === undefined) return client
    client = hop
    if (!isTrusted(client)) return client
  }
  return client
}

/**
 * A hop of X-Forwarded-For as an address: as it is, or without the port some
 * proxies add (Azure Application Gateway writes `203.0.113.9:51234`), or
 * without the brackets of `[2001:db8::1]` / `[2001:db8::1]:443`; undefined
 * when it is none of these.
 */
function hopAddress (hop: string): string | undefined {
  if (isIP(hop) !== 0) return hop
  const v4 = /^(\d{1,3}(?:\.\d{1,3}){3}):\d{1,5}$/.exec(hop)?.[1]
  if (v4 !== undefined) return isIP(v4) === 4 ? v4 : undefined
  const v6 = /^\[([0-9A-Fa-f:.]+)\](?::\d{1,5})?$/.exec(hop)?.[1]
  return v6 !== undefined && isIP(v6) === 6 ? v6 : undefined
}

/** The first of a header's values (Node gives an array for repeated set-cookie-like fields, and for HTTP/2's). */
export function firstValue (value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value
}

/**
 * Response headers a client receives, from undici's raw list (name, value,
 * name, value…): hop-by-hop ones and those the instance's Connection header
 * names are dropped (the gateway's own connection rules apply), and so is the
 * instance's x-request-id (srvgate's own goes on every answer). A flat list
 * for `writeHead`, so repeated headers (Set-Cookie) stay apart and in order.
 */
export function forwardResponseRawHeaders (raw: readonly Buffer[]): string[] {
  let listed: string[] | undefined
  for (let index = 0; index < raw.length; index += 2) {
    const name = raw[index] as Buffer
    if (name.length === 10 && name.toString('latin1').toLowerCase() === 'connection') {
      const names = connectionListed((raw[index + 1] as Buffer).toString('latin1'))
      if (names.length > 0) listed = [...(listed ?? []), ...names]
    }
  }
  const headers: string[] = []
  for (let index = 0; index < raw.length; index += 2) {
    const name = (raw[index] as Buffer).toString('latin1')
    // Only a name as long as a dropped one can be one: most names are never lower-cased.
    if (listed !== undefined || DROPPED_RESPONSE_LENGTHS.has(name.length)) {
      const lower = name.toLowerCase()
      if (DROPPED_RESPONSE.has(lower) || listed?.includes(lower) === true) continue
    }
    headers.push(name, (raw[index + 1] as Buffer).toString('latin1'))
  }
  return headers
}

/** Fields a trailer section may not carry (RFC 9110 §6.5.1: framing, routing, hop-by-hop). */
const DROPPED_TRAILERS: ReadonlySet<string> = new Set([...HOP_BY_HOP_RESPONSE, 'content-length', 'content-encoding', 'content-type', 'host', 'x-request-id'])

/** Whether a field may be sent in a trailer section. */
export const mayTrail = (lowerName: string): boolean => !DROPPED_TRAILERS.has(lowerName)

/** An instance's trailers (name/value pairs, buffers over HTTP/1.1, strings over HTTP/2) as the client's answer takes them. */
export function forwardTrailers (raw: ReadonlyArray<Buffer | string>): Record<string, string> {
  const trailers: Record<string, string> = {}
  for (let index = 0; index + 1 < raw.length; index += 2) {
    const name = String(raw[index]).toLowerCase()
    if (DROPPED_TRAILERS.has(name)) continue
    const value = Buffer.isBuffer(raw[index + 1]) ? (raw[index + 1] as Buffer).toString('latin1') : String(raw[index + 1])
    trailers[name] = trailers[name] === undefined ? value : `${trailers[name]}, ${value}`
  }
  return trailers
}

const DROPPED_REQUEST: ReadonlySet<string> = new Set(HOP_BY_HOP_REQUEST)
const DROPPED_REQUEST_UNTRUSTED: ReadonlySet<string> = new Set([...HOP_BY_HOP_REQUEST, ...FORWARDING])
/** Response headers an instance's answer loses on the way: hop-by-hop ones, and its x-request-id (srvgate's own goes out). */
export const DROPPED_RESPONSE: ReadonlySet<string> = new Set([...HOP_BY_HOP_RESPONSE, 'x-request-id'])
const DROPPED_RESPONSE_LENGTHS: ReadonlySet<number> = new Set([...DROPPED_RESPONSE].map((name) => name.length))

/**
 * A new object with every header but the dropped ones. Copied key by key, not
 * mutated and not spread: on Node 20 an object made by spread and then given
 * a few more keys costs ~4.5 µs (`delete` is as bad); a copy loop ~0.1 µs.
 */
function copyWithout<T extends Record<string, unknown>> (headers: T, dropped: ReadonlySet<string>, listed: readonly string[] | undefined): T {
  const copy: Record<string, unknown> = {}
  for (const name in headers) {
    // HTTP/2 pseudo-headers (:method, :path, :authority, :scheme) are not HTTP/1.1 fields.
    if (dropped.has(name) || listed?.includes(name) === true || name.charCodeAt(0) === 58) continue
    copy[name] = headers[name]
  }
  return copy as T
}

const REQUEST_ID = /^[A-Za-z0-9._:@/+=-]{1,128}$/

/** Spec §3: the client's x-request-id is kept when it is a sane token; otherwise a new UUID. */
export function requestIdOf (value: string | string[] | undefined): string {
  return typeof value === 'string' && REQUEST_ID.test(value) ? value : randomUUID()
}
