import { Readable } from 'node:stream'
import { Dispatcher } from 'undici'
import { ClientClosedError, ErrorCode, ProxyError } from '../errors.js'
import type { UpstreamPools } from '../proxy/upstream-pools.js'
import { ProxyRequest } from '../proxy/proxy-request.js'
import { requestKeyOf } from '../proxy/route-request.js'
import type { Backend } from '../upstream/backend.js'

/** A logical origin (`http://web`) → the service it names, or undefined (ordinary DNS). */
export type ServiceOf = (hostname: string) => Backend | undefined

const PASS_THROUGH = Symbol('pass through')
/** Parsed origins, bounded: a program calling many hosts cannot grow this. */
const MAX_ORIGINS = 1024

/**
 * An undici Dispatcher in front of another one (an Agent by default):
 * requests whose origin's host names a service go to that service's
 * instances through the gateway's own ProxyRequest (pick, pools, retries
 * on another instance, outlier reports); every other request passes through
 * to the next dispatcher untouched.
 */
export class ServiceDispatcher extends Dispatcher {
  readonly #serviceOf: ServiceOf
  readonly #proxy: UpstreamPools
  readonly #next: Dispatcher['dispatch']
  readonly #hosts = new Map<string, { readonly name: string, readonly host: string } | typeof PASS_THROUGH>()
  readonly #onClose: () => Promise<void>
  readonly #isClosed: () => boolean

  constructor (serviceOf: ServiceOf, proxy: UpstreamPools, next: Dispatcher['dispatch'], onClose: () => Promise<void>, isClosed: () => boolean) {
    super()
    this.#serviceOf = serviceOf
    this.#proxy = proxy
    this.#next = next
    this.#onClose = onClose
    this.#isClosed = isClosed
  }

  override dispatch (options: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler): boolean {
    const logical = this.#logical(options.origin)
    const backend = logical === undefined ? undefined : this.#serviceOf(logical.name)
    if (logical === undefined || backend === undefined) return this.#next(options, handler)
    // After close() the sets no longer change: never serve from that frozen view.
    if (this.#isClosed()) return refuseClosed(handler)
    if (backend.isReady) {
      this.#forward(backend, logical.host, options, handler)
    } else {
      // The service's first resolution still runs (a request right after createClient): the only wait on DNS.
      backend.ready().then(() => {
        if (this.#isClosed()) refuseClosed(handler)
        else this.#forward(backend, logical.host, options, handler)
      }, (error: Error) => { handler.onError?.(error) })
    }
    return true
  }

  override async close (): Promise<void> { await this.#onClose() }

  override async destroy (): Promise<void> { await this.#onClose() }

  #forward (backend: Backend, host: string, options: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler): void {
    if (!backend.hasUsableInstance()) {
      handler.onError?.(new ProxyError(ErrorCode.NO_HEALTHY_INSTANCE, `no usable instance of ${backend.name} (${backend.snapshot.status})`, backend.name))
      return
    }
    const headers = withHost(options.headers, host)
    const path = options.path
    const hashOn = backend.options.hashOn
    const body = replayableSource(options.body)
    const request = new ProxyRequest(options.method, undefined)
    request.routeTo(backend, {
      hashKey: hashOn === undefined ? undefined : requestKeyOf(hashOn, headerRecord(headers), path.split('?')[0] ?? path, ''),
      body: body instanceof Readable ? body : undefined
    })
    this.#proxy.forward(request, { ...options, origin: '', headers, body: body instanceof Readable ? null : body }, handler)
  }

  /** `http://web` or `http://web:8080` → { name: 'web', host: 'web:8080' }; cached per origin string. */
  #logical (origin: Dispatcher.DispatchOptions['origin']): { readonly name: string, readonly host: string } | undefined {
    const key = typeof origin === 'string' ? origin : origin?.toString() ?? ''
    let entry = this.#hosts.get(key)
    if (entry === undefined) {
      let url: URL | undefined
      try { url = new URL(key) } catch {}
      entry = url === undefined || (url.protocol !== 'http:' && url.protocol !== 'https:') ? PASS_THROUGH : { name: url.hostname.toLowerCase(), host: url.host }
      if (this.#hosts.size >= MAX_ORIGINS) this.#hosts.clear()
      this.#hosts.set(key, entry)
    }
    return entry === PASS_THROUGH ? undefined : entry
  }
}

/** As undici's dispatchers refuse after close(): the error to the handler, false to the caller. */
export function refuseClosed (handler: Dispatcher.DispatchHandler): false {
  handler.onError?.(new ClientClosedError())
  return false
}

type Headers = Dispatcher.DispatchOptions['headers']

/** The request's headers with `Host` the logical name (and port), unless the caller set one. */
function withHost (headers: Headers, host: string): Headers {
  if (headers === undefined || headers === null) return { host }
  if (Array.isArray(headers)) {
    for (let index = 0; index < headers.length; index += 2) if (String(headers[index]).toLowerCase() === 'host') return headers
    return [...headers, 'host', host] as Headers
  }
  if (typeof (headers as Iterable<unknown>)[Symbol.iterator] === 'function') {
    const pairs = [...(headers as Iterable<[string, string]>)]
    return pairs.some(([name]) => name.toLowerCase() === 'host') ? pairs.flat() as Headers : [...pairs.flat(), 'host', host] as Headers
  }
  const record = headers as Record<string, unknown>
  for (const name of Object.keys(record)) if (name.toLowerCase() === 'host') return headers
  return { ...record, host } as Headers
}

/** Headers as a lower-case record, for a hash key. */
function headerRecord (headers: Headers): Record<string, string | string[] | undefined> {
  const record: Record<string, string | string[] | undefined> = {}
  if (Array.isArray(headers)) {
    for (let index = 0; index < headers.length; index += 2) record[String(headers[index]).toLowerCase()] = String(headers[index + 1])
  } else if (headers !== undefined && headers !== null) {
    for (const [name, value] of Object.entries(headers as Record<string, unknown>)) record[name.toLowerCase()] = value === undefined ? undefined : Array.isArray(value) ? value.map(String) : String(value)
  }
  return record
}

/**
 * A body that can be sent again on another instance: strings and buffers as
 * they are; streams and async iterables (fetch's bodies) as a Readable, which
 * the ProxyRequest keeps whole until an instance has it.
 */
function replayableSource (body: Dispatcher.DispatchOptions['body']): Dispatcher.DispatchOptions['body'] | Readable {
  if (body === undefined || body === null || typeof body === 'string' || body instanceof Uint8Array || body instanceof Readable) return body
  if (isIterable(body)) return Readable.from(body, { objectMode: false })
  return body
}

/** undici takes (async) iterables of bytes as bodies, though its DispatchOptions type does not say so. */
function isIterable (body: unknown): body is AsyncIterable<Uint8Array> | Iterable<Uint8Array> {
  if (typeof body !== 'object' || body === null) return false
  return (Symbol.asyncIterator in body && typeof body[Symbol.asyncIterator] === 'function') || (Symbol.iterator in body && typeof body[Symbol.iterator] === 'function')
}
