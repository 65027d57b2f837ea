#!/usr/bin/env node
import { runCli } from './cli/commands.js'
import { processOutput } from './cli/output.js'

process.exitCode = await runCli(process.argv.slice(2), processOutput)
