import type { IncomingHttpHeaders } from 'node:http'
import type { FastifyBaseLogger } from 'fastify'
import { firstValue } from './headers.js'
import { hostHeaderOf, pathOf } from './route-request.js'
import { dateAt, isoNow, type Clock } from '../util/clock.js'
import type { AccessLogConfig } from '../config/types.js'
import { loggedQuery } from './logged-query.js'

/** What one request did, as the access log writes it: exactly one per request, never a body or a secret. */
export type AccessRecord = {
  readonly requestId: string
  readonly clientIp: string
  readonly method: string
  readonly host: string | undefined
  /** Without the query string and without userinfo. */
  readonly path: string
  /** The query string, without its `?`, as accessLog.query lets it be shown (it may carry tokens: by default never). */
  readonly query?: string | undefined
  readonly httpVersion: string
  readonly status: number
  readonly durationMs: number
  readonly bytesIn: number
  readonly bytesOut: number
  readonly userAgent: string | undefined
  readonly referer: string | undefined
  readonly frontend: string | undefined
  readonly backend: string | undefined
  /** The split that chose the backend (backend is the member). */
  readonly split?: string | undefined
  /** The failover target that served the request (`api~failover-1`: the backend's `failover[0]`), when not the backend's own discovery. */
  readonly failover?: string | undefined
  /** That target's DNS name (`_api._prod.service.dc2.consul`). */
  readonly failoverDiscovery?: string | undefined
  readonly instance: string | undefined
  readonly upstreamStatus: number | undefined
  readonly upstreamMs: number | undefined
  readonly retries: number
  readonly retryReasons: readonly string[] | undefined
  readonly error: string | undefined
  readonly errorDetail?: string | undefined
  readonly upgrade?: string
  /** W3C trace context of the request's SERVER span (tracing on). */
  readonly traceId?: string | undefined
  readonly spanId?: string | undefined
}

/** The request line and headers, as Node parsed them (HTTP/1.1 and HTTP/2 alike). */
export type RequestHead = {
  readonly method?: string | undefined
  readonly url?: string | undefined
  readonly httpVersion: string
  readonly headers: IncomingHttpHeaders
}

export type AccessLogFormat = AccessLogConfig['format']

/** What every record needs; the rest defaults to "nothing happened" (no route, no instance, no bytes). */
export type RecordFacts = Pick<AccessRecord, 'requestId' | 'clientIp' | 'status' | 'durationMs'> & Partial<AccessRecord>

/**
 * The one builder of access records, for proxied requests, WebSocket
 * handshakes and requests answered on the raw socket alike. The request line
 * comes from `request` when Node parsed one (path without query or userinfo;
 * the query as `query` lets it be shown).
 */
export function accessRecordOf (request: RequestHead | undefined, facts: RecordFacts, query: AccessLogConfig['query'] = false): AccessRecord {
  // Written out, not spread over defaults: one object of one shape per request (see headers.ts on spreads).
  const record: AccessRecord = {
    requestId: facts.requestId,
    clientIp: facts.clientIp,
    method: facts.method ?? request?.method ?? '-',
    host: 'host' in facts ? facts.host : request === undefined ? undefined : hostHeaderOf(request.headers),
    path: facts.path ?? (request === undefined ? '-' : pathOf(request.url ?? '/')),
    query: loggedQuery(request?.url, query),
    httpVersion: facts.httpVersion ?? request?.httpVersion ?? '1.1',
    status: facts.status,
    durationMs: facts.durationMs,
    bytesIn: facts.bytesIn ?? 0,
    bytesOut: facts.bytesOut ?? 0,
    userAgent: 'userAgent' in facts ? facts.userAgent : firstValue(request?.headers['user-agent']),
    referer: 'referer' in facts ? facts.referer : firstValue(request?.headers.referer),
    frontend: facts.frontend,
    backend: facts.backend,
    split: facts.split,
    failover: facts.failover,
    failoverDiscovery: facts.failoverDiscovery,
    instance: facts.instance,
    upstreamStatus: facts.upstreamStatus,
    upstreamMs: facts.upstreamMs,
    retries: facts.retries ?? 0,
    retryReasons: facts.retryReasons,
    error: facts.error,
    errorDetail: facts.errorDetail,
    upgrade: facts.upgrade,
    traceId: facts.traceId,
    spanId: facts.spanId
  }
  return record
}

