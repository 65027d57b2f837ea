import type { IncomingHttpHeaders } from 'node:http'
import type { FrontendConfig, GatewayConfig, HashKey } from '../config/types.js'
import { ErrorCode, ProxyError } from '../errors.js'
import { normalizeHost, type RequestFacts } from '../routing/matcher.js'
import { carriesName } from '../tls/certificates.js'
import type { RouteDecision, Router } from '../routing/router.js'
import type { Backend } from '../upstream/backend.js'
import type { BackendRegistry } from '../upstream/registry.js'
import type { Split } from '../upstream/split.js'
import { TemplateRefusal } from '../upstream/templated-backends.js'
import type { ClientGone } from './client-gone.js'
import { firstValue } from './headers.js'
import { redirectTo } from './redirect.js'
import { PolicyAnswer } from '../policy/policy-answer.js'
import type { Admission } from '../policy/forward-auth.js'
import { FrontendGate } from './frontend-gate.js'
import { pathOf } from '../routing/target.js'

/** The routing state a request runs against; swapped whole on reload. */
/** What requests run against; `generation` counts applied configurations (a cluster's processes agree on it). */
export type RoutingState<B extends Backend = Backend> = { readonly config: GatewayConfig, readonly generation: number, readonly router: Router, readonly registry: BackendRegistry<B> }

export type RequestLine = {
  readonly method: string
  readonly url: string
  readonly headers: IncomingHttpHeaders
  readonly rawHeaders: readonly string[]
}

/** Where a request goes; `split` when `backend` is the member a split chose (by `splitKey`, its sticky key, if any). */
export type Routed = {
  readonly decision: RouteDecision
  readonly backend: Backend
  readonly path: string
  readonly split?: Split | undefined
  readonly splitKey?: string | undefined
  /** forwardAuth's copyHeaders for the forwarded request (frontend-gate.ts). */
  readonly admission?: Admission | undefined
}

/** What routing answers: where to, or the answer a refusal or a policy gives. */
export type RouteResult = Routed | ProxyError | PolicyAnswer

/** Who hears routing's choice of frontend and backend (proxy-request.ts's ProxyRequest). */
export interface RouteListener {
  decided: (decision: RouteDecision, backend?: Backend, split?: Split) => void
}

export type RouteOptions = {
  /** Fired when the client has gone: a wait on DNS ends at once. */
  readonly clientGone?: ClientGone
  /** Told what routing chose as soon as it knows, refusals included (the request object: no closure per request). */
  readonly listener?: RouteListener
  /** The client's address as the gateway believes it (a split's stickyOn: client-ip). */
  readonly clientIp?: string
  /**
   * The DNS names of the certificate the connection's TLS handshake served for
   * the client's SNI; undefined: not TLS, or no SNI sent (nothing named, nothing coalesced).
   */
  readonly certificateNames?: readonly string[] | undefined
  /** The frontend's access and rate-limit policies (the data plane's); undefined: none applied (srvgate/client). */
  readonly gate?: FrontendGate | undefined
  /** The request came over TLS (forwardAuth's X-Forwarded-Proto). */
  readonly isSecure?: boolean
}

/**
 * From a request line to a backend with a usable instance, or the ProxyError
 * that answers it (400 bad Host, 404 no route, 503 no healthy instance).
 * Shared by plain requests and WebSocket upgrades. Answers at once (no
 * promise, no microtask) unless a templated backend's first resolution has
 * to be waited for.
 */
