import { configSummary, count } from '../config/summary.js'
import { loadConfigFile } from '../config/load-file.js'
import type { GatewayConfig } from '../config/types.js'
import { ConfigError, UsageError, formatIssue, type ConfigIssue } from '../errors.js'
import { CertificateStore } from '../tls/certificates.js'
import { systemClock } from '../util/clock.js'
import { StartAborted, startGateway, type RunningGateway } from '../server.js'
import { watchConfigFile } from '../config/watch.js'
import type { RunningDemo } from '../demo/run.js'
import { readDuration } from '../util/duration.js'
import { ExitCode, describeError, table, type Output } from './output.js'
import { parse, type Command, type CommandBody } from './args.js'
import type { PidFile } from './pid-file.js'
import { VERSION } from '../util/version.js'



/**
 * A command whose module loads only when it runs (or its help is asked for):
 * `run` in a cluster's primary never loads resolve's DNS client or reload's
 * HTTP client (docs/BENCHMARKS.md, "the primary's RSS").
 */
type LazyCommand = { readonly summary: string, readonly load: () => Promise<CommandBody> }

const COMMANDS: Record<string, Command | LazyCommand> = {
  demo: {
    summary: 'run a self-contained gateway with demo instances (no Consul needed)',
    usage: 'srvgate demo [--port PORT] [--admin-port PORT] [--churn [--churn-every DUR]] [--log-level LEVEL]',
    help: `Starts, in this process and on loopback: an SRV registry (a small
Consul-like DNS server), demo instances in prod, staging and a preview
environment, and srvgate in front of them. Prints curl commands for
host-based and header-based environment routing and the dashboard URL.

Options:
      --port PORT         public listener (default 8080)
      --admin-port PORT   admin listener and dashboard (default 9901)
      --churn             keep replacing instances on new ports
      --churn-every DUR   time between replacements (default 3s)
      --log-level LEVEL   log level (default error: quiet; info shows every request)
  -h, --help              this help

Ctrl-C stops everything it started. Exit codes: 0 stopped, 2 wrong usage,
3 could not start (a port in use, ...).`,
    run: runDemoCommand
  },
  run: {
    summary: 'run the gateway',
    usage: 'srvgate run -c FILE [--watch] [--pid-file PATH] [--log-level LEVEL]',
    help: `Loads FILE, resolves every backend once, then listens on listen.http
and/or listen.https (traffic; HTTPS serves HTTP/2 and HTTP/1.1) and
listen.admin (healthz, readyz, metrics, state, dashboard). Logs are JSON
lines (pino) on stdout, one per request.

Workers: one process per core serves traffic (node:cluster); the primary
resolves DNS, checks health and serves the admin listener once for all.
Set the count with workers: in FILE or SRVGATE_WORKERS (wins); 1 runs a
single process.

Signals: SIGHUP reloads FILE and the certificate files (validated and
warmed beside the old config, swapped in one step, in every worker or none;
on any error the old config keeps serving). SIGTERM or
SIGINT drains: readyz turns 503, after drain.delay the listener closes,
in-flight requests finish (up to drain.timeout, then they are cut), exit 0.
Signals that arrive during start-up are honoured: SIGTERM stops (exit 0),
SIGHUP reloads once started. Signals go to this process (with workers, the
primary), not to a wrapper: under \`npx srvgate run … &\`, $! is npx's pid
and \`kill -HUP $!\` kills npx, not srvgate. Use \`srvgate reload -c FILE\`,
--pid-file, or start it with \`exec node …/dist/main.js run\`.

Options:
  -c, --config FILE     the configuration file (required)
      --watch           reload when FILE changes (also a Kubernetes ConfigMap
                        update, which swaps a symlink); SIGHUP works either way
      --pid-file PATH   write this process's pid to PATH once listening, remove it
                        on exit; refuse to start if PATH names a running process
      --log-level LEVEL trace, debug, info (default), warn, error
  -h, --help            this help

Exit codes: 0 stopped cleanly, 1 invalid configuration (two listeners on
one address included), 2 wrong usage, 3 could not start (a listener that
cannot bind: the message names its field and address; a --pid-file that
names a running process).`,
    run: runRun
  },
  check: {
    summary: 'validate a configuration file',
    usage: 'srvgate check -c FILE',
    help: `Reads FILE (YAML or JSON), validates it against the schema and the
cross-references (resolvers, backends, {env} captures), and prints every
problem with its path in the document.

Options:
  -c, --config FILE   the configuration file (required)
  -h, --help          this help

Exit codes: 0 valid, 1 invalid, 2 wrong usage.`,
    run: runCheck
  },
  resolve: {
    summary: 'show what the resolver sees for a DNS name',
    load: async () => (await import('./resolve.js')).resolveCommand
  },
  reload: {
    summary: 'ask a running gateway to reload its configuration',
    load: async () => (await import('./reload.js')).reloadCommand
  }
}

