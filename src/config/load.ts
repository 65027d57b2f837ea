import { ConfigError, ErrorCode, type ConfigIssue } from '../errors.js'
import type { GatewayConfig } from './types.js'
import type { GatewayDocument } from './schema.js'
import { validateAgainstSchema } from './validate.js'
import { parseYamlText } from './read.js'
import { substituteEnvironment, type Environment } from './environment.js'
import { referenceIssues } from './references.js'
import { compileDocument } from './compile.js'
import { deepFreeze } from './freeze.js'
import type { CheckedDocument } from './check-in-child.js'
import { compileChecked } from './compile-checked.js'

/**
 * Checking a configuration's text, stage by stage: parse YAML keeping lines
 * (read.ts), substitute `${ENV}` (environment.ts), validate and fill
 * defaults (validate.ts), check references (references.ts), compile
 * (compile.ts). All or nothing: every issue a stage finds is reported at
 * once, in one ConfigError. Reading a file is load-file.ts, which runs this
 * in a child process.
 */

export type { Environment } from './environment.js'

/** Parse YAML or JSON text and compile it; every issue and warning carries its line in the text (a syntax error, `file` too). */
export function parseConfigText (text: string, env: Environment = process.env, file?: string): GatewayConfig {
  return compileChecked(checkConfigText(text, env, file))
}

/**
 * Parse, substitute, validate and compile YAML or JSON text, keeping only
 * what crosses to another process: the validated document (defaults filled) and the
 * warnings, each with its line. Throws ConfigError with every issue, each
 * with its line (a syntax error, `file` too).
 */
export function checkConfigText (text: string, env: Environment = process.env, file?: string): CheckedDocument {
  const parsed = parseYamlText(text, file)
  try {
    const { document, config } = validateAndCompile(parsed.value, env)
    return { document, warnings: parsed.withLines(config.warnings) }
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error
    throw new ConfigError(error.code, parsed.withLines(error.issues), { cause: error.cause })
  }
}

/** parseConfigText, keeping the checked document: what a data plane is given to compile again (roles.ts). */
export function loadConfigText (text: string, env: Environment = process.env): { readonly config: GatewayConfig, readonly document: GatewayDocument } {
  const checked = checkConfigText(text, env)
  return { config: compileChecked(checked), document: checked.document }
}

/** Validate a parsed document (a fresh copy is filled with defaults) and compile it. */
export function compileConfig (input: unknown, env: Environment = process.env): GatewayConfig {
  return deepFreeze(validateAndCompile(input, env).config)
}

function validateAndCompile (input: unknown, env: Environment): { readonly document: GatewayDocument, readonly config: GatewayConfig } {
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
  const checked = document as GatewayDocument
  const { config, findings } = compileDocument(checked, env)
  const issues = [...references, ...findings.issues]
  if (issues.length > 0) throw new ConfigError(ErrorCode.CONFIG_INVALID, issues)
  return { document: checked, config }
}
