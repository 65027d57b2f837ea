import type { IncomingHttpHeaders } from 'node:http'
import type { GatewayConfig } from '../config/types.js'
import { ErrorCode, ProxyError } from '../errors.js'
import { normalizeHost, type RequestFacts } from '../routing/matcher.js'
import type { RouteDecision, Router } from '../routing/router.js'
import type { Backend } from '../upstream/backend.js'
import type { BackendRegistry } from '../upstream/registry.js'

/** The routing state a request runs against; swapped whole on reload. */
export type RoutingState = { readonly config: GatewayConfig, readonly router: Router, readonly registry: BackendRegistry }

export type RequestLine = {
  readonly method: string
  readonly url: string
  readonly headers: IncomingHttpHeaders
  readonly rawHeaders: readonly string[]
}

export type Routed = { readonly decision: RouteDecision, readonly backend: Backend, readonly path: string }

/**
 * From a request line to a backend with a usable instance, or the ProxyError
 * that answers it (400 bad Host, 404 no route, 503 no healthy instance).
 * Shared by plain requests and WebSocket upgrades. Waits on DNS only for a
 * templated backend's first resolution.
 */
export async function routeRequest (state: RoutingState, request: RequestLine, onDecision?: (decision: RouteDecision, backend?: Backend) => void): Promise<Routed | ProxyError> {
  const host = hasOneHost(request.rawHeaders) ? normalizeHost(request.headers.host) : undefined
  if (host === undefined) return new ProxyError(ErrorCode.REQUEST_MALFORMED, `bad Host header: ${JSON.stringify(request.headers.host ?? null)}`)
  const path = pathOf(request.url)
  const facts: RequestFacts = { host, path, method: request.method, header: (name) => firstValue(request.headers[name]) }
  const decision = state.router.route(facts)
  if (decision === undefined) return new ProxyError(ErrorCode.ROUTE_NOT_FOUND, `no frontend matches ${host}${path}`)
  const target = decision.frontend.backend
  const backend = target.kind === 'static' ? state.registry.get(target.name) : state.registry.template(target.template, decision.env as string)
  onDecision?.(decision, backend)
  if (backend === undefined) {
    const name = target.kind === 'template' ? target.template.template.replaceAll('{env}', decision.env ?? '') : target.name
    return new ProxyError(ErrorCode.NO_HEALTHY_INSTANCE, 'templated backends at their bound, all busy', name)
  }
  await backend.watcher.start()
  if (!backend.hasUsableInstance()) return new ProxyError(ErrorCode.NO_HEALTHY_INSTANCE, `${backend.name}: ${backend.snapshot.status}`, backend.name)
  return { decision, backend, path }
}

/** RFC 9112 §3.2: a request with no Host, or more than one, is answered 400. */
function hasOneHost (rawHeaders: readonly string[]): boolean {
  let count = 0
  for (let index = 0; index < rawHeaders.length; index += 2) {
    const name = rawHeaders[index] as string
    if (name.length === 4 && name.toLowerCase() === 'host') count++
  }
  return count === 1
}

export function pathOf (url: string): string {
  const query = url.indexOf('?')
  return query < 0 ? url : url.slice(0, query)
}

export function firstValue (value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value
}
