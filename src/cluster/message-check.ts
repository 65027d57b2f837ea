/**
 * Every message received is checked against its schema (protocol.ts) before
 * anything reads it. The checks are TypeBox's TypeCompiler output, generated
 * at build time (generated-message-checks.ts, `npm run protocol`), so no
 * process loads TypeBox to check messages: it is 218 modules and ~5 MB of
 * RSS at start, which a cluster's primary (issue 20: ≤ 75 MB) cannot spare.
 * TypeCompiler rather than ajv: both generate plain JavaScript for the
 * schema, and measured on our messages TypeCompiler's checks run 1.5 to 4
 * times as fast (a passive report ~30-80 ns against ~130-300 ns; a set of 20
 * instances ~0.8-1.1 µs against 1.1-1.8 µs, on a busy 2-core box). A message
 * is looked up by its type field first, so only its own check runs. Why an
 * invalid message failed, with the field at fault, is found afterwards
 * (message-errors.ts, loaded then).
 */
import type { Static } from '@sinclair/typebox'
import { TO_PRIMARY_CHECKS, TO_WORKER_CHECKS } from './generated-message-checks.js'
import { MESSAGE_PREFIX } from './protocol-version.js'
import type { Frozen, ToPrimarySchema, ToWorkerSchema } from './protocol.js'

type Direction = 'to-worker' | 'to-primary'

/** A message of ours that does not match its schema: dropped, never read. */
export class InvalidMessage {
  /** The message's type field (`srvgate:…`). */
  readonly type: string
  readonly #direction: Direction
  readonly #raw: unknown
  readonly #isKnown: boolean

  constructor (direction: Direction, type: string, raw: unknown, isKnown: boolean) {
    this.#direction = direction
    this.type = type
    this.#raw = raw
    this.#isKnown = isKnown
  }

  /** What is wrong, with the field's path: loads TypeBox the first time (never on a healthy cluster's path). */
  async reason (): Promise<string> {
    if (!this.#isKnown) return 'unknown message type'
    const { firstError } = await import('./message-errors.js')
    return firstError(this.#direction, this.type, this.#raw)
  }
}

/** A message's schema: an object whose type field is one literal. */
export type MessageSchema = ToWorkerSchema | ToPrimarySchema

export class MessageCheck<S extends MessageSchema> {
  readonly #direction: Direction
  readonly #checks: Readonly<Record<string, (value: unknown) => boolean>>

  constructor (direction: Direction, checks: Readonly<Record<string, (value: unknown) => boolean>>) {
    this.#direction = direction
    this.#checks = checks
  }

  /**
   * The message when it is ours and valid; an InvalidMessage when it is ours
   * (its type starts with `srvgate:`) and is not; undefined when it is not
   * ours (prom-client's cluster messages share the channel).
   */
  read (raw: unknown): Frozen<Static<S>> | InvalidMessage | undefined {
    const type = typeOf(raw)
    if (type === undefined) return undefined
    const check = Object.hasOwn(this.#checks, type) ? this.#checks[type] : undefined
    if (check === undefined) return new InvalidMessage(this.#direction, type, raw, false)
    if (isValid<S>(check, raw)) return raw
    return new InvalidMessage(this.#direction, type, raw, true)
  }
}

function isValid<S extends MessageSchema> (check: (value: unknown) => boolean, raw: unknown): raw is Frozen<Static<S>> {
  return check(raw)
}

function typeOf (raw: unknown): string | undefined {
  if (typeof raw !== 'object' || raw === null || !('type' in raw)) return undefined
  const type = raw.type
  return typeof type === 'string' && type.startsWith(MESSAGE_PREFIX) ? type : undefined
}

/** What a worker may receive. */
export const toWorkerCheck = new MessageCheck<ToWorkerSchema>('to-worker', TO_WORKER_CHECKS)
/** What the primary may receive. */
export const toPrimaryCheck = new MessageCheck<ToPrimarySchema>('to-primary', TO_PRIMARY_CHECKS)

/**
 * When to log an invalid message: the first of each type, then the 10th,
 * 100th, 1000th… (with the count), so a peer sending garbage in a loop costs
 * a handful of lines, not a flood, and a steady problem is still seen.
 */
export class InvalidMessageLog {
  readonly #counts = new Map<string, number>()

  /** The number of invalid messages of this type so far when this one is to be logged; undefined otherwise. */
  note (invalid: InvalidMessage): number | undefined {
    // Made-up types are counted together past a few dozen: the map stays small whatever arrives.
    const key = this.#counts.has(invalid.type) || this.#counts.size < MAX_TYPES ? invalid.type : OTHER_TYPES
    const count = (this.#counts.get(key) ?? 0) + 1
    this.#counts.set(key, count)
    return count === 1 || isPowerOfTen(count) ? count : undefined
  }
}

const MAX_TYPES = 64
const OTHER_TYPES = '(other types)'

function isPowerOfTen (count: number): boolean {
  let value = count
  while (value >= 10 && value % 10 === 0) value /= 10
  return value === 1
}
