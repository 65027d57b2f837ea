import { readFile } from 'node:fs/promises'
import { X509Certificate } from 'node:crypto'
import type { ConfigIssue } from '../errors.js'
import type { GatewayConfig } from './types.js'

/** backends.*.tls.ca and tls.acme.directoryCa must be a readable PEM certificate: a bad path is a configuration error, not a failure per request. */
export async function backendCaIssues (config: GatewayConfig): Promise<ConfigIssue[]> {
  const issues: ConfigIssue[] = []
  const withTls = [
    ...[...config.backends.values()].map((backend) => ({ path: `backends.${backend.name}.tls.ca`, tls: backend.tls })),
    ...config.frontends.flatMap((frontend, index) => frontend.backend.kind === 'template' ? [{ path: `frontends[${index}].backend.tls.ca`, tls: frontend.backend.template.tls }] : []),
    // The ACME directory's CA: read at the first order, perhaps months after start; checked here like the others.
    ...(config.tls?.acme?.directoryCaPath === undefined ? [] : [{ path: 'tls.acme.directoryCa', tls: { caPath: config.tls.acme.directoryCaPath } }])
  ]
  for (const { path, tls } of withTls) {
    if (tls?.caPath === undefined) continue
    try {
      // eslint-disable-next-line no-new
      new X509Certificate(await readFile(tls.caPath))
    } catch (error) {
      issues.push({ path, message: `${tls.caPath} is not a readable PEM certificate (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})` })
    }
  }
  return issues
}
