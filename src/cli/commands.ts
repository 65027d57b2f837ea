import { parseArgs, type ParseArgsConfig } from 'node:util'
import { loadConfigFile } from '../config/load.js'
import type { GatewayConfig, ResolverConfig } from '../config/types.js'
import { DnsResolver } from '../dns/resolver.js'
import { DnsTransport } from '../dns/transport.js'
import type { DnsObserver, RecordType, Resolution } from '../dns/types.js'
import { ConfigError, DnsError, UsageError, formatIssue } from '../errors.js'
import { StartAborted, startGateway, type RunningGateway } from '../server.js'
import { watchConfigFile } from '../config/watch.js'
import { runDemo, type RunningDemo } from '../demo/run.js'
import { makeAddress, parseAddress, type Address } from '../util/address.js'
import { lookup } from 'node:dns/promises'
import { formatDuration, parseDuration } from '../util/duration.js'
import { ExitCode, describeError, table, type Output } from './output.js'
import { VERSION } from '../util/version.js'

type Command = {
  readonly summary: string
  readonly usage: string
  readonly help: string
  readonly run: (args: string[], output: Output) => Promise<ExitCode>
}

const DEFAULT_NAMESERVER = '127.0.0.1:8600'

const COMMANDS: Record<string, Command> = {
  demo: {
    summary: 'run a self-contained gateway with demo instances (no Consul needed)',
    usage: 'srvgate demo [--port PORT] [--admin-port PORT] [--churn [--churn-every DUR]]',
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
    usage: 'srvgate run -c FILE [--watch] [--log-level LEVEL]',
    help: `Loads FILE, resolves every backend once, then listens on listen.http
(traffic) and listen.admin (healthz, readyz, metrics, state, dashboard).
Logs are JSON lines (pino) on stdout, one per request.

Signals: SIGHUP reloads FILE (validated and warmed beside the old config,
swapped in one step; on any error the old config keeps serving). SIGTERM or
SIGINT drains: readyz turns 503, after drain.delay the listener closes,
in-flight requests finish (up to drain.timeout, then they are cut), exit 0.
Signals that arrive during start-up are honoured: SIGTERM stops (exit 0),
SIGHUP reloads once started.

Options:
  -c, --config FILE     the configuration file (required)
      --watch           reload when FILE changes (also a Kubernetes ConfigMap
                        update, which swaps a symlink); SIGHUP works either way
      --log-level LEVEL trace, debug, info (default), warn, error
  -h, --help            this help

Exit codes: 0 stopped cleanly, 1 invalid configuration, 2 wrong usage,
3 could not start (address in use, ...).`,
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
    usage: 'srvgate resolve NAME [--type SRV|A|AAAA] [--nameserver HOST:PORT] [-c FILE [--resolver NAME]]',
    help: `Queries NAME the way the gateway does (EDNS0 over UDP, TCP when the
answer is cut, answers checked) and prints the instances with priority,
weight and port, the TTL as received and as clamped, which nameserver
answered over UDP or TCP, and every answer that was rejected and why.

Options:
  -t, --type TYPE       SRV (default), A or AAAA
  -n, --nameserver ADDR nameserver host:port, repeatable; also --server (default: the
                        resolver from --config, else ${DEFAULT_NAMESERVER}, a local Consul agent)
  -c, --config FILE     take nameservers, timeout, attempts and TTL clamp from FILE
  -r, --resolver NAME   which resolver of FILE (default: the first)
      --timeout DUR     per attempt (default 500ms)
      --json            print one JSON document for scripts
  -h, --help            this help

Exit codes: 0 records found, 1 NXDOMAIN or no records, 2 wrong usage,
3 DNS failure (timeout, SERVFAIL, every answer rejected).`,
    run: runResolve
  }
}