function mainHelp (): string {
  const rows = Object.entries(COMMANDS).map(([name, command]) => [`  ${name}`, command.summary])
  return [
    'srvgate: an edge HTTP gateway for services discovered through DNS SRV records',
    '',
    'Usage: srvgate <command> [options]',
    '',
    'Commands:',
    ...table(rows),
    '',
    'Run `srvgate <command> --help` for a command\'s options.'
  ].join('\n')
}

/** Run one command line; returns the process exit code. Never throws. */
export async function runCli (argv: readonly string[], output: Output): Promise<ExitCode> {
  const [name, ...args] = argv
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    output.out(mainHelp())
    return name === undefined ? ExitCode.USAGE : ExitCode.OK
  }
  if (name === '--version' || name === '-v') {
    output.out(`srvgate ${VERSION}`)
    return ExitCode.OK
  }
  const entry = COMMANDS[name]
  if (entry === undefined) {
    output.err(`srvgate: unknown command "${name}"\n\n${mainHelp()}`)
    return ExitCode.USAGE
  }
  const command = 'load' in entry ? await entry.load() : entry
  if (args.includes('--help') || args.includes('-h')) {
    output.out(`Usage: ${command.usage}\n\n${command.help}`)
    return ExitCode.OK
  }
  try {
    return await command.run(args, output)
  } catch (error) {
    if (error instanceof UsageError) {
      output.err(`srvgate ${name}: ${error.message}\nUsage: ${command.usage}`)
      return ExitCode.USAGE
    }
    if (error instanceof ConfigError) {
      // The file's fault, not the command line's: exit 1, as check and run do.
      output.err(`srvgate ${name}: invalid configuration`)
      for (const line of describeError(error)) output.err(line)
      return ExitCode.FAILED
    }
    output.err(`srvgate ${name}: ${describeError(error).join('\n')}`)
    return ExitCode.UNAVAILABLE
  }
}

async function runCheck (args: string[], output: Output): Promise<ExitCode> {
  const { values } = parse({ args, options: { config: { type: 'string', short: 'c' } }, strict: true })
  const file = values.config
  if (typeof file !== 'string') throw new UsageError('--config FILE is required')
  let config: GatewayConfig
  let warnings: readonly ConfigIssue[]
  try {
    config = await loadConfigFile(file)
    // Certificate files are read and checked as `run` would: readable, key matching, in their validity window.
    const certificates = config.tls === undefined || config.listen.https === undefined ? undefined : await CertificateStore.load(config.tls, systemClock.wallNow())
    warnings = [...config.warnings, ...(certificates?.warnings ?? [])]
  } catch (error) {
    output.err(`${file}: invalid configuration`)
    for (const line of describeError(error)) output.err(line)
    return ExitCode.FAILED
  }
  for (const warning of warnings) output.err(`${file}: warning: ${formatIssue(warning)}`)
  output.out(`${file}: ok: ${configSummary(config)}, ${count(config.resolvers.size, 'resolver')}; listening on ${[config.listen.http?.label, config.listen.https === undefined ? undefined : `https ${config.listen.https.label}`].filter((label) => label !== undefined).join(' and ')}, admin ${config.listen.admin.label}` +
    `${config.dns === undefined ? '' : `, DNS face ${config.dns.zone} on ${config.dns.listen.map((address) => address.label).join(' and ')}`}` +
    `${config.tracing === undefined ? '' : `, tracing to ${config.tracing.endpoint} (${config.tracing.protocol}, sampleRatio ${config.tracing.sampleRatio}, service ${config.tracing.serviceName})`}` +
    `${warnings.length > 0 ? `; ${count(warnings.length, 'warning')}` : ''}`)
  return ExitCode.OK
}

async function runDemoCommand (args: string[], output: Output): Promise<ExitCode> {
  const { values } = parse({
    args,
    strict: true,
    options: {
      port: { type: 'string', default: '8080' },
      'admin-port': { type: 'string', default: '9901' },
      churn: { type: 'boolean', default: false },
      'churn-every': { type: 'string', default: '3s' },
      'log-level': { type: 'string', default: 'error' }
    }
  })
  const port = portOption(String(values.port), '--port')
  const adminPort = portOption(String(values['admin-port']), '--admin-port')
  const reading = readDuration(String(values['churn-every']))
  if (!('value' in reading) || reading.value < 100) {
    const why = 'problem' in reading && reading.problem !== undefined ? `: ${reading.problem}` : ''
    throw new UsageError(`--churn-every must be a duration of at least 100ms, not "${String(values['churn-every'])}"${why}`)
  }
  const every = reading.value
  if (values.churn !== true && args.some((arg) => arg.startsWith('--churn-every'))) output.err('srvgate demo: --churn-every has no effect without --churn')
  let demo: RunningDemo
  try {
    // Loaded here, not at start: `run` (the primary) never loads the demo's data plane.
    const { runDemo } = await import('../demo/run.js')
    demo = await runDemo({ port, adminPort, churnEveryMs: values.churn === true ? every : 0, logLevel: String(values['log-level']), print: output.out })
  } catch (error) {
    output.err(`srvgate demo: could not start: ${describeError(error).join('; ')}`)
    return ExitCode.UNAVAILABLE
  }
  return await stopOnSignal(async () => {
    output.out('stopping the demo...')
    await demo.stop()
  }, output, 'demo')
}