export function routeRequest (state: RoutingState, request: RequestLine, options: RouteOptions = {}): RouteResult | Promise<RouteResult> {
  // Node keeps one field more than the limit (server.maxHeadersCount), so a cut is seen, never silent.
  if (fieldCount(request.rawHeaders) > state.config.client.maxHeaderCount) {
    return new ProxyError(ErrorCode.REQUEST_HEADERS_TOO_LARGE, `more than client.maxHeaderCount (${state.config.client.maxHeaderCount}) header fields`)
  }
  const host = hasOneHost(request.rawHeaders) ? normalizeHost(hostHeaderOf(request.headers)) : undefined
  if (host === undefined) return new ProxyError(ErrorCode.REQUEST_MALFORMED, `bad Host header: ${JSON.stringify(hostHeaderOf(request.headers) ?? null)}`)
  // A connection made for one name and reused for another its certificate does not carry
  // (HTTP/2 coalescing, or a forged :authority): RFC 9110 §15.5.20, the client retries on a new connection.
  if (options.certificateNames !== undefined && !carriesName(options.certificateNames, host)) {
    return new ProxyError(ErrorCode.MISDIRECTED_REQUEST, `${host} is not a name of the certificate this connection was made for`)
  }
  const path = pathOf(request.url)
  // A `..` segment climbs out of the path an instance expects (and out of a stripPrefix): refused, never normalized.
  if (DOT_DOT_SEGMENT.test(path.replace(/%2e/gi, '.'))) return new ProxyError(ErrorCode.REQUEST_MALFORMED, 'a .. segment in the path')
  const facts: RequestFacts = { host, path, method: request.method, header: (name) => firstValue(request.headers[name]) }
  const decision = state.router.route(facts)
  if (decision === undefined) return new ProxyError(ErrorCode.ROUTE_NOT_FOUND, `no frontend matches ${host}${path}`)
  const gate = options.gate
  if (gate === undefined || !FrontendGate.applies(decision.frontend)) return onward(state, decision, host, path, request, options)
  const verdict = gate.admit(decision.frontend, {
    method: request.method,
    url: request.url,
    headers: request.headers,
    host,
    clientIp: options.clientIp ?? '',
    isSecure: options.isSecure === true,
    env: decision.env,
    clientGone: options.clientGone
  })
  if (verdict instanceof Promise) return verdict.then((settled) => afterGate(settled, state, decision, host, path, request, options))
  return afterGate(verdict, state, decision, host, path, request, options)
}

/** A refusal (told to the listener, no backend chosen), or on with forwardAuth's headers. */
function afterGate (verdict: Awaited<ReturnType<FrontendGate['admit']>>, state: RoutingState, decision: RouteDecision, host: string, path: string, request: RequestLine, options: RouteOptions): RouteResult | Promise<RouteResult> {
  if (verdict === undefined) return onward(state, decision, host, path, request, options)
  if (verdict instanceof ProxyError || verdict instanceof PolicyAnswer) {
    options.listener?.decided(decision, undefined)
    return verdict
  }
  const routed = onward(state, decision, host, path, request, options)
  if (routed instanceof Promise) return routed.then((settled) => withAdmission(settled, verdict))
  return withAdmission(routed, verdict)
}

function withAdmission (routed: RouteResult, admission: Admission): RouteResult {
  return routed instanceof ProxyError || routed instanceof PolicyAnswer ? routed : { ...routed, admission }
}

/** After the frontend's policies: its redirect, or its backend. */
function onward (state: RoutingState, decision: RouteDecision, host: string, path: string, request: RequestLine, options: RouteOptions): RouteResult | Promise<RouteResult> {
  const redirect = decision.frontend.redirect
  if (redirect !== undefined) {
    // Before any backend: no DNS asked, no templated backend made, for a request that leaves at once.
    options.listener?.decided(decision, undefined)
    const queryAt = request.url.indexOf('?')
    return redirectTo(redirect, { host, path, query: queryAt < 0 ? '' : request.url.slice(queryAt + 1), env: decision.env })
  }
  const target = decision.frontend.backend
  const newPerSecond = state.config.templatedBackends.newPerSecond
  if (target.kind === 'split') return splitMember(state.registry.split(target.name) as Split, decision, path, request, options)
  if (target.kind === 'template-split') {
    const split = state.registry.templateSplit(target.split, decision.env as string)
    if (split instanceof TemplateRefusal) {
      options.listener?.decided(decision, undefined)
      return refusalError(split, target.split.template.replaceAll('{env}', decision.env ?? ''), newPerSecond)
    }
    // Every member's first resolution is waited for: the first request of an env is shared like the rest.
    if (split.members.every(({ backend }) => backend.isReady)) return splitMember(split, decision, path, request, options)
    return afterFirstResolutions(split, decision, path, request, options, newPerSecond)
  }
  const backend = target.kind === 'static' ? state.registry.get(target.name) : state.registry.template(target.template, decision.env as string)
  if (backend instanceof TemplateRefusal) {
    options.listener?.decided(decision, undefined)
    return refusalError(backend, target.kind === 'template' ? target.template.template.replaceAll('{env}', decision.env ?? '') : '', newPerSecond)
  }
  options.listener?.decided(decision, backend)
  // A static name the configuration has not (config/load.ts checks references): no instance of it.
  if (backend === undefined) return new ProxyError(ErrorCode.NO_HEALTHY_INSTANCE, 'no such backend', target.kind === 'static' ? target.name : undefined)
  // Only a templated backend's first resolution is waited for; a ready backend costs no promise.
  return backend.isReady ? usable(backend, decision, path, newPerSecond) : afterFirstResolution(backend, decision, path, options.clientGone, newPerSecond)
}

