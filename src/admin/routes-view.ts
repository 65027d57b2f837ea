import type { FrontendConfig } from '../config/types.js'
import type { RoutingState } from '../proxy/route-request.js'
import type { Backend } from '../upstream/backend.js'
import type { Instance } from '../discovery/instance-set.js'

/** Whether an instance takes requests now (state.ts's instanceState is 'up'). */
type IsUp = (backend: Backend, instance: Instance) => boolean

/**
 * A frontend as /admin/state's routes view shows it (issue 24, as Traefik's
 * dashboard lists routers with their middlewares and services): what it
 * matches, its policies in the order they apply, and where it sends traffic
 * now (each backend with its usable instances). No secret is shown: a users
 * file's path and its user count, never a hash; a URL without its userinfo.
 */
export function routeView (frontend: FrontendConfig, routing: RoutingState, isUp: IsUp) {
  return {
    policies: policiesOf(frontend),
    target: targetOf(frontend, routing, isUp)
  }
}

/** The frontend's policies, in the order they apply to a request. */
export function policiesOf (frontend: FrontendConfig): Array<{ readonly policy: string, readonly detail: string }> {
  const policies: Array<{ policy: string, detail: string }> = []
  const access = frontend.access
  if (access?.addresses !== undefined) {
    const { allow, deny } = access.addresses
    policies.push({ policy: 'access.addresses', detail: [allow === undefined ? '' : `allow ${allow.blocks.map((block) => block.label).join(', ')}`, deny.blocks.length === 0 ? '' : `deny ${deny.blocks.map((block) => block.label).join(', ')}`].filter((part) => part !== '').join('; ') })
  }
  if (access?.basicAuth !== undefined) policies.push({ policy: 'access.basicAuth', detail: `realm "${access.basicAuth.realm}", users from ${access.basicAuth.usersFile}` })
  if (access?.forwardAuth !== undefined) policies.push({ policy: 'access.forwardAuth', detail: `${withoutUserinfo(access.forwardAuth.url)}${access.forwardAuth.copyHeaders.length === 0 ? '' : `, copies ${access.forwardAuth.copyHeaders.join(', ')}`}` })
  const limit = frontend.rateLimit
  if (limit !== undefined) policies.push({ policy: 'rateLimit', detail: `${limit.requestsPerSecond}/s, burst ${limit.burst}, per ${limit.key.kind === 'client-ip' ? 'client IP' : `header ${limit.key.name}`}${limit.redis === undefined ? '' : ', shared in Redis'}` })
  if (frontend.redirect !== undefined) policies.push({ policy: 'redirect', detail: `${frontend.redirect.status} to ${frontend.redirect.to}` })
  const rewrite = frontend.rewrite
  if (rewrite.stripPrefix !== undefined || rewrite.addPrefix !== undefined) policies.push({ policy: 'rewrite', detail: [rewrite.stripPrefix === undefined ? '' : `strip ${rewrite.stripPrefix}`, rewrite.addPrefix === undefined ? '' : `add ${rewrite.addPrefix}`].filter((part) => part !== '').join(', ') })
  const headers = frontend.headers
  for (const side of ['request', 'response'] as const) {
    const rules = headers?.[side]
    if (rules !== undefined) policies.push({ policy: `headers.${side}`, detail: [rules.remove.size === 0 ? '' : `remove ${[...rules.remove].join(', ')}`, rules.set.length === 0 ? '' : `set ${rules.set.map(([name]) => name).join(', ')}`].filter((part) => part !== '').join('; ') })
  }
  if (frontend.compress !== undefined) policies.push({ policy: 'compress', detail: `≥ ${frontend.compress.minBytes} B` })
  return policies
}

/** Where the frontend sends traffic now: its backend, a split's members, or a template's live environments. */
function targetOf (frontend: FrontendConfig, routing: RoutingState, isUp: IsUp) {
  const target = frontend.backend
  if (frontend.redirect !== undefined) return { kind: 'redirect' as const, backends: [] }
  const registry = routing.registry
  const seen = (name: string, weight?: number) => {
    const backend = registry.named(name)
    return { backend: name, weight, up: backend?.set.instances.filter((instance) => isUp(backend, instance)).length ?? 0, instances: backend?.set.instances.length ?? 0 }
  }
  if (target.kind === 'static') return { kind: 'backend' as const, backends: [seen(target.name)] }
  if (target.kind === 'split') return { kind: 'split' as const, split: target.name, backends: (registry.split(target.name)?.members ?? []).map(({ backend, weight }) => seen(backend.name, weight)) }
  const template = target.kind === 'template' ? target.template.template : target.split.template
  // One backend per environment seen so far (web-pr-1, web-pr-2): named by the template with {env} filled.
  const pattern = new RegExp(`^${template.split('{env}').map((part) => part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('[a-z0-9_-]+')}$`)
  return { kind: 'template' as const, template, backends: registry.all().filter((backend) => pattern.test(backend.name)).map((backend) => seen(backend.name)) }
}

function withoutUserinfo (url: string): string {
  return url.replace(/\/\/[^@/]*@/, '//')
}
