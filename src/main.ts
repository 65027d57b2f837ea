#!/usr/bin/env node
import { runCli } from './cli/commands.js'
import { processOutput } from './cli/output.js'
import { systemClock } from './util/clock.js'

const code = await runCli(process.argv.slice(2), processOutput)
process.exitCode = code
// A command is done: if a stray handle (a socket closing slowly) would keep the
// process alive, leave anyway, so orchestrators and scripts see the exit code.
systemClock.setTimeout(() => process.exit(code), 1000, { unref: true })
