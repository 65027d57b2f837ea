import type { IncomingHttpHeaders } from 'node:http'
import { Agent, type Dispatcher } from 'undici'
import { ErrorCode, ProxyError } from '../errors.js'
import type { AccessConfig } from '../config/types.js'
import type { Clock } from '../util/clock.js'
import { PolicyAnswer } from './policy-answer.js'
import { FORWARDING_HEADERS } from '../util/forwarding-headers.js'

/** The largest refusal relayed from an auth service (a login page, a JSON error); a bigger one is 503. */
export const MAX_ANSWER_BYTES = 64 * 1024

/**
 * Not sent to the auth service: the connection's fields, framing (no body is
 * sent), the target's own, and every client-address header (X-Real-IP,
 * Forwarded, True-Client-IP…): the service gets srvgate's X-Forwarded-*
 * only, so a client cannot pose as another address to it.
 */
const NOT_SENT = new Set(['connection', 'keep-alive', 'proxy-connection', 'proxy-authorization', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'expect', 'content-length', 'host', 'http2-settings', ...FORWARDING_HEADERS])
/** Not relayed from the auth service's answer: the connection's fields, framing Node writes itself, and srvgate's request id. */
const NOT_RELAYED = new Set(['connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'content-length', 'x-request-id'])

/** What the auth service is told of the request. */
export type AskedRequest = {
  readonly method: string
  /** The target in origin form, path and query (routing/target.ts made it so before any policy: no scheme, host or userinfo). */
  readonly url: string
  readonly host: string
  readonly proto: 'http' | 'https'
  readonly clientIp: string
  readonly headers: IncomingHttpHeaders
  readonly env: string | undefined
}

/** Told when the client leaves (proxy/client-gone.ts's ClientGone): the question is dropped with it. */
export type Departure = { on: (listener: () => void) => void, off: (listener: () => void) => void }

/** Let through: the copyHeaders to set on the forwarded request, each with the auth service's value or undefined (removed). */
export type Admission = { readonly headers: ReadonlyArray<readonly [string, string | undefined]> }

/**
 * access.forwardAuth, as Traefik's forwardAuth and nginx's auth_request: a
 * GET to the auth service with the request's headers and X-Forwarded-Method,
 * -Proto, -Host, -Uri and -For (srvgate's own: a client's are replaced). A
 * 2xx lets the request through with the copyHeaders taken from the answer;
 * any other answer (401 with a challenge, a 302 to a login page, 403) is
 * returned to the client as it came. An auth service that cannot be asked
 * within `timeout` (the whole exchange), or that answers more than
 * MAX_ANSWER_BYTES, is 503: the request is never let through on a failure
 * (Envoy's ext_authz failure_mode_allow: false). One undici Agent for the
 * process: keep-alive connections to each auth service.
 */
export class ForwardAuth {
  readonly #agent: Dispatcher
  readonly #clock: Clock

  constructor (clock: Clock) {
    this.#clock = clock
    // No redirects followed (undici's request never follows them): a 3xx is the client's answer.
    this.#agent = new Agent({ connections: 64, keepAliveTimeout: 4000 })
  }

  async ask (config: NonNullable<AccessConfig['forwardAuth']>, request: AskedRequest, gone: Departure | undefined): Promise<Admission | ProxyError | PolicyAnswer> {
    const target = new URL(request.env === undefined ? config.url : config.url.replaceAll('{env}', request.env))
    const controller = new AbortController()
    const timer = this.#clock.setTimeout(() => { controller.abort(new Error(`no answer within ${config.timeoutMs} ms`)) }, config.timeoutMs)
    const onGone = (): void => { controller.abort(new Error('the client left')) }
    gone?.on(onGone)
    try {
      const answer = await this.#agent.request({
        origin: target.origin,
        path: `${target.pathname}${target.search}`,
        method: 'GET',
        headers: askedHeaders(request),
        signal: controller.signal
      })
      // Read whole either way (dump() would hide a reset or a timeout): a 2xx that breaks off is no yes.
      const body = await bodyWithin(answer.body, MAX_ANSWER_BYTES)
      if (body === undefined) return unavailable(`the answer's body is larger than ${MAX_ANSWER_BYTES} bytes`)
      if (answer.statusCode >= 200 && answer.statusCode < 300) {
        return { headers: config.copyHeaders.map((name) => [name, firstOf(answer.headers[name])] as const) }
      }
      // Only what a client can be answered: a status undici passes but HTTP has no class for (600–999) is a broken service.
      if (answer.statusCode < 300 || answer.statusCode > 599) return unavailable(`it answered status ${answer.statusCode}`)
      return new PolicyAnswer(answer.statusCode, relayedHeaders(answer.headers), body, new ProxyError(ErrorCode.AUTH_REFUSED, `forwardAuth answered ${answer.statusCode}`))
    } catch (error) {
      return unavailable(controller.signal.aborted ? String((controller.signal.reason as Error).message) : (error as Error).message, error)
    } finally {
      timer.cancel()
      gone?.off(onGone)
    }
  }

  async close (): Promise<void> { await this.#agent.close() }
}

function unavailable (why: string, cause?: unknown): ProxyError {
  return new ProxyError(ErrorCode.AUTH_UNAVAILABLE, `forwardAuth: ${why}`, undefined, { cause })
}

function askedHeaders (request: AskedRequest): Record<string, string | string[]> {
  const headers: Record<string, string | string[]> = {}
  for (const name in request.headers) {
    const value = request.headers[name]
    // HTTP/2's pseudo-headers (:path, :authority) are the request line's, not fields.
    if (value === undefined || name.charCodeAt(0) === 58 || NOT_SENT.has(name)) continue
    headers[name] = value
  }
  headers['x-forwarded-method'] = request.method
  headers['x-forwarded-proto'] = request.proto
  headers['x-forwarded-host'] = request.host
  headers['x-forwarded-uri'] = request.url
  headers['x-forwarded-for'] = request.clientIp
  return headers
}

function relayedHeaders (headers: IncomingHttpHeaders): Array<readonly [string, string]> {
  const relayed: Array<readonly [string, string]> = []
  for (const name in headers) {
    if (NOT_RELAYED.has(name)) continue
    const value = headers[name]
    if (Array.isArray(value)) for (const one of value) relayed.push([name, one])
    else if (value !== undefined) relayed.push([name, value])
  }
  return relayed
}

function firstOf (value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value
}

/** The whole body, or undefined once it passes `limit` bytes (the rest is not read). */
async function bodyWithin (body: AsyncIterable<Buffer> & { destroy: () => void }, limit: number): Promise<Buffer | undefined> {
  const chunks: Buffer[] = []
  let length = 0
  for await (const chunk of body) {
    length += chunk.length
    if (length > limit) {
      body.destroy()
      return undefined
    }
    chunks.push(chunk)
  }
  return Buffer.concat(chunks)
}
