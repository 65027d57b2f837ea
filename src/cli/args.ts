import { parseArgs, type ParseArgsConfig } from 'node:util'
import { UsageError } from '../errors.js'
import type { ExitCode, Output } from './output.js'

/** One CLI command: what --help prints, and what it runs. */
export type Command = {
  readonly summary: string
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

