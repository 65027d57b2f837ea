import { createRequire } from 'node:module'

type PromClient = typeof import('prom-client')

const require = createRequire(import.meta.url)
let loaded: PromClient | undefined

/**
 * prom-client, loaded when the first metrics are made rather than when this
 * module is imported: srvgate/client imports admin/metrics.ts, and a client
 * given no `registry` never loads prom-client at all (test/e2e/package.test.ts
 * checks the client's loaded modules). prom-client is CommonJS, so require
 * gives the same copy an ESM `import` would (one registry, one set of classes).
 */
export function loadPromClient (): PromClient {
  loaded ??= require('prom-client') as PromClient
  return loaded
}
