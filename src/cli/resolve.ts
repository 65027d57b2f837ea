import { lookup } from 'node:dns/promises'
import { loadConfigFile } from '../config/load-file.js'
import type { ResolverConfig } from '../config/types.js'
import { clampTtlMs } from '../dns/cache-rules.js'
import { DnsResolver } from '../dns/resolver.js'
import { DnsTransport } from '../dns/transport.js'
import type { DnsObserver, RecordType, Resolution } from '../dns/types.js'
import { DnsError, UsageError } from '../errors.js'
import { knownNames } from '../config/convert.js'
import { formatHostPort, makeAddress, parseAddress } from '../util/address.js'
import { formatDuration, parseDuration } from '../util/duration.js'
import { parse, type CommandBody } from './args.js'
import { ExitCode, table, type Output } from './output.js'

const DEFAULT_NAMESERVER = '127.0.0.1:8600'

/** `srvgate resolve`: what the gateway's resolver sees for a name, with the gateway's own defaults and clamp. */
export const resolveCommand: CommandBody = {
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

Exit codes: 0 records found, 1 NXDOMAIN or no records, or an invalid FILE
(or one with no resolver NAME), 2 wrong usage, 3 DNS failure (timeout,
SERVFAIL, every answer rejected).`,
  run: runResolve
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
  if ('missing' in settings) {
    // Well-formed, but FILE has no such resolver: the input checked and found wanting (1), as an invalid FILE is; not wrong usage (2).
    output.err(`srvgate resolve: ${settings.missing}`)
    return ExitCode.FAILED
  }

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
  const ttlClampedMs = resolution.ttlSeconds === undefined ? undefined : clampTtlMs(resolution.ttlSeconds, settings.ttl)
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

/** The settings to query with; `missing` when FILE has no resolver of that name (or none at all). */
async function resolverSettings (values: { server?: string[] | undefined, config?: string | undefined, resolver?: string | undefined, timeout?: string | undefined }): Promise<ResolverSettings | { missing: string }> {
  // The schema's own defaults, not copies: a resolver with nothing but a nameserver. Loaded here
  // (it brings the YAML parser and ajv), not with the CLI: `srvgate run` checks its file in a child process.
  const { compileConfig } = await import('../config/load.js')
  let base: ResolverSettings = compileConfig({ listen: { http: '127.0.0.1:1' }, resolvers: { default: { nameservers: [DEFAULT_NAMESERVER] } } }, {}).resolvers.get('default') as ResolverConfig
  if (values.config !== undefined) {
    const config = await loadConfigFile(values.config)
    const resolver = values.resolver === undefined ? [...config.resolvers.values()][0] : config.resolvers.get(values.resolver)
    if (resolver === undefined) return { missing: values.resolver === undefined ? `${values.config} defines no resolver` : `${values.config} has no resolver "${values.resolver}"${knownNames([...config.resolvers.keys()])}` }
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
        ? ['  ' + formatHostPort(instance.address, instance.port), `weight ${instance.weight}`, instance.target]
        : ['  ' + instance.address, instance.target])
    for (const line of table(rows)) output.out(line)
  }
}


function printNotes (print: (line: string) => void, queries: readonly QueryNote[], rejections: readonly RejectionNote[]): void {
  print(`queries: ${queries.map((query) => `${query.nameserver}/${query.transport} ${query.outcome}`).join(', ')}`)
  for (const rejection of rejections) {
    print(`rejected answer from ${rejection.nameserver}/${rejection.transport}: ${rejection.reason}: ${rejection.detail}`)
  }
}
