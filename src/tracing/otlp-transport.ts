import type { ClientRequest, IncomingMessage } from 'node:http'
import { gzipSync } from 'node:zlib'
import { ExporterMetrics, OTLPExporterBase, createOtlpNetworkExportDelegate, type ExportResponse, type IExporterTransport } from '@opentelemetry/otlp-exporter-base'
import { JsonTraceSerializer, ProtobufTraceSerializer, TraceExporterMetricsHelper } from '@opentelemetry/otlp-transformer'
import type { ReadableSpan } from '@opentelemetry/sdk-trace'
import type { TracingConfig } from '../config/types.js'
import type { Clock } from '../util/clock.js'
import { nodeHttp } from '../util/node-http.js'

/** A collector's answer is read up to this size (the SDK's own transport reads 4 MB); more fails the export. */
const MAX_ANSWER_BYTES = 64 * 1024
/** Exports in flight at once, as the SDK's exporters allow; past it a batch fails at once (counted as dropped). */
const CONCURRENCY_LIMIT = 30
const USER_AGENT = 'srvgate (OTLP/HTTP)'

/**
 * OpenTelemetry's OTLP trace exporter (its serializers, export delegate and
 * exporter base) over a transport of srvgate's: the SDK's node transport
 * bounds an export by tracing.otlp.timeout only until the collector's
 * headers arrive, so a collector that answers and then trickles its body
 * held the export, its connection and its spans for ever (an attack found
 * it). Here the timeout bounds the whole exchange, request to the end of the
 * answer: past it the connection is destroyed and the batch fails (counted
 * as dropped). No retries: a failed batch is dropped, never held.
 */
export function otlpExporter (config: TracingConfig, clock: Clock): OTLPExporterBase<ReadableSpan[]> {
  const isJson = config.protocol === 'http/json'
  const transport = new BoundedHttpTransport(config.endpoint, { ...config.headers, 'content-type': isJson ? 'application/json' : 'application/x-protobuf', ...(config.isGzipped ? { 'content-encoding': 'gzip' } : {}) }, clock, config.isGzipped)
  const metrics = new ExporterMetrics<ReadableSpan[]>({ componentType: 'otlp_http_span_exporter', metricsHelper: TraceExporterMetricsHelper, url: config.endpoint, meterProvider: undefined, responseAttributesFromError: () => ({}) })
  const delegate = createOtlpNetworkExportDelegate({ timeoutMillis: config.timeoutMs, concurrencyLimit: CONCURRENCY_LIMIT, compression: 'none' }, isJson ? JsonTraceSerializer : ProtobufTraceSerializer, metrics, transport)
  return new OTLPExporterBase(delegate)
}

/** POST each export to the collector, the whole exchange within the timeout. */
class BoundedHttpTransport implements IExporterTransport {
  readonly #url: URL
  readonly #headers: Record<string, string>
  readonly #clock: Clock
  readonly #agent: InstanceType<typeof nodeHttp.Agent>
  readonly #inFlight = new Set<ClientRequest>()
  readonly #isGzipped: boolean

  constructor (url: string, headers: Record<string, string>, clock: Clock, isGzipped: boolean) {
    this.#isGzipped = isGzipped
    this.#url = new URL(url)
    this.#headers = { ...headers, 'user-agent': USER_AGENT }
    this.#clock = clock
    // Keep-alive to the collector, as the SDK's transport does; https:// collectors go through node:https.
    this.#agent = this.#url.protocol === 'https:' ? new (process.getBuiltinModule('node:https').Agent)({ keepAlive: true }) : new nodeHttp.Agent({ keepAlive: true })
  }

  async send (payload: Uint8Array, timeoutMillis: number): Promise<ExportResponse> {
    // Compressed here, off the request path (exports leave from the batch timer).
    const data = this.#isGzipped ? gzipSync(payload) : payload
    return await new Promise<ExportResponse>((resolve) => {
      let isSettled = false
      const settle = (response: ExportResponse): void => {
        if (isSettled) return
        isSettled = true
        timer.cancel()
        this.#inFlight.delete(request)
        resolve(response)
      }
      const request = (this.#url.protocol === 'https:' ? process.getBuiltinModule('node:https') : nodeHttp).request(this.#url, { method: 'POST', headers: { ...this.#headers, 'content-length': String(data.byteLength) }, agent: this.#agent })
      this.#inFlight.add(request)
      const timer = this.#clock.setTimeout(() => {
        settle({ status: 'failure', error: new Error(`the collector did not answer within ${timeoutMillis} ms`) })
        request.destroy()
      }, timeoutMillis, { unref: true })
      request.on('error', (error) => { settle({ status: 'failure', error }) })
      request.on('response', (response: IncomingMessage) => { this.#read(response, settle, request) })
      request.end(data)
    })
  }

  #read (response: IncomingMessage, settle: (response: ExportResponse) => void, request: ClientRequest): void {
    const chunks: Buffer[] = []
    let size = 0
    response.on('data', (chunk: Buffer) => {
      size += chunk.length
      if (size > MAX_ANSWER_BYTES) {
        settle({ status: 'failure', error: new Error(`the collector's answer is over ${MAX_ANSWER_BYTES} bytes`) })
        request.destroy()
        return
      }
      chunks.push(chunk)
    })
    response.on('error', (error) => { settle({ status: 'failure', error }) })
    response.on('end', () => {
      const status = response.statusCode ?? 0
      // 2xx: taken (a redirect is not followed: the headers, an API key among them, stay with this collector).
      if (status >= 200 && status <= 299) settle({ status: 'success', data: Buffer.concat(chunks) })
      else settle({ status: 'failure', error: new Error(`the collector answered ${status}`) })
    })
  }

  shutdown (): void {
    for (const request of this.#inFlight) request.destroy()
    this.#inFlight.clear()
    this.#agent.destroy()
  }
}
