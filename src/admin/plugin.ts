import { timingSafeEqual } from 'node:crypto'
import type { FastifyInstance } from 'fastify'
import { DASHBOARD_PAGE } from './dashboard-page.js'
import type { GatewayMetrics } from './metrics.js'

export type ReloadResult = { readonly ok: true, readonly summary: string } | { readonly ok: false, readonly errors: readonly string[] }

export type AdminOptions = {
  /** Bearer token for everything but the probes; undefined: none. */
  readonly token: string | undefined
  readonly metrics: GatewayMetrics
  readonly state: () => unknown
  /** Config loaded, first resolutions done, not draining. */
  readonly isReady: () => boolean
  readonly reload: () => Promise<ReloadResult>
}

/** Probes stay open so a load balancer or kubelet needs no secret. */
const OPEN_PATHS = new Set(['/healthz', '/readyz'])

/**
 * The admin listener: /healthz (alive), /readyz, /metrics (Prometheus text),
 * /admin/state (JSON), POST /admin/reload, / (dashboard).
 */
export async function adminPlugin (app: FastifyInstance, options: AdminOptions): Promise<void> {
  const token = options.token
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
    const body = await options.metrics.registry.metrics()
    return await reply.header('content-type', options.metrics.registry.contentType).send(body)
  })

  app.get('/admin/state', async () => options.state())

  app.post('/admin/reload', async (_request, reply) => {
    const result = await options.reload()
    return await reply.code(result.ok ? 200 : 422).send(result)
  })

  app.get('/', async (_request, reply) => await reply.header('content-type', 'text/html; charset=utf-8').send(DASHBOARD_PAGE))
}

function sameSecret (presented: string, expected: string): boolean {
  const a = Buffer.from(presented)
  const b = Buffer.from(expected)
  return a.length === b.length && timingSafeEqual(a, b)
}
