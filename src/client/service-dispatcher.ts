import { Readable } from 'node:stream'
import { Dispatcher } from 'undici'
import { ClientClosedError, ErrorCode, ProxyError } from '../errors.js'
import type { UpstreamPools } from '../proxy/upstream-pools.js'
import { ProxyRequest } from '../proxy/proxy-request.js'
import { noMemberError, requestKeyOf, splitChoice } from '../proxy/route-request.js'
import type { Backend } from '../upstream/backend.js'
import { Split } from '../upstream/split.js'

/** A service: a backend, or a split of backends (each request goes to one member, as at the gateway). */
export type Service = Backend | Split

/** A logical origin (`http://web`) → the service it names, or undefined (ordinary DNS). */
export type ServiceOf = (hostname: string) => Service | undefined

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
    const service = logical === undefined ? undefined : this.#serviceOf(logical.name)
    if (logical === undefined || service === undefined) return this.#next(options, handler)
    // After close() the sets no longer change: never serve from that frozen view.
    if (this.#isClosed()) return refuseClosed(handler)
    if (isReady(service)) {
      this.#forward(service, logical.host, options, handler)
    } else {
      // The service's first resolution still runs (a request right after createClient): the only wait on DNS.
      ready(service).then(() => {
        if (this.#isClosed()) refuseClosed(handler)
        else this.#forward(service, logical.host, options, handler)
      }, (error: Error) => { handler.onError?.(error) })
    }
    return true
  }

  override async close (): Promise<void> { await this.#onClose() }

  override async destroy (): Promise<void> { await this.#onClose() }

  #forward (service: Service, host: string, options: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler): void {
    const headers = withHost(options.headers, host)
    const path = options.path.split('?')[0] ?? options.path
    const record = headerRecord(headers)
    const routed = routeToService(service, record, path)
    if (routed instanceof ProxyError) {
      handler.onError?.(routed)
      return
    }
    const hashOn = routed.backend.options.hashOn
    const body = replayableSource(options.body)
    const request = new ProxyRequest(options.method, undefined)
    request.routeTo(routed.backend, {
      split: routed.split,
      splitKey: routed.splitKey,
      hashKey: hashOn === undefined ? undefined : requestKeyOf(hashOn, record, path, ''),
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

type RoutedToService = { readonly backend: Backend, readonly split?: Split | undefined, readonly splitKey?: string | undefined }

/**
 * The backend a request goes to (for a split, the member by the gateway's
 * own rule: weights, stickyOn; a connect failure may then move on to another
 * member), or the error that answers it. The caller's process has no client
 * address to key by: a `client-ip` split is shared by weight.
 */
function routeToService (service: Service, headers: Record<string, string | string[] | undefined>, path: string): RoutedToService | ProxyError {
  if (!(service instanceof Split)) {
    return service.hasUsableInstance() ? { backend: service } : new ProxyError(ErrorCode.NO_HEALTHY_INSTANCE, `no usable instance of ${service.name} (${service.snapshot.status})`, service.name)
  }
  const { member, key } = splitChoice(service, headers, path, undefined)
  return member === undefined ? noMemberError(service) : { backend: member, split: service, splitKey: key }
}

/** A split is ready once every member's first resolution is done: the first request is shared like the rest. */
function isReady (service: Service): boolean {
  return service instanceof Split ? service.members.every(({ backend }) => backend.isReady) : service.isReady
}

async function ready (service: Service): Promise<void> {
  if (service instanceof Split) await Promise.all(service.members.map(async ({ backend }) => { await backend.ready() }))
  else await service.ready()
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