async function afterFirstResolutions (split: Split, decision: RouteDecision, path: string, request: RequestLine, options: RouteOptions, newPerSecond: number): Promise<Routed | ProxyError> {
  const ready = Promise.all(split.members.map(async ({ backend }) => { await backend.ready() })).then(() => {})
  const gone = options.clientGone
  if (gone === undefined) await ready
  else await untilEither(ready, gone)
  if (gone?.isGone === true) return new ProxyError(ErrorCode.CLIENT_GONE, 'the client left while the first resolution ran', split.name)
  // The control plane refused a member (newPerSecond spent, or its bound): the env waits, as in one process, rather than go lopsided.
  const refused = split.members.find(({ backend }) => backend.refusal !== undefined)
  if (refused !== undefined) return refusalError(refused.backend.refusal as TemplateRefusal, refused.backend.name, newPerSecond)
  return splitMember(split, decision, path, request, options)
}

/** What a refused templated backend answers: 503 with Retry-After past newPerSecond, 503 no_healthy_upstream at the bound. */
function refusalError (refusal: TemplateRefusal, name: string, newPerSecond: number): ProxyError {
  if (refusal.reason === 'bound') return new ProxyError(ErrorCode.NO_HEALTHY_INSTANCE, 'templated backends at their bound, all busy', name)
  return new ProxyError(ErrorCode.TEMPLATE_RATE_LIMITED, `${name}: templatedBackends.newPerSecond (${newPerSecond}) spent; DNS not asked`, name, { retryAfterS: Math.max(1, Math.ceil(refusal.retryAfterMs / 1000)) })
}

/** A split's member for this request (by its sticky key, if the split has one): one with a usable instance, or 503. */
function splitMember (split: Split, decision: RouteDecision, path: string, request: RequestLine, options: RouteOptions): Routed | ProxyError {
  const { member, key } = splitChoice(split, request.headers, path, options.clientIp ?? '')
  options.listener?.decided(decision, member, split)
  if (member === undefined) return noMemberError(split)
  return { decision, backend: member, path, split, splitKey: key }
}

/**
 * The member a split gives a request, and the sticky key it was chosen by
 * (the gateway's rule, srvgate/client's too): the key's member when the
 * split has `stickyOn` and the request carries it, else by weight.
 * `clientIp` undefined: the caller has no client address (client-ip keys nothing).
 */
export function splitChoice (split: Split, headers: IncomingHttpHeaders, path: string, clientIp: string | undefined): { readonly member: Backend | undefined, readonly key: string | undefined } {
  const stickyOn = split.stickyOn
  const key = stickyOn === undefined || (stickyOn.kind === 'client-ip' && clientIp === undefined) ? undefined : requestKeyOf(stickyOn, headers, path, clientIp ?? '')
  return { member: split.choose(key), key }
}

/** What a split with no member to take a request answers: 503 naming the split. */
export function noMemberError (split: Split): ProxyError {
  return new ProxyError(ErrorCode.NO_HEALTHY_INSTANCE, `${split.name}: no member has a usable instance`, split.name)
}

function usable (backend: Backend, decision: RouteDecision, path: string, newPerSecond: number): Routed | ProxyError {
  if (!backend.hasUsableInstance()) {
    const refusal = backend.refusal
    return refusal !== undefined ? refusalError(refusal, backend.name, newPerSecond) : new ProxyError(ErrorCode.NO_HEALTHY_INSTANCE, `${backend.name}: ${backend.snapshot.status}`, backend.name)
  }
  return { decision, backend, path }
}

