import type { ConfigIssue } from '../errors.js'

export type Environment = Readonly<Record<string, string | undefined>>

const ENV_REFERENCE = /\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g

/**
 * Spec §2: `${NAME}` inside a string is the environment variable NAME; an
 * unset one is an error, with the path of the string. Returns a copy: the
 * parsed document is left as it was.
 */
export function substituteEnvironment (document: unknown, env: Environment): { readonly value: unknown, readonly issues: ConfigIssue[] } {
  const issues: ConfigIssue[] = []
  return { value: substitute(structuredClone(document), '', env, issues), issues }
}

function substitute (value: unknown, path: string, env: Environment, issues: ConfigIssue[]): unknown {
  if (typeof value === 'string') {
    return value.replace(ENV_REFERENCE, (_, name: string) => {
      const replacement = env[name]
      if (replacement === undefined) {
        issues.push({ path, message: `environment variable ${name} is not set` })
        return ''
      }
      return replacement
    })
  }
  if (Array.isArray(value)) return value.map((item, index) => substitute(item, `${path}[${index}]`, env, issues))
  if (value !== null && typeof value === 'object') {
    for (const [key, item] of Object.entries(value)) {
      (value as Record<string, unknown>)[key] = substitute(item, path === '' ? key : `${path}.${key}`, env, issues)
    }
  }
  return value
}
