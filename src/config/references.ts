import type { ConfigIssue } from '../errors.js'
import { knownNames } from './convert.js'

/**
 * Cross-references (a frontend's backend, a discovery's resolver), read from
 * the document whatever its shape: a file with shape errors still gets its
 * reference errors in the same report.
 */
export function referenceIssues (document: unknown): ConfigIssue[] {
  const issues: ConfigIssue[] = []
  const root = isRecord(document) ? document : {}
  const resolvers = isRecord(root.resolvers) ? root.resolvers : {}
  const backends = isRecord(root.backends) ? root.backends : {}
  const checkResolver = (discovery: unknown, path: string): void => {
    if (!isRecord(discovery) || typeof discovery.resolver !== 'string') return
    if (!Object.hasOwn(resolvers, discovery.resolver)) issues.push({ path: `${path}.resolver`, message: `unknown resolver "${discovery.resolver}"${knownNames(Object.keys(resolvers))}` })
  }
  for (const [name, backend] of Object.entries(backends)) {
    if (!isRecord(backend)) continue
    checkResolver(backend.discovery, `backends.${name}.discovery`)
    if (Array.isArray(backend.failover)) backend.failover.forEach((target, index) => { checkResolver(target, `backends.${name}.failover[${index}]`) })
    if (!Array.isArray(backend.split)) continue
    backend.split.forEach((member: unknown, index) => {
      if (!isRecord(member) || typeof member.backend !== 'string' || Object.hasOwn(backends, member.backend)) return
      issues.push({ path: `backends.${name}.split[${index}].backend`, message: `unknown backend "${member.backend}"${knownNames(Object.keys(backends))}` })
    })
  }
  const frontends = Array.isArray(root.frontends) ? root.frontends : []
  frontends.forEach((frontend: unknown, index) => {
    if (!isRecord(frontend)) return
    const path = `frontends[${index}].backend`
    if (typeof frontend.backend === 'string' && !Object.hasOwn(backends, frontend.backend)) {
      issues.push({ path, message: `unknown backend "${frontend.backend}"${knownNames(Object.keys(backends))}` })
    }
    if (isRecord(frontend.backend)) checkResolver(frontend.backend.discovery, `${path}.discovery`)
  })
  return issues
}

function isRecord (value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value)
}
