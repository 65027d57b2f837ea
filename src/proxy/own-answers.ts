import { nodeHttp } from '../util/node-http.js'
import type { FastifyReply, FastifyRequest } from 'fastify'
import { ErrorCode, ProxyError } from '../errors.js'
import { normalizeHost } from '../routing/matcher.js'
import { sendError } from './reply-error.js'
import { hostHeaderOf, pathOf } from './route-request.js'

/**
 * Every method Node's parser accepts, except CONNECT (srvgate is not a forward
 * proxy: the data plane answers it 405). Registered without a body parser: bodies of
 * every method stream through as they came, GET and DELETE included.
 */
export const PROXIED_METHODS: readonly string[] = nodeHttp.METHODS.filter((method) => method !== 'CONNECT')
const PROXIED_METHOD_SET: ReadonlySet<string> = new Set(PROXIED_METHODS)

/** A method srvgate forwards (what Node's HTTP/1.1 parser knows, CONNECT aside). */
export function isProxiedMethod (method: string): boolean { return PROXIED_METHOD_SET.has(method) }

/** tls.redirectHttp: the same host (without its port), path and query, on the HTTPS listener, 308 (the method is kept). */
export async function redirectToHttps (request: FastifyRequest, reply: FastifyReply, httpsPort: number): Promise<FastifyReply> {
  const host = normalizeHost(hostHeaderOf(request.headers))
  if (host === undefined) return await sendError(reply, new ProxyError(ErrorCode.REQUEST_MALFORMED, `bad Host header: ${JSON.stringify(hostHeaderOf(request.headers) ?? null)}`))
  const authority = httpsPort === 443 ? host : `${host}:${httpsPort}`
  const target = request.raw.url?.startsWith('/') === true ? request.raw.url : pathOf(request.raw.url ?? '/')
  return await reply.code(308).header('location', `https://${authority}${target}`).header('content-length', '0').send()
}

/** RFC 9110 §9.3.7: `OPTIONS *` asks about the server itself; undici cannot send a `*` target, so srvgate answers. */
export async function answerAsterisk (request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
  if (request.method !== 'OPTIONS') return await sendError(reply, new ProxyError(ErrorCode.REQUEST_MALFORMED, `${request.method} * is only meaningful for OPTIONS`))
  return await reply.code(200).header('allow', PROXIED_METHODS.join(', ')).header('content-length', '0').send()
}
