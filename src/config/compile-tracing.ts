import type { Milliseconds } from '../util/duration.js'
import { duration } from './convert.js'
import type { Findings } from './findings.js'
import type { GatewayDocument } from './schema.js'
import type { TracingConfig } from './types.js'
import type { Environment } from './environment.js'
import { isHttpUrl } from './formats.js'


const DEFAULT_ENDPOINT = 'http://localhost:4318/v1/traces'
const DEFAULT_TIMEOUT_MS = 10_000 as Milliseconds
const TRACES_PATH = 'v1/traces'

/**
 * The `tracing` section, its unset fields taken from the OTEL_* environment
 * variables as the OpenTelemetry specification names them (config wins);
 * undefined when the section is absent or OTEL_SDK_DISABLED is true. A
 * variable that cannot be read is an issue, as a field would be.
 */
export function compileTracing (input: GatewayDocument['tracing'], { issues, warnings }: Findings, env: Environment = process.env): TracingConfig | undefined {
  if (input === undefined || env.OTEL_SDK_DISABLED?.trim().toLowerCase() === 'true') return undefined
  const otlp = input.otlp ?? {}
  const protocol = otlp.protocol ?? protocolOf(env.OTEL_EXPORTER_OTLP_TRACES_PROTOCOL ?? env.OTEL_EXPORTER_OTLP_PROTOCOL)
  if (protocol === undefined) issues.push({ path: 'tracing.otlp.protocol', message: 'OTEL_EXPORTER_OTLP_(TRACES_)PROTOCOL: srvgate exports http/protobuf or http/json' })
  const timeoutMs = otlp.timeout !== undefined ? duration(otlp.timeout) : millisecondsOf(env.OTEL_EXPORTER_OTLP_TRACES_TIMEOUT ?? env.OTEL_EXPORTER_OTLP_TIMEOUT)
  if (timeoutMs === undefined) issues.push({ path: 'tracing.otlp.timeout', message: 'OTEL_EXPORTER_OTLP_(TRACES_)TIMEOUT must be a whole number of milliseconds' })
  const compression = (env.OTEL_EXPORTER_OTLP_TRACES_COMPRESSION ?? env.OTEL_EXPORTER_OTLP_COMPRESSION ?? 'none').trim().toLowerCase()
  if (compression !== 'gzip' && compression !== 'none' && compression !== '') issues.push({ path: 'tracing.otlp', message: 'OTEL_EXPORTER_OTLP_(TRACES_)COMPRESSION must be gzip or none' })
  const sampleRatio = input.sampleRatio ?? ratioOf(env.OTEL_TRACES_SAMPLER, env.OTEL_TRACES_SAMPLER_ARG)
  if (sampleRatio === undefined) issues.push({ path: 'tracing.sampleRatio', message: 'OTEL_TRACES_SAMPLER must be always_on, always_off, traceidratio or their parentbased_ forms, with OTEL_TRACES_SAMPLER_ARG a number from 0 to 1' })
  const endpoint = otlp.endpoint !== undefined ? tracesUrl(otlp.endpoint) : nonEmpty(env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) ?? (nonEmpty(env.OTEL_EXPORTER_OTLP_ENDPOINT) === undefined ? DEFAULT_ENDPOINT : appendTracesPath(env.OTEL_EXPORTER_OTLP_ENDPOINT as string))
  if (!isHttpUrl(endpoint)) issues.push({ path: 'tracing.otlp.endpoint', message: `OTEL_EXPORTER_OTLP_(TRACES_)ENDPOINT must be an http:// or https:// URL, not ${JSON.stringify(endpoint)}` })
  const envHeaders = { ...headersOf(env.OTEL_EXPORTER_OTLP_HEADERS, warnings), ...headersOf(env.OTEL_EXPORTER_OTLP_TRACES_HEADERS, warnings) }
  const resource = headersOf(env.OTEL_RESOURCE_ATTRIBUTES, warnings, 'OTEL_RESOURCE_ATTRIBUTES')
  return {
    endpoint,
    protocol: protocol ?? 'http/protobuf',
    headers: { ...envHeaders, ...otlp.headers },
    timeoutMs: timeoutMs ?? DEFAULT_TIMEOUT_MS,
    isGzipped: compression === 'gzip',
    sampleRatio: sampleRatio ?? 1,
    serviceName: input.serviceName ?? nonEmpty(env.OTEL_SERVICE_NAME) ?? nonEmpty(resource['service.name']) ?? 'srvgate',
    resourceAttributes: resource,
    restartAtEdge: input.restartAtEdge ?? false
  }
}

/** A configured endpoint with no path (http://collector:4318) gets the traces path; one with a path is used as written. */
function tracesUrl (endpoint: string): string {
  const url = new URL(endpoint)
  return url.pathname === '/' ? appendTracesPath(endpoint) : endpoint
}

/** OTEL_EXPORTER_OTLP_ENDPOINT is a base: the traces path is appended (the specification's rule). */
function appendTracesPath (base: string): string {
  return base.endsWith('/') ? `${base}${TRACES_PATH}` : `${base}/${TRACES_PATH}`
}

function protocolOf (value: string | undefined): TracingConfig['protocol'] | undefined {
  const protocol = value?.trim() ?? 'http/protobuf'
  return protocol === 'http/protobuf' || protocol === 'http/json' ? protocol : undefined
}

function millisecondsOf (value: string | undefined): Milliseconds | undefined {
  if (value === undefined || value.trim() === '') return DEFAULT_TIMEOUT_MS
  return /^\d+$/.test(value.trim()) ? Number(value.trim()) as Milliseconds : undefined
}

/** The ratio OTEL_TRACES_SAMPLER names; srvgate's sampling is always parent-based for a request that carries a decision. */
function ratioOf (sampler: string | undefined, argument: string | undefined): number | undefined {
  const name = (sampler?.trim() ?? '').replace(/^parentbased_/, '')
  if (name === '' || name === 'always_on') return 1
  if (name === 'always_off') return 0
  if (name !== 'traceidratio') return undefined
  if (argument === undefined || argument.trim() === '') return 1
  const ratio = Number(argument)
  return Number.isFinite(ratio) && ratio >= 0 && ratio <= 1 ? ratio : undefined
}

/**
 * `key=value,key2=value2`, values percent-encoded (the W3C baggage form the
 * specification uses for OTEL_EXPORTER_OTLP_HEADERS and
 * OTEL_RESOURCE_ATTRIBUTES). An entry without `=` is skipped with a warning,
 * as the specification asks. Header names are lower-cased; resource keys kept.
 */
function headersOf (value: string | undefined, warnings: Findings['warnings'], variable = 'OTEL_EXPORTER_OTLP_(TRACES_)HEADERS'): Record<string, string> {
  const entries: Record<string, string> = {}
  const isResource = variable === 'OTEL_RESOURCE_ATTRIBUTES'
  for (const pair of (value ?? '').split(',')) {
    if (pair.trim() === '') continue
    const equals = pair.indexOf('=')
    if (equals <= 0) {
      warnings.push({ path: 'tracing', message: `${variable}: ${JSON.stringify(pair.trim())} is not key=value: skipped` })
      continue
    }
    const key = pair.slice(0, equals).trim()
    const raw = pair.slice(equals + 1).trim()
    let decoded = raw
    // A value that is not percent-encoding as written: taken as it is.
    try { decoded = decodeURIComponent(raw) } catch {}
    entries[isResource ? key : key.toLowerCase()] = decoded
  }
  return entries
}

function nonEmpty (value: string | undefined): string | undefined {
  return value === undefined || value.trim() === '' ? undefined : value.trim()
}
