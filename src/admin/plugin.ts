import { timingSafeEqual } from 'node:crypto'
import { isIP } from 'node:net'
import type { FastifyInstance } from 'fastify'
import { DASHBOARD_PAGE } from './dashboard-page.js'
import { FAVICON_SVG } from './favicon.js'

/**
 * What POST /admin/reload answers (200 applied, 422 refused). `restartNeeded`
 * lists the fields bound at start (listeners, workers, ...) whose new values
 * were not applied and wait for a restart; empty when everything applied.
 */
export type ReloadResult = { readonly ok: true, readonly summary: string, readonly restartNeeded: readonly string[] } | { readonly ok: false, readonly errors: readonly string[] }

export type AdminOptions = {
  /** Bearer token for everything but the probes; undefined: none. */
  readonly token: string | undefined
  /** The host the admin listener was configured with (listen.admin), a name it answers to. */
  readonly listenHost: string
  /** admin.allowedHosts: more names it answers to without a token, on any port (lower case). */
  readonly allowedHosts: ReadonlySet<string>
  /** The Prometheus exposition: this process's metrics, or a cluster's aggregated. */
  readonly exposition: () => Promise<string>
  readonly contentType: string
  readonly state: () => Promise<unknown>
  /** Config loaded, first resolutions done, not draining. */
  readonly isReady: () => boolean
  readonly reload: () => Promise<ReloadResult>
}

/** Probes stay open so a load balancer or kubelet needs no secret; so does the icon, which says nothing (a browser asks for it without the dashboard's token). */
const OPEN_PATHS = new Set(['/healthz', '/readyz', '/favicon.ico'])

/**
 * The admin listener: /healthz (alive), /readyz, /metrics (Prometheus text),
 * /admin/state (JSON), POST /admin/reload, / (dashboard), /favicon.ico.
 */
export async function adminPlugin (app: FastifyInstance, options: AdminOptions): Promise<void> {
  const token = options.token
  // A page on another site can point its own name at this address (DNS rebinding) and then
  // read what it likes: /admin/state and /metrics name every instance, the dashboard fetches
  // them. Without a token, every path but the probes must be asked for by a name of the
  // admin listener itself in Host. A page can also make a browser POST here (CSRF): a
  // state-changing request must name the listener in Origin when a browser sends one. (With
  // a token, a browser cannot send it cross-origin, and operators may reach the listener by
  // any name.)
  app.addHook('onRequest', async (request, reply) => {
    if (OPEN_PATHS.has(request.url.split('?')[0] ?? '')) return
    const local = { address: request.socket.localAddress ?? '', port: request.socket.localPort ?? 0 }
    if (token === undefined && !isAdminHost(request.headers.host, local, options)) {
      return await reply.code(403).send({ error: 'forbidden', reason: 'Host must name the admin listener itself (its address, localhost, or a name in admin.allowedHosts)' })
    }
    if (request.method === 'GET' || request.method === 'HEAD' || request.method === 'OPTIONS') return
    const origin = request.headers.origin
    const originHost = origin === undefined ? undefined : hostOfOrigin(origin)
    if (origin !== undefined && (originHost === undefined || !isAdminHost(originHost, local, options))) {
      return await reply.code(403).send({ error: 'forbidden', reason: 'Host and Origin must name the admin listener itself' })
    }
  })
  if (token !== undefined) {
    app.addHook('onRequest', async (request, reply) => {
      const path = request.url.split('?')[0] ?? ''
      if (OPEN_PATHS.has(path)) return
      const query = new URL(request.url, 'http://admin').searchParams.get('token')
      const presented = request.headers.authorization?.replace(/^Bearer\s+/i, '') ?? (path === '/' ? query ?? '' : '')
      if (!sameSecret(presented, token)) {
        return await reply.code(401).header('www-authenticate', 'Bearer realm="srvgate admin"').send({ error: 'unauthorized' })
      }
    })
  }

  app.get('/healthz', async () => ({ status: 'ok' }))

  app.get('/readyz', async (_request, reply) => {
    const isReady = options.isReady()
    return await reply.code(isReady ? 200 : 503).send({ status: isReady ? 'ready' : 'not ready' })
  })

  app.get('/metrics', async (_request, reply) => {
    const body = await options.exposition()
    return await reply.header('content-type', options.contentType).send(body)
  })

  app.get('/admin/state', async () => await options.state())

  app.post('/admin/reload', async (_request, reply) => {
    const result = await options.reload()
    return await reply.code(result.ok ? 200 : 422).send(result)
  })

  // Opened as /?token=…: no Referer carries it anywhere, and no cache keeps the page.
  app.get('/', async (_request, reply) => await reply.headers({ 'content-type': 'text/html; charset=utf-8', 'referrer-policy': 'no-referrer', 'cache-control': 'no-store' }).send(DASHBOARD_PAGE))

  app.get('/favicon.ico', async (_request, reply) => await reply.header('content-type', 'image/svg+xml').header('cache-control', 'public, max-age=86400').send(FAVICON_SVG))

  // The URL is not echoed: it may carry a token.
  app.setNotFoundHandler(async (_request, reply) => await reply.code(404).send({ error: 'not_found' }))
}

/** `http://127.0.0.1:9901` → `127.0.0.1:9901`; undefined for anything that is not an http(s) origin. */
function hostOfOrigin (origin: string): string | undefined {
  const match = /^https?:\/\/([^/]+)$/i.exec(origin.trim())
  return match?.[1]
}

/**
 * The Host names this listener: the port it accepted on, and its own address,
 * `localhost`, the configured listen.admin host, or (bound to every address)
 * any IP literal; or a name of admin.allowedHosts, on any port (a Service or
 * a port mapping may put another port in front). A name pointed at it by
 * someone else's DNS is none of these.
 */
function isAdminHost (host: string | undefined, local: { readonly address: string, readonly port: number }, options: Pick<AdminOptions, 'listenHost' | 'allowedHosts'>): boolean {
  if (host === undefined) return false
  const match = /^(?:\[([0-9a-f:.]+)\]|([^:[\]]+))(?::(\d{1,5}))?$/i.exec(host.trim().toLowerCase())
  if (match === null) return false
  const name = (match[1] ?? match[2] ?? '').replace(/\.$/, '')
  if (options.allowedHosts.has(name)) return true
  const port = match[3] === undefined ? 80 : Number(match[3])
  if (port !== local.port) return false
  const listenHost = options.listenHost.toLowerCase()
  const localAddress = local.address.replace(/^::ffff:/, '')
  if (name === 'localhost' || name === localAddress || name === listenHost) return true
  const isWildcard = listenHost === '0.0.0.0' || listenHost === '::'
  return isWildcard && isIP(name) !== 0
}

function sameSecret (presented: string, expected: string): boolean {
  const a = Buffer.from(presented)
  const b = Buffer.from(expected)
  return a.length === b.length && timingSafeEqual(a, b)
}