/**
 * Writes access records: `json` as lines of the same shape as pino's (level,
 * time, the logger's bindings, the record's fields, msg "request"), `common`
 * as Apache's combined format plus srvgate's fields, for people who grep.
 * The JSON line is built here, not by pino: the record has one known shape,
 * and pino's generic serializer plus JSON.stringify cost ~5-10 µs a line in
 * the proxy bench where this costs under 1 (docs/BENCHMARKS.md). The logger
 * still decides whether lines are written (its level).
 */
export class AccessLog {
  #format: AccessLogFormat
  #query: AccessLogConfig['query']
  readonly #log: FastifyBaseLogger
  readonly #write: (line: string) => void
  readonly #clock: Clock
  /** pino's serialized bindings (`,"pid":…,"hostname":"…"`), so both kinds of line carry the same fields. */
  readonly #bindings: string

  constructor (config: AccessLogConfig, log: FastifyBaseLogger, clock: Clock, write: (line: string) => void = (line) => { process.stdout.write(line) }, bindings = '') {
    this.#format = config.format
    this.#query = config.query
    this.#log = log
    this.#clock = clock
    this.#write = write
    this.#bindings = bindings
  }

  /** A reload may change the format and what the query shows. */
  set config (config: AccessLogConfig) {
    this.#format = config.format
    this.#query = config.query
  }

