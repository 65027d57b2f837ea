import { ConfigError, ErrorCode, type ConfigIssue } from '../errors.js'
import type { GatewayConfig } from './types.js'
import type { GatewayDocument } from './schema.js'
import { validateAgainstSchema } from './validate.js'
import { parseYamlText, readConfigText } from './read.js'
import { substituteEnvironment, type Environment } from './environment.js'
import { referenceIssues } from './references.js'
import { compileDocument } from './compile.js'
import { resolveNameserverHosts, systemLookup, type HostLookup } from './nameserver-hosts.js'
import { backendCaIssues } from './ca-files.js'
import { deepFreeze } from './freeze.js'

/**
 * Loading a configuration, stage by stage: read the file (read.ts), parse
 * YAML keeping lines (read.ts), substitute `${ENV}` (environment.ts),
 * validate and fill defaults (validate.ts), check references (references.ts),
 * compile (compile.ts), then resolve nameserver host names
 * (nameserver-hosts.ts) and check CA files (ca-files.ts). All or nothing:
 * every issue a stage finds is reported at once, in one ConfigError.
 */

export type { Environment } from './environment.js'
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

/** A configuration and the text it was compiled from (a cluster's workers compile the same bytes). */
export type LoadedConfig = { readonly config: GatewayConfig, readonly text: string }

/** loadConfigFile, keeping the text. */
export async function readConfigFile (file: string, env: Environment = process.env, hostLookup: HostLookup = systemLookup): Promise<LoadedConfig> {
  const text = await readConfigText(file)
  const compiled = parseConfigText(text, env, file)
  // Both look outside the file (DNS, the file system): one report for the two.
  const [resolved, caIssues] = await Promise.all([resolveNameserverHosts(compiled, hostLookup), backendCaIssues(compiled)])
  const issues = [...resolved.issues, ...caIssues]
  if (issues.length > 0) throw new ConfigError(ErrorCode.CONFIG_INVALID, issues)
  return { config: deepFreeze(resolved.config), text }
}

/** Parse YAML or JSON text and compile it; every issue and warning carries its line in the text (a syntax error, `file` too). */
export function parseConfigText (text: string, env: Environment = process.env, file?: string): GatewayConfig {
  const parsed = parseYamlText(text, file)
  try {
    const config = compileConfig(parsed.value, env)
    if (config.warnings.length === 0) return config
    return deepFreeze({ ...config, warnings: parsed.withLines(config.warnings) })
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error
    throw new ConfigError(error.code, parsed.withLines(error.issues), { cause: error.cause })
  }
}

/** Validate a parsed document (a fresh copy is filled with defaults) and compile it. */
export function compileConfig (input: unknown, env: Environment = process.env): GatewayConfig {
  const substituted = substituteEnvironment(input ?? {}, env)
  const document = substituted.value
  const schemaIssues = validateAgainstSchema(document)
  // A value whose variable is unset is reported once, as unset, not again as malformed.
  const unsetPaths = new Set(substituted.issues.map((issue) => issue.path))
  // References are checked on the raw document too, so one pass reports shape and reference errors alike.
  const shapeIssues: ConfigIssue[] = [...substituted.issues, ...schemaIssues.filter((issue) => !unsetPaths.has(issue.path))]
  const references = referenceIssues(document)
  if (shapeIssues.length > 0) throw new ConfigError(ErrorCode.CONFIG_INVALID, [...shapeIssues, ...references])
  // The schema has checked the shape and filled every default: the document is a GatewayDocument now.
  const { config, findings } = compileDocument(document as GatewayDocument)
  const issues = [...references, ...findings.issues]
  if (issues.length > 0) throw new ConfigError(ErrorCode.CONFIG_INVALID, issues)
  return deepFreeze(config)
}
