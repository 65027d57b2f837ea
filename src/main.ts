#!/usr/bin/env node
import { keepPrimaryLean } from './cluster/primary-v8.js'

// Before anything else loads (the CLI, the configuration's libraries): see cluster/primary-v8.ts.
keepPrimaryLean()
const [{ runCli }, { processOutput }, { systemClock }] = await Promise.all([import('./cli/commands.js'), import('./cli/output.js'), import('./util/clock.js')])

const code = await runCli(process.argv.slice(2), processOutput)
process.exitCode = code
// A command is done: if a stray handle (a socket closing slowly) would keep the
// process alive, leave anyway, so orchestrators and scripts see the exit code.
systemClock.setTimeout(() => process.exit(code), 1000, { unref: true })
