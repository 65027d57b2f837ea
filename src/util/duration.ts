/** A duration in milliseconds. The brand keeps seconds and milliseconds apart at compile time. */
export type Milliseconds = number & { readonly __unit: 'ms' }

export const ms = (value: number): Milliseconds => value as Milliseconds

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }
const DURATION = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)$/

/** `'250ms' | '1s' | '1.5s' | '5m' | '2h' | '365d'` → milliseconds; `undefined` when the text is not a duration. */
export function parseDuration (text: string): Milliseconds | undefined {
  const match = DURATION.exec(text.trim())
  if (match === null) return undefined
  const value = Number(match[1]) * (UNIT_MS[match[2] as string] as number)
  return Number.isFinite(value) ? ms(Math.round(value)) : undefined
}

/** The shortest exact form: 1500 → '1.5s', 60000 → '1m', 250 → '250ms'. */
export function formatDuration (value: Milliseconds | number): string {
  if (value >= 86_400_000 && value % 86_400_000 === 0) return `${value / 86_400_000}d`
  if (value >= 3_600_000 && value % 3_600_000 === 0) return `${value / 3_600_000}h`
  if (value >= 60_000 && value % 60_000 === 0) return `${value / 60_000}m`
  if (value >= 1000) return `${value / 1000}s`
  return `${value}ms`
}
