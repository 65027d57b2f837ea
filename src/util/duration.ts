/** A duration in milliseconds. The brand keeps seconds and milliseconds apart at compile time. */
export type Milliseconds = number & { readonly __unit: 'ms' }

export const ms = (value: number): Milliseconds => value as Milliseconds

/** Units, largest first: the order a compound duration must follow. `d` is srvgate's own (Go has none). */
const UNITS: ReadonlyArray<readonly [string, number]> = [['d', 86_400_000], ['h', 3_600_000], ['m', 60_000], ['s', 1000], ['ms', 1]]
const UNIT_NAMES = UNITS.map(([unit]) => unit).join(', ')
/** One part: a number (a fraction needs digits on both sides) and whatever letters follow it. */
const PART = /(\d+(?:\.\d+)?)([^\d.]*)/y

/**
 * The same syntax as a JSON Schema pattern, for editors (which skip custom
 * formats): units in order, each at most once; `m` is not the start of `ms`.
 * util.test.ts holds it to readDuration's answer on every case.
 */
const NUMBER = '\\d+(\\.\\d+)?'
export const DURATION_PATTERN = `^(0|(?=\\d)(${NUMBER}d)?(${NUMBER}h)?(${NUMBER}m(?!s))?(${NUMBER}s)?(${NUMBER}ms)?)$`

/** A duration, or why the text is not one (undefined: nothing to say beyond "not a duration"). */
export type DurationReading = { readonly value: Milliseconds } | { readonly problem: string | undefined }

/**
 * Go's time.ParseDuration syntax, as HAProxy and Caddy users write it
 * (`250ms`, `1s`, `1.5h`, `1h30m`, `2h45m30s`), with these differences:
 * - stricter: each unit at most once, largest first (Go sums `1h1h` and
 *   `30m1h`), no sign (Go takes `-1s`, `+1s`), no `ns`/`us`/`µs` (srvgate
 *   counts whole milliseconds), and a fraction needs digits on both sides
 *   (Go takes `.5s` and `1.s`);
 * - wider: `d` for days (`365d`, an HSTS max-age).
 * As in Go, `0` alone needs no unit.
 */
export function readDuration (text: string): DurationReading {
  const source = text
  if (source === '0') return { value: ms(0) }
  if (/^[+-]/.test(source)) return { problem: `${source} has a sign (a duration is never negative)` }
  let total = 0
  let position = 0
  let previousRank = -1
  while (position < source.length) {
    PART.lastIndex = position
    const part = PART.exec(source)
    if (part === null) return { problem: undefined }
    const [whole, number = '', unit = ''] = part
    if (unit === '') return { problem: `${number} has no unit (${UNIT_NAMES})` }
    const rank = UNITS.findIndex(([name]) => name === unit)
    if (rank < 0) {
      return { problem: ['ns', 'us', 'µs'].includes(unit) ? `${unit} is finer than srvgate counts (use ms)` : `"${unit}" is not a unit (${UNIT_NAMES})` }
    }
    if (rank === previousRank) return { problem: `${source} has ${unit} twice (each unit once, largest first: 1h30m)` }
    if (rank < previousRank) return { problem: `${source} has ${unit} after a smaller unit (largest first: 1h30m, not 30m1h)` }
    previousRank = rank
    total += Number(number) * (UNITS[rank] as readonly [string, number])[1]
    position += whole.length
  }
  if (position === 0 || !Number.isFinite(total)) return { problem: undefined }
  return { value: ms(Math.round(total)) }
}

/** `'250ms' | '1s' | '1.5h' | '1h30m' | '365d'` → milliseconds; `undefined` when the text is not a duration (readDuration says why). */
export function parseDuration (text: string): Milliseconds | undefined {
  const reading = readDuration(text)
  return 'value' in reading ? reading.value : undefined
}

/** The shortest exact form: 1500 → '1.5s', 60000 → '1m', 250 → '250ms'. */
export function formatDuration (value: Milliseconds | number): string {
  if (value >= 86_400_000 && value % 86_400_000 === 0) return `${value / 86_400_000}d`
  if (value >= 3_600_000 && value % 3_600_000 === 0) return `${value / 3_600_000}h`
  if (value >= 60_000 && value % 60_000 === 0) return `${value / 60_000}m`
  if (value >= 1000) return `${value / 1000}s`
  return `${value}ms`
}
