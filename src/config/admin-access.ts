import { ConfigError } from '../errors.js'
import type { Address } from '../util/address.js'
import type { Environment } from './environment.js'
import { compileConfig } from './load.js'
import { parseYamlText } from './read.js'
import { readConfigText } from './read-text.js'

/** Where a gateway started from a file answers its admin API, and the token it asks for. */
export type AdminAccess = { readonly address: Address, readonly token: string | undefined }

/**
 * `listen.admin` and `admin.token` of a configuration file, and nothing else:
 * `srvgate reload -c FILE` must find the running gateway even when the rest
 * of FILE is broken (the gateway then refuses the reload and says why). The
 * two fields go through the schema and `${ENV}` substitution like the whole
 * file does (so the default and the checks are the same); a file that is not
 * YAML, or whose two fields are wrong, is a ConfigError with their lines.
 */
export async function readAdminAccess (file: string, env: Environment = process.env): Promise<AdminAccess> {
  const parsed = parseYamlText(await readConfigText(file))
  const document = parsed.value as { listen?: { admin?: unknown }, admin?: { token?: unknown } } | null | undefined
  const admin = document?.listen?.admin
  const token = document?.admin?.token
  try {
    // A public listener is required by the schema; this one is never bound.
    const config = compileConfig({
      listen: { http: '127.0.0.1:1', ...(admin === undefined ? {} : { admin }) },
      ...(token === undefined ? {} : { admin: { token } })
    }, env)
    return { address: config.listen.admin, token: config.adminToken }
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error
    throw new ConfigError(error.code, parsed.withLines(error.issues), { cause: error.cause })
  }
}
