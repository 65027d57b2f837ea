import { ConfigError, ErrorCode } from '../errors.js'
import type { GatewayConfig } from './types.js'
import { readConfigText } from './read-text.js'
import type { Environment } from './environment.js'
import { resolveNameserverHosts, systemLookup, type HostLookup } from './nameserver-hosts.js'
import { backendCaIssues } from './ca-files.js'
import { readUsersFiles } from './users-file.js'
import { deepFreeze } from './freeze.js'
import { checkConfigTextApart, type CheckedDocument } from './check-in-child.js'
import { compileChecked } from './compile-checked.js'
import type { GatewayDocument } from './schema.js'

/**
 * Loading a configuration file: read it, check its text in a child process
 * (load.ts's stages, check-in-child.ts), compile the checked document here,
 * then resolve nameserver host names (nameserver-hosts.ts) and check CA
 * files (ca-files.ts) and htpasswd files (users-file.ts). Nothing here loads the YAML parser or ajv.
 */

export type { HostLookup } from './nameserver-hosts.js'

/**
 * Read, validate and compile a configuration file, then resolve nameservers
 * given as host names (`consul:8600`, as in a compose file). All or nothing:
 * throws ConfigError with every issue. Called at start and on every reload,
 * so a nameserver that moved is followed by a reload.
 */
export async function loadConfigFile (file: string, env: Environment = process.env, hostLookup: HostLookup = systemLookup): Promise<GatewayConfig> {
  return (await readConfigFile(file, env, hostLookup)).config
}

/**
 * A configuration, the file's text (watched for changes) and the checked
 * document it was compiled from (each data plane compiles the same document).
 */
export type LoadedConfig = { readonly config: GatewayConfig, readonly text: string, readonly document: GatewayDocument }

/** How a file's text is checked: apart (check-in-child.ts), or here (load.ts's checkConfigText, for a process that has the checker loaded anyway). */
export type TextCheck = (text: string, env: Environment, file: string) => Promise<CheckedDocument> | CheckedDocument

/**
 * loadConfigFile, keeping the text and the checked document. By default the text is parsed and
 * validated in a short-lived child process, so the YAML parser and ajv never
 * load here (the gateway's primary).
 */
export async function readConfigFile (file: string, env: Environment = process.env, hostLookup: HostLookup = systemLookup, check: TextCheck = checkConfigTextApart): Promise<LoadedConfig> {
  const text = await readConfigText(file)
  const checked = await check(text, env, file)
  const compiled = compileChecked(checked)
  // Both look outside the file (DNS, the file system): one report for the two.
  const [resolved, caIssues, users] = await Promise.all([resolveNameserverHosts(compiled, hostLookup), backendCaIssues(compiled), readUsersFiles(compiled)])
  // The users files are read here to be checked (srvgate check); each data plane reads them again to serve.
  const issues = [...resolved.issues, ...caIssues, ...(Array.isArray(users) ? users : [])]
  if (issues.length > 0) throw new ConfigError(ErrorCode.CONFIG_INVALID, issues)
  return { config: deepFreeze(resolved.config), text, document: checked.document }
}