export function mainHelp (): string {
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
  const command = COMMANDS[name]
  if (command === undefined) {
    output.err(`srvgate: unknown command "${name}"\n\n${mainHelp()}`)
    return ExitCode.USAGE
  }
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

/** parseArgs with its errors turned into UsageError (exit code 2). */
function parse<const T extends ParseArgsConfig> (config: T): ReturnType<typeof parseArgs<T>> {
  try {
    return parseArgs(config)
  } catch (error) {
    throw new UsageError((error as Error).message)
  }
}

async function runCheck (args: string[], output: Output): Promise<ExitCode> {
  const { values } = parse({ args, options: { config: { type: 'string', short: 'c' } }, strict: true })
  const file = values.config
  if (typeof file !== 'string') throw new UsageError('--config FILE is required')
  let config: GatewayConfig
  try {
    config = await loadConfigFile(file)
  } catch (error) {
    output.err(`${file}: invalid configuration`)
    for (const line of describeError(error)) output.err(line)
    return ExitCode.FAILED
  }
  const templates = config.frontends.filter((frontend) => frontend.backend.kind === 'template').length
  for (const warning of config.warnings) output.err(`${file}: warning: ${formatIssue(warning)}`)
  output.out(`${file}: ok: ${count(config.frontends.length, 'frontend')}, ${count(config.backends.size, 'backend')}` +
    `${templates > 0 ? ` (+${templates} templated)` : ''}, ${count(config.resolvers.size, 'resolver')}; listening on ${config.listen.http.label}, admin ${config.listen.admin.label}` +
    `${config.warnings.length > 0 ? `; ${count(config.warnings.length, 'warning')}` : ''}`)
  return ExitCode.OK
}

/** `1 resolver`, `2 resolvers`. */
function count (value: number, noun: string): string {
  return `${value} ${noun}${value === 1 ? '' : 's'}`
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
  const every = parseDuration(String(values['churn-every']))
  if (every === undefined || every < 100) throw new UsageError(`--churn-every must be a duration of at least 100ms, not "${String(values['churn-every'])}"`)
  let demo: RunningDemo
  try {
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
  const { values } = parse({ args, strict: true, options: { config: { type: 'string', short: 'c' }, 'log-level': { type: 'string', default: 'info' }, watch: { type: 'boolean', default: false } } })
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
  try {
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
  const log = gateway.gateway.publicApp.log
  if (isHangupPending) void gateway.reload()
  const watcher = values.watch === true
    ? watchConfigFile(file, () => {
      log.info({ file }, 'configuration file changed: reloading')
      void gateway.reload()
    }, { onError: (error) => { log.warn({ err: error, file }, 'cannot watch the configuration file; SIGHUP still reloads') } })
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
  }
  return ExitCode.OK
}

type RejectionNote = { nameserver: string, transport: string, reason: string, detail: string }
type QueryNote = { nameserver: string, transport: string, outcome: string }

async function runResolve (args: string[], output: Output): Promise<ExitCode> {
  const { values, positionals } = parse({ args, allowPositionals: true, strict: true, options: {
    type: { type: 'string', short: 't', default: 'SRV' },
    server: { type: 'string', short: 's', multiple: true },
    nameserver: { type: 'string', short: 'n', multiple: true },
    config: { type: 'string', short: 'c' },
    resolver: { type: 'string', short: 'r' },
    timeout: { type: 'string' },
    json: { type: 'boolean', default: false }
  } })
  const [name, ...extra] = positionals
  if (name === undefined || extra.length > 0) throw new UsageError('give exactly one NAME')
  const type = String(values.type).toUpperCase()
  if (type !== 'SRV' && type !== 'A' && type !== 'AAAA') throw new UsageError(`--type must be SRV, A or AAAA, not ${String(values.type)}`)
  // --nameserver is the spec's word; --server stays for those who learnt it.
  const servers = [...(values.server ?? []), ...(values.nameserver ?? [])]
  const settings = await resolverSettings({ ...values, server: servers.length === 0 ? undefined : servers })

  const queries: QueryNote[] = []
  const rejections: RejectionNote[] = []
  const observer: DnsObserver = {
    queried: (event) => { queries.push({ ...event }) },
    answerRejected: (event) => { rejections.push({ ...event }) }
  }
  const resolver = new DnsResolver(settings, new DnsTransport(observer))
  const report = { name, type, nameservers: settings.nameservers.map((address) => address.label), queries, rejections }
  let resolution: Resolution
  try {
    resolution = await resolveAs(resolver, name, type)
  } catch (error) {
    if (!(error instanceof DnsError)) throw error
    if (values.json === true) output.out(JSON.stringify({ ...report, error: { code: error.code, message: error.message } }, null, 2))
    else {
      output.err(`${name} ${type}: no answer: ${error.message} (${error.code})`)
      printNotes(output.err, queries, rejections)
    }
    return ExitCode.UNAVAILABLE
  }
  const ttlClampedMs = resolution.ttlSeconds === undefined ? undefined : Math.min(Math.max(resolution.ttlSeconds * 1000, settings.ttl.minMs), settings.ttl.maxMs)
  if (values.json === true) {
    output.out(JSON.stringify({ ...report, ...resolution, ttlClampedMs }, null, 2))
  } else {
    printResolution(output, name, type, resolution, ttlClampedMs, settings)
    printNotes(output.out, queries, rejections)
  }
  return resolution.outcome === 'answer' ? ExitCode.OK : ExitCode.FAILED
}

async function resolveAs (resolver: DnsResolver, name: string, type: RecordType): Promise<Resolution> {
  if (type === 'SRV') return await resolver.resolve({ kind: 'srv', name })
  const message = await resolver.query({ name, type })
  const outcome = message.rcode === 3 ? 'nxdomain' : message.addresses.length === 0 ? 'nodata' : 'answer'
  return {
    outcome,
    instances: message.addresses.map((record) => ({ address: record.address, port: 0, priority: 0, weight: 1, target: record.name })),
    ttlSeconds: message.minTtl,
    nameserver: message.nameserver,
    transport: message.transport,
    tcpReason: message.tcpReason
  }
}

type ResolverSettings = Pick<ResolverConfig, 'nameservers' | 'timeoutMs' | 'attempts' | 'ednsPayload' | 'ttl'>

async function resolverSettings (values: { server?: string[] | undefined, config?: string | undefined, resolver?: string | undefined, timeout?: string | undefined }): Promise<ResolverSettings> {
  let base: ResolverSettings = {
    nameservers: [parseAddress(DEFAULT_NAMESERVER) as Address],
    timeoutMs: parseDuration('500ms') as ResolverConfig['timeoutMs'],
    attempts: 3,
    ednsPayload: 4096,
    ttl: { minMs: parseDuration('1s') as ResolverConfig['timeoutMs'], maxMs: parseDuration('30s') as ResolverConfig['timeoutMs'] }
  }
  if (values.config !== undefined) {
    const config = await loadConfigFile(values.config)
    const resolver = values.resolver === undefined ? [...config.resolvers.values()][0] : config.resolvers.get(values.resolver)
    if (resolver === undefined) throw new UsageError(values.resolver === undefined ? `${values.config} defines no resolver` : `${values.config} has no resolver "${values.resolver}"`)
    base = resolver
  } else if (values.resolver !== undefined) {
    throw new UsageError('--resolver needs --config')
  }
  if (values.server !== undefined) {
    const nameservers = await Promise.all(values.server.map(async (text) => {
      const address = parseAddress(text) ?? parseAddress(`${text}:53`)
      if (address === undefined) throw new UsageError(`--server must be host:port or an address with an optional port, such as 127.0.0.1:8600, [::1]:8600 or consul:8600, not "${text}"`)
      if (address.family !== 0) return address
      try {
        return makeAddress((await lookup(address.host)).address, address.port)
      } catch (error) {
        throw new UsageError(`--server ${text}: cannot resolve the host name "${address.host}" (${(error as { code?: string }).code ?? (error as Error).message})`)
      }
    }))
    base = { ...base, nameservers }
  }
  if (values.timeout !== undefined) {
    const timeoutMs = parseDuration(values.timeout)
    if (timeoutMs === undefined) throw new UsageError(`--timeout must be a duration such as 500ms, not "${values.timeout}"`)
    base = { ...base, timeoutMs }
  }
  return base
}

function printResolution (output: Output, name: string, type: string, resolution: Resolution, ttlClampedMs: number | undefined, settings: ResolverSettings): void {
  const via = `${resolution.nameserver} over ${resolution.transport.toUpperCase()}${resolution.tcpReason === undefined ? '' : ` (${resolution.tcpReason})`}`
  if (resolution.outcome !== 'answer') {
    output.out(`${name} ${type}: ${resolution.outcome === 'nxdomain' ? 'NXDOMAIN (no such name; for Consul: no healthy instance)' : 'NOERROR with no records of this type'}`)
    output.out(`answered by ${via}`)
    return
  }
  output.out(`${name} ${type}: ${resolution.instances.length} instance(s), answered by ${via}`)
  output.out(`TTL ${String(resolution.ttlSeconds)}s as received, ${formatDuration(ttlClampedMs ?? 0)} as clamped (ttl.min ${formatDuration(settings.ttl.minMs)}, ttl.max ${formatDuration(settings.ttl.maxMs)})`)
  const priorities = [...new Set(resolution.instances.map((instance) => instance.priority))]
  for (const [index, priority] of priorities.entries()) {
    if (type === 'SRV') output.out(`priority ${priority} ${index === 0 ? '(active)' : '(backup: used only when every higher-priority instance is out)'}`)
    const rows = resolution.instances.filter((instance) => instance.priority === priority)
      .map((instance) => type === 'SRV'
        ? ['  ' + formatInstance(instance.address, instance.port), `weight ${instance.weight}`, instance.target]
        : ['  ' + instance.address, instance.target])
    for (const line of table(rows)) output.out(line)
  }
}

function formatInstance (address: string, port: number): string {
  return address.includes(':') ? `[${address}]:${port}` : `${address}:${port}`
}

function printNotes (print: (line: string) => void, queries: readonly QueryNote[], rejections: readonly RejectionNote[]): void {
  print(`queries: ${queries.map((query) => `${query.nameserver}/${query.transport} ${query.outcome}`).join(', ')}`)
  for (const rejection of rejections) {
    print(`rejected answer from ${rejection.nameserver}/${rejection.transport}: ${rejection.reason}: ${rejection.detail}`)
  }
}
