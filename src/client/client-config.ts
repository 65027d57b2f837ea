import { checkConfigText, compileConfig } from '../config/load.js'
import { readConfigFile } from '../config/load-file.js'
import { systemLookup } from '../config/nameserver-hosts.js'
import type { GatewayConfig } from '../config/types.js'
import { ConfigError, ErrorCode } from '../errors.js'

/** The client's configuration: the gateway's `resolvers` and `backends` sections, the latter called services. */
export type ClientConfigInput = {
  /** Named resolvers, exactly as under a gateway's `resolvers:`. */
  readonly resolvers: Readonly<Record<string, unknown>>
  /** Named services, exactly as a gateway's `backends:` (discovery, balance, outlier, retry, timeouts…). */
  readonly services: Readonly<Record<string, unknown>>
}

/**
 * The gateway's own compiler over the client's two sections: the same
 * schema, defaults and checks; an error names `services.web.…` where a
 * gateway file would say `backends.web.…`. Nothing listens: the document's
 * listener is a placeholder no address is compared with (registry.ts is
 * given no own listeners).
 */
export function compileClientConfig (input: ClientConfigInput, env: NodeJS.ProcessEnv = process.env): GatewayConfig {
  const document = { listen: { http: '127.0.0.1:1' }, resolvers: input.resolvers, backends: input.services, frontends: [] }
  try {
    return compileConfig(document, env)
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error
    throw new ConfigError(ErrorCode.CONFIG_INVALID, error.issues.map((issue) => ({ ...issue, path: issue.path.replace(/^backends(?=\.|$)/, 'services') })), { cause: error })
  }
}

/** The resolvers and backends of a gateway configuration file (YAML or JSON); its listeners and frontends are ignored. */
export async function clientConfigFromFile (path: string, env: NodeJS.ProcessEnv = process.env): Promise<GatewayConfig> {
  // Checked in this process: the client has the checker loaded already (compileClientConfig), and a
  // library must not start processes of its own in someone else's service.
  return (await readConfigFile(path, env, systemLookup, checkConfigText)).config
}
