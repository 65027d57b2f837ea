import { ConfigError, GatewayError, formatIssue } from '../errors.js'

/** Where a command writes: a person reads stdout and stderr; tests capture them. */
export type Output = {
  readonly out: (line: string) => void
  readonly err: (line: string) => void
}

export const processOutput: Output = {
  out: (line) => { process.stdout.write(`${line}\n`) },
  err: (line) => { process.stderr.write(`${line}\n`) }
}

/**
 * Exit codes scripts can rely on:
 * 0 success; 1 the input was checked and found wanting (invalid config, name
 * with no instances); 2 wrong usage; 3 DNS or system failure.
 */
export const ExitCode = { OK: 0, FAILED: 1, USAGE: 2, UNAVAILABLE: 3 } as const
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode]

/** An error for a person: what went wrong, every config issue on its own line (a YAML error with its excerpt), the stable code last. */
export function describeError (error: unknown): string[] {
  if (error instanceof ConfigError) {
    return [...error.issues.flatMap((issue) => [`  ${formatIssue(issue)}`, ...(issue.excerpt ?? []).map((line) => `    ${line}`)]), `(${error.code})`]
  }
  if (error instanceof GatewayError) return [`${error.message} (${error.code})`]
  return [error instanceof Error ? error.message : String(error)]
}

/** Columns padded to their widest cell. */
export function table (rows: readonly (readonly string[])[]): string[] {
  const widths: number[] = []
  for (const row of rows) row.forEach((cell, index) => { widths[index] = Math.max(widths[index] ?? 0, cell.length) })
  return rows.map((row) => row.map((cell, index) => index === row.length - 1 ? cell : cell.padEnd(widths[index] ?? 0)).join('  ').trimEnd())
}