/** Wait for SIGTERM or SIGINT, run `stop` once, and turn how it went into the exit code. */
async function stopOnSignal (stop: (signal: string) => Promise<void>, output: Output, command: string): Promise<ExitCode> {
  return await new Promise<ExitCode>((resolve) => {
    let isStopping = false
    const onSignal = (signal: string): void => {
      if (isStopping) return
      isStopping = true
      stop(signal).then(() => { resolve(ExitCode.OK) }, (error: unknown) => {
        output.err(`srvgate ${command}: error while stopping: ${describeError(error).join('; ')}`)
        resolve(ExitCode.UNAVAILABLE)
      })
    }
    process.once('SIGTERM', () => { onSignal('SIGTERM') })
    process.once('SIGINT', () => { onSignal('SIGINT') })
  })
}

function portOption (text: string, name: string): number {
  const port = Number(text)
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new UsageError(`${name} must be a port number, not "${text}"`)
  return port
}

async function runRun (args: string[], output: Output): Promise<ExitCode> {
  const { values } = parse({ args, strict: true, options: { config: { type: 'string', short: 'c' }, 'log-level': { type: 'string', default: 'info' }, watch: { type: 'boolean', default: false }, 'pid-file': { type: 'string' } } })
  const file = values.config
  if (typeof file !== 'string') throw new UsageError('--config FILE is required')
  const level = String(values['log-level'])
  if (!['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'].includes(level)) throw new UsageError(`--log-level must be trace, debug, info, warn or error, not "${level}"`)
  // Handlers go in before anything starts: a signal during the first resolutions must not
  // kill the process with the shell's default (129, 143). SIGTERM then exits 0; SIGHUP is
  // applied once started.
  const stopping = new AbortController()
  let stopSignal: string | undefined
  let isHangupPending = false
  let running: RunningGateway | undefined
  const onStop = (signal: string): void => {
    stopSignal ??= signal
    stopping.abort()
  }
  const onTerm = (): void => { onStop('SIGTERM') }
  const onInt = (): void => { onStop('SIGINT') }
  const onHangup = (): void => {
    if (running === undefined) isHangupPending = true
    else void running.reload()
  }
  process.on('SIGTERM', onTerm)
  process.on('SIGINT', onInt)
  process.on('SIGHUP', onHangup)
  const removeHandlers = (): void => {
    process.removeListener('SIGTERM', onTerm)
    process.removeListener('SIGINT', onInt)
    process.removeListener('SIGHUP', onHangup)
  }
  let pidFile: PidFile | undefined
  try {
    pidFile = values['pid-file'] === undefined ? undefined : await (await import('./pid-file.js')).PidFile.claim(values['pid-file'])
    running = await startGateway(file, { logLevel: level, signal: stopping.signal })
  } catch (error) {
    removeHandlers()
    if (error instanceof StartAborted) {
      output.err(`srvgate run: ${stopSignal ?? 'signal'} during start-up: stopped`)
      return ExitCode.OK
    }
    if (error instanceof ConfigError) {
      output.err(`${file}: invalid configuration`)
      for (const line of describeError(error)) output.err(line)
      return ExitCode.FAILED
    }
    output.err(`srvgate run: could not start: ${describeError(error).join('; ')}`)
    return ExitCode.UNAVAILABLE
  }
  const gateway = running
  const log = gateway.log
  let exitCode: ExitCode = ExitCode.OK
  if (pidFile !== undefined) {
    // Written once every listener is up: a supervisor that waits for the file finds a gateway that serves.
    try {
      await pidFile.write()
      if (pidFile.stalePid !== undefined) log.warn({ pidFile: pidFile.path, stalePid: pidFile.stalePid }, 'the pid file named a process that has gone: replaced')
    } catch (error) {
      output.err(`srvgate run: ${describeError(error).join('; ')}; stopping`)
      pidFile = undefined
      exitCode = ExitCode.UNAVAILABLE
      onStop('pid-file')
    }
  }
  if (isHangupPending) void gateway.reload()
  const watcher = values.watch === true
    ? watchConfigFile(file, () => {
      log.info({ file }, 'configuration file changed: reloading')
      void gateway.reload()
    }, { runningText: gateway.text, onError: (error) => { log.warn({ err: error, file }, 'cannot watch the configuration file; SIGHUP still reloads') } })
    : undefined
  if (!stopping.signal.aborted) await new Promise<void>((resolve) => { stopping.signal.addEventListener('abort', () => { resolve() }, { once: true }) })
  watcher?.stop()
  log.info({ signal: stopSignal }, 'stopping')
  try {
    await gateway.drain()
  } catch (error) {
    output.err(`srvgate run: error while stopping: ${describeError(error).join('; ')}`)
    return ExitCode.UNAVAILABLE
  } finally {
    removeHandlers()
    await pidFile?.remove()
  }
  return exitCode
}
