import { hostname } from 'node:os'
import pino from 'pino'
import { isoNow, systemClock, type Clock } from '../util/clock.js'
import { LineBatch } from '../util/line-batch.js'

/**
 * pino's one home: the process's logger, its stdout destination, the lazy
 * per-request logger fastify is given, and the base fields srvgate's own
 * lines share with pino's. No private field of pino is read.
 */

export type ProcessLogger = pino.Logger
export type LoggerOptions = { readonly level?: string } | true

/** Every log line, run or demo: ISO 8601 times and level names, what people and log shippers read without a table. */
export function processLogger (options: LoggerOptions, clock: Clock, destination: pino.DestinationStream = stdoutDestination()): pino.Logger {
  // pino's default base, given explicitly: the access lines (pinoBindings) carry the same fields from the same object.
  const base = { pid: process.pid, hostname: hostname() }
  const logger = pino({ ...(typeof options === 'object' ? options : {}), base, timestamp: () => `,"time":"${isoNow(clock)}"`, formatters: { level: (label: string) => ({ level: label }) } }, destination)
  serializedBases.set(logger, serializeFields(base))
  return logger
}

/** Each process logger's base fields, serialized once (read once, when the access log is made). */
const serializedBases = new WeakMap<object, string>()

/** `,"name":value` per field: how pino writes the base after level and time (test/unit/log/process-log.test.ts holds it to that). */
function serializeFields (fields: Readonly<Record<string, string | number>>): string {
  let text = ''
  for (const [name, value] of Object.entries(fields)) text += `,${JSON.stringify(name)}:${JSON.stringify(value)}`
  return text
}

let stdout: ReturnType<typeof pino.destination> | undefined
let accessLines: LineBatch | undefined

/**
 * Where every log line of this process goes (pino JSON and the common access
 * format alike): stdout through one sonic-boom, asynchronous, so a request
 * never waits on a write, and lines that arrive while a write is under way go
 * out together in the next one (batched under load, at once when idle).
 * Flushed synchronously when the process exits.
 */
function stdoutDestination (): ReturnType<typeof pino.destination> {
  if (stdout === undefined) {
    const destination = pino.destination({ dest: 1, sync: false })
    stdout = destination
    process.once('exit', () => {
      accessLines?.flush()
      try { destination.flushSync() } catch { /* stdout already closed: nothing to save */ }
    })
  }
  return stdout
}

/** Access lines, gathered into one write per 20 ms into the same destination (util/line-batch.ts says why). */
export function stdoutLines (): LineBatch {
  if (accessLines === undefined) {
    const destination = stdoutDestination()
    accessLines = new LineBatch((chunk) => { destination.write(chunk) }, systemClock)
  }
  return accessLines
}

/**
 * request.log and reply.log: a child of the process's logger carrying the
 * request id, made only when a line about the request is written (fastify's
 * own warnings and errors about a request come through here). Not made per
 * request: fastify's factory runs for every request, and a pino child costs
 * its bindings' serialization.
 */
export class RequestLogger implements pino.BaseLogger {
  readonly #parent: pino.Logger
  readonly #bindings: pino.Bindings
  #child: pino.Logger | undefined

  constructor (parent: pino.Logger, bindings: pino.Bindings) {
    this.#parent = parent
    this.#bindings = bindings
  }

  get #logger (): pino.Logger {
    this.#child ??= this.#parent.child(this.#bindings)
    return this.#child
  }

  get level (): string { return this.#parent.level }
  set level (level: string) { this.#logger.level = level }
  get msgPrefix (): string | undefined { return this.#parent.msgPrefix }
  // Methods, not arrow fields: fastify makes one of these for every request, and six closures each were ~300 bytes a request.
  fatal (...args: unknown[]): void { Reflect.apply(this.#logger.fatal, this.#logger, args) }
  error (...args: unknown[]): void { Reflect.apply(this.#logger.error, this.#logger, args) }
  warn (...args: unknown[]): void { Reflect.apply(this.#logger.warn, this.#logger, args) }
  info (...args: unknown[]): void { Reflect.apply(this.#logger.info, this.#logger, args) }
  debug (...args: unknown[]): void { Reflect.apply(this.#logger.debug, this.#logger, args) }
  trace (...args: unknown[]): void { Reflect.apply(this.#logger.trace, this.#logger, args) }
  silent (): void {}
  child (bindings: pino.Bindings, options?: pino.ChildLoggerOptions): pino.Logger { return this.#logger.child(bindings, options) }
}

/**
 * A process logger's base fields serialized as pino writes them
 * (`,"pid":…,"hostname":"…"`), for lines srvgate writes itself; none for any
 * other logger (logging off). Made from the base given to pino, not read from
 * pino's private serialized copy (`chindingsSym`, once per start: it saved
 * nothing a request).
 */
export function pinoBindings (log: object): string {
  return serializedBases.get(log) ?? ''
}

/** fastify's childLoggerFactory: a RequestLogger (a pino BaseLogger whose child is a real pino child). */
export function requestLogger (parent: pino.Logger, bindings: pino.Bindings): RequestLogger {
  return new RequestLogger(parent, bindings)
}

/** What srvgate's modules log through: pino's logger (a FastifyBaseLogger too). */
export type Log = pino.Logger

/** A logger that writes nothing (logging off: tests that read no logs). */
export function silentLogger (): pino.Logger {
  return pino({ level: 'silent' })
}