  /** What records show of the query string (accessLog.query). */
  get query (): AccessLogConfig['query'] { return this.#query }

  /** False when no line would be written (json below --log-level info): callers skip building the record. */
  get isEnabled (): boolean { return this.#format === 'common' || ((this.#log as FastifyBaseLogger & { isLevelEnabled?: (level: string) => boolean }).isLevelEnabled?.('info') ?? false) }

  record (record: AccessRecord): void {
    if (this.#format === 'common') {
      this.#write(`${commonLine(record, dateAt(this.#clock.wallNow()))}\n`)
      return
    }
    this.#write(jsonLine(record, `{"level":"info","time":"${isoNow(this.#clock)}"${this.#bindings}`))
  }
}

/** One JSON access line: `head` (level, time, bindings), then the record's fields in order, undefined ones left out. */
export function jsonLine (record: AccessRecord, head: string): string {
  let line = `${head},"requestId":${jsonString(record.requestId)},"clientIp":${jsonString(record.clientIp)},"method":${jsonString(record.method)}`
  if (record.host !== undefined) line += `,"host":${jsonString(record.host)}`
  line += `,"path":${jsonString(record.path)}`
  if (record.query !== undefined) line += `,"query":${jsonString(record.query)}`
  line += `,"httpVersion":${jsonString(record.httpVersion)},"status":${jsonNumber(record.status)},"durationMs":${jsonNumber(record.durationMs)},"bytesIn":${jsonNumber(record.bytesIn)},"bytesOut":${jsonNumber(record.bytesOut)}`
  if (record.userAgent !== undefined) line += `,"userAgent":${jsonString(record.userAgent)}`
  if (record.referer !== undefined) line += `,"referer":${jsonString(record.referer)}`
  if (record.frontend !== undefined) line += `,"frontend":${jsonString(record.frontend)}`
  if (record.backend !== undefined) line += `,"backend":${jsonString(record.backend)}`
  if (record.split !== undefined) line += `,"split":${jsonString(record.split)}`
  if (record.failover !== undefined) line += `,"failover":${jsonString(record.failover)}`
  if (record.failoverDiscovery !== undefined) line += `,"failoverDiscovery":${jsonString(record.failoverDiscovery)}`
  if (record.instance !== undefined) line += `,"instance":${jsonString(record.instance)}`
  if (record.upstreamStatus !== undefined) line += `,"upstreamStatus":${jsonNumber(record.upstreamStatus)}`
  if (record.upstreamMs !== undefined) line += `,"upstreamMs":${jsonNumber(record.upstreamMs)}`
  line += `,"retries":${jsonNumber(record.retries)}`
  if (record.retryReasons !== undefined) line += `,"retryReasons":${JSON.stringify(record.retryReasons)}`
  if (record.error !== undefined) line += `,"error":${jsonString(record.error)}`
  if (record.errorDetail !== undefined) line += `,"errorDetail":${jsonString(record.errorDetail)}`
  if (record.upgrade !== undefined) line += `,"upgrade":${jsonString(record.upgrade)}`
  if (record.traceId !== undefined) line += `,"traceId":"${record.traceId}","spanId":"${record.spanId ?? ''}"`
  return `${line},"msg":"request"}\n`
}

/** What JSON must escape (RFC 8259 §7), and lone surrogates (JSON.stringify writes them as \\u escapes). */
const NEEDS_ESCAPING = /["\\\u0000-\u001f\ud800-\udfff]/

/** A JSON string literal; the usual value (nothing to escape) without a JSON.stringify call. */
function jsonString (value: string): string {
  return NEEDS_ESCAPING.test(value) ? JSON.stringify(value) : `"${value}"`
}

function jsonNumber (value: number): string {
  return Number.isFinite(value) ? `${value}` : 'null'
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec']

/** `203.0.113.9 - - [29/Nov/2026:22:37:06 +0000] "GET /x HTTP/1.1" 200 512 "-" "curl/8.5" rid=… fe=… be=… inst=… ups=200 ms=1.2` */
function commonLine (record: AccessRecord, at: Date): string {
  const pad = (value: number): string => String(value).padStart(2, '0')
  const time = `${pad(at.getUTCDate())}/${MONTHS[at.getUTCMonth()] ?? ''}/${at.getUTCFullYear()}:${pad(at.getUTCHours())}:${pad(at.getUTCMinutes())}:${pad(at.getUTCSeconds())} +0000`
  const quoted = (value: string | undefined): string => value === undefined || value === '' ? '"-"' : `"${value.replace(/["\\\r\n]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`)}"`
  // A client chooses some of these (the Host, a trusted request id): a space or a quote in one must not make a field of its own.
  const dash = (value: string | number | undefined): string => value === undefined || value === '' ? '-' : typeof value === 'number' ? String(value) : value.replace(/[\s"\\\u0000-\u001f\u007f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`)
  return `${record.clientIp || '-'} - - [${time}] ${quoted(`${record.method} ${record.path}${record.query === undefined ? '' : `?${record.query}`} HTTP/${record.httpVersion}`)} ${record.status} ${record.bytesOut === 0 ? '-' : record.bytesOut} ${quoted(record.referer)} ${quoted(record.userAgent)}` +
    ` rid=${dash(record.requestId)} host=${dash(record.host)} fe=${dash(record.frontend)} be=${dash(record.backend)} inst=${dash(record.instance)} ups=${dash(record.upstreamStatus)}` +
    ` ups_ms=${dash(record.upstreamMs === undefined ? undefined : Math.round(record.upstreamMs * 100) / 100)} ms=${record.durationMs} in=${record.bytesIn} retries=${record.retries}` +
    `${record.split === undefined ? '' : ` split=${record.split}`}${record.failover === undefined ? '' : ` failover=${record.failover} failover_discovery=${dash(record.failoverDiscovery)}`}${record.error === undefined ? '' : ` err=${record.error}`}${record.traceId === undefined ? '' : ` trace=${record.traceId} span=${record.spanId ?? '-'}`}`
}