/** The value of a request a key names (hashOn, stickyOn); undefined when the request has none. */
export function requestKeyOf (key: HashKey, headers: IncomingHttpHeaders, path: string, clientIp: string): string | undefined {
  switch (key.kind) {
    case 'header': return firstValue(headers[key.name])
    case 'client-ip': return clientIp
    case 'path': return path
    case 'cookie': {
      const cookies = firstValue(headers.cookie)
      if (cookies === undefined) return undefined
      for (const part of cookies.split(';')) {
        const equals = part.indexOf('=')
        if (equals > 0 && part.slice(0, equals).trim() === key.name) return part.slice(equals + 1).trim()
      }
      return undefined
    }
  }
}

async function afterFirstResolution (backend: Backend, decision: RouteDecision, path: string, gone: ClientGone | undefined, newPerSecond: number): Promise<Routed | ProxyError> {
  if (gone === undefined) await backend.ready()
  else await untilEither(backend.ready(), gone)
  if (gone?.isGone === true) return new ProxyError(ErrorCode.CLIENT_GONE, 'the client left while the first resolution ran', backend.name)
  return usable(backend, decision, path, newPerSecond)
}

const DOT_DOT_SEGMENT = /(^|\/)\.\.(\/|$)/

/** Header fields a client sent; HTTP/2 pseudo-headers (:method, :path…) are not fields. */
function fieldCount (rawHeaders: readonly string[]): number {
  const pairs = rawHeaders.length / 2
  if (pairs === 0 || (rawHeaders[0] as string).charCodeAt(0) !== 58) return pairs
  let pseudo = 0
  for (let index = 0; index < rawHeaders.length; index += 2) if ((rawHeaders[index] as string).charCodeAt(0) === 58) pseudo++
  return pairs - pseudo
}

/** RFC 9112 §3.2: a request with no Host, or more than one, is answered 400 (HTTP/2: one :authority or Host). */
function hasOneHost (rawHeaders: readonly string[]): boolean {
  let hosts = 0
  let authorities = 0
  for (let index = 0; index < rawHeaders.length; index += 2) {
    const name = rawHeaders[index] as string
    if (name.length === 4 && name.toLowerCase() === 'host') hosts++
    else if (name === ':authority') authorities++
  }
  return hosts <= 1 && authorities <= 1 && hosts + authorities >= 1
}

/** The host a request names: HTTP/2's `:authority` (RFC 9113 §8.3.1), else Host. */
export function hostHeaderOf (headers: IncomingHttpHeaders): string | undefined {
  return firstValue(headers[':authority']) ?? headers.host
}

/** Wait for `work` or for the client to go, whichever comes first. */
async function untilEither (work: Promise<void>, gone: ClientGone): Promise<void> {
  let onGone: (() => void) | undefined
  const left = new Promise<void>((resolve) => {
    onGone = resolve
    gone.on(onGone)
  })
  try {
    await Promise.race([work, left])
  } finally {
    gone.off(onGone as () => void)
  }
}

// The path of a target lives with the target's one form (routing/target.ts); the proxy's modules take it from here.
export { pathOf } from '../routing/target.js'


/** The target sent to the instance: origin-form, `stripPrefix` applied to the path, the query kept as sent. */
export function upstreamPath (url: string, frontend: FrontendConfig | undefined): string {
  const queryAt = url.indexOf('?')
  const path = pathOf(url)
  const query = queryAt < 0 ? '' : url.slice(queryAt)
  const added = frontend?.rewrite.addPrefix
  const stripped = stripPrefix(frontend, path)
  return (added === undefined ? stripped : `${added}${stripped}`) + query
}

function stripPrefix (frontend: FrontendConfig | undefined, dest: string): string {
  const prefix = frontend?.rewrite.stripPrefix
  if (prefix === undefined || !dest.startsWith(prefix)) return dest
  const rest = dest.slice(prefix.length)
  return rest.startsWith('/') ? rest : `/${rest}`
}
