import { parseArgs, type ParseArgsConfig } from 'node:util'
import { UsageError } from '../errors.js'
import type { ExitCode, Output } from './output.js'

/** One CLI command: what --help prints, and what it runs. */
export type Command = CommandBody & { readonly summary: string }

/** A command without its one-line summary: the part of a command loaded only when it runs (commands.ts, LazyCommand). */
export type CommandBody = {
  readonly usage: string
  readonly help: string
  readonly run: (args: string[], output: Output) => Promise<ExitCode>
}

/** parseArgs with its errors turned into UsageError (exit code 2). */
export function parse<const T extends ParseArgsConfig> (config: T): ReturnType<typeof parseArgs<T>> {
  try {
    return parseArgs(config)
  } catch (error) {
    throw new UsageError((error as Error).message)
  }
}

