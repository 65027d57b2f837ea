import { createServer, type IncomingMessage, type Server } from 'node:http'
import { readFileSync } from 'node:fs'
import { gunzipSync } from 'node:zlib'
import type { TestContext } from 'node:test'
import protobuf from 'protobufjs'

/** One span as the receiver decoded it, protobuf and JSON alike. */
export type ReceivedSpan = {
  readonly traceId: string
  readonly spanId: string
  /** '' for a root span. */
  readonly parentSpanId: string
  readonly name: string
  /** 2 SERVER, 3 CLIENT (OTLP's SpanKind). */
  readonly kind: number
  readonly attributes: Readonly<Record<string, string | number | boolean>>
  readonly events: ReadonlyArray<{ readonly name: string, readonly attributes: Readonly<Record<string, string | number | boolean>> }>
  /** 0 unset, 1 ok, 2 error. */
  readonly statusCode: number
  readonly serviceName: string
  /** The exporting process (its resource's process.pid). */
  readonly pid: number
  /** Wall-clock ms (from the nanoseconds OTLP carries). */
  readonly startMs: number
  readonly endMs: number
  /** How it arrived. */
  readonly encoding: 'protobuf' | 'json'
}

const REQUEST = protobuf.parse(readFileSync(new URL('./trace.proto', import.meta.url), 'utf8')).root.lookupType('opentelemetry.proto.ExportTraceServiceRequest')

type Value = { stringValue?: string, boolValue?: boolean, intValue?: string | number, doubleValue?: number }
type KeyValue = { key: string, value?: Value }
type WireSpan = { traceId?: string, spanId?: string, parentSpanId?: string, name?: string, kind?: number, startTimeUnixNano?: string | number, endTimeUnixNano?: string | number, attributes?: KeyValue[], events?: Array<{ name?: string, attributes?: KeyValue[] }>, status?: { code?: number } }
type WireRequest = { resourceSpans?: Array<{ resource?: { attributes?: KeyValue[] }, scopeSpans?: Array<{ spans?: WireSpan[] }> }> }

/**
 * A real OTLP/HTTP trace receiver on loopback, as an OpenTelemetry collector's
 * otlp receiver: POST /v1/traces with application/x-protobuf (decoded with the
 * OTLP definitions in trace.proto) or application/json (OTLP/JSON: ids in hex).
 * `failing`: answer 503 to every export (a collector that is down for srvgate).
 */
export class OtlpReceiver {
  readonly spans: ReceivedSpan[] = []
  readonly requests: Array<{ readonly contentType: string, readonly headers: IncomingMessage['headers'] }> = []
  failing = false
  /** Read every export and never answer (a collector that hangs). */
  isHanging = false
  /** Answer 200 with its headers, then a byte every 200 ms, never ending (a collector that trickles). */
  isTrickling = false
  readonly #sockets = new Set<import('node:net').Socket>()
  readonly #tricklers = new Set<ReturnType<typeof setInterval>>()
  /** Spans decoded and kept; false: exports are read and answered only (a sink, for the bench). */
  isDecoding = true
  #server: Server | undefined
  port = 0
  /** Bytes of exports received while not decoding. */
  bytes = 0

  static async start (t: TestContext | undefined): Promise<OtlpReceiver> {
    const receiver = new OtlpReceiver()
    await receiver.#listen()
    t?.after(async () => { await receiver.stop() })
    return receiver
  }

  /** Connections open to the receiver now (the exporter's, seen from the collector). */
  get openConnections (): number { return this.#sockets.size }

  get url (): string { return `http://127.0.0.1:${this.port}/v1/traces` }

  async #listen (): Promise<void> {
    const server = createServer((request, response) => {
      const chunks: Buffer[] = []
      request.on('data', (chunk: Buffer) => { chunks.push(chunk) })
      request.on('end', () => {
        const contentType = String(request.headers['content-type'] ?? '')
        this.requests.push({ contentType, headers: request.headers })
        if (this.isHanging) return
        if (this.isTrickling) {
          response.writeHead(200, { 'content-type': 'application/x-protobuf' })
          const trickle = setInterval(() => { response.write('x') }, 200)
          this.#tricklers.add(trickle)
          response.on('close', () => { clearInterval(trickle); this.#tricklers.delete(trickle) })
          return
        }
        if (this.failing || request.url !== '/v1/traces' || request.method !== 'POST') {
          response.writeHead(this.failing ? 503 : 404).end()
          return
        }
        const received = Buffer.concat(chunks)
        const body = request.headers['content-encoding'] === 'gzip' ? gunzipSync(received) : received
        try {
          if (!this.isDecoding) this.bytes += body.length
          else if (contentType.startsWith('application/json')) this.#take(JSON.parse(body.toString('utf8')) as WireRequest, 'json')
          else this.#take(REQUEST.toObject(REQUEST.decode(body), { longs: String, enums: Number, bytes: String }) as WireRequest, 'protobuf')
        } catch (error) {
          response.writeHead(400, { 'content-type': 'text/plain' }).end(String(error))
          return
        }
        response.writeHead(200, { 'content-type': contentType.startsWith('application/json') ? 'application/json' : 'application/x-protobuf' }).end(contentType.startsWith('application/json') ? '{}' : '')
      })
    })
    this.#server = server
    server.on('connection', (socket) => {
      this.#sockets.add(socket)
      socket.on('close', () => { this.#sockets.delete(socket) })
    })
    await new Promise<void>((resolve) => { server.listen(0, '127.0.0.1', resolve) })
    const address = server.address()
    this.port = typeof address === 'object' && address !== null ? address.port : 0
  }

  #take (request: WireRequest, encoding: 'protobuf' | 'json'): void {
    // protobufjs gives bytes as base64 (bytes: String); OTLP/JSON gives them as hex.
    const id = (value: string | undefined): string => value === undefined || value === '' ? '' : encoding === 'json' ? value.toLowerCase() : Buffer.from(value, 'base64').toString('hex')
    for (const resourceSpans of request.resourceSpans ?? []) {
      const resource = attributesOf(resourceSpans.resource?.attributes)
      const serviceName = String(resource['service.name'] ?? '')
      const pid = Number(resource['process.pid'] ?? 0)
      for (const scopeSpans of resourceSpans.scopeSpans ?? []) {
        for (const span of scopeSpans.spans ?? []) {
          this.spans.push({
            traceId: id(span.traceId),
            spanId: id(span.spanId),
            parentSpanId: id(span.parentSpanId),
            name: span.name ?? '',
            kind: span.kind ?? 0,
            attributes: attributesOf(span.attributes),
            events: (span.events ?? []).map((event) => ({ name: event.name ?? '', attributes: attributesOf(event.attributes) })),
            statusCode: span.status?.code ?? 0,
            serviceName,
            pid,
            startMs: Number(BigInt(span.startTimeUnixNano ?? 0) / 1000n) / 1000,
            endMs: Number(BigInt(span.endTimeUnixNano ?? 0) / 1000n) / 1000,
            encoding
          })
        }
      }
    }
  }

  /** Spans until `predicate` holds for the list, or `timeoutMs` passes (then the list as it is). */
  async waitFor (predicate: (spans: readonly ReceivedSpan[]) => boolean, timeoutMs = 10_000): Promise<readonly ReceivedSpan[]> {
    const deadline = Date.now() + timeoutMs
    while (!predicate(this.spans) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50))
    return this.spans
  }

  async stop (): Promise<void> {
    const server = this.#server
    if (server === undefined) return
    this.#server = undefined
    for (const trickle of this.#tricklers) clearInterval(trickle)
    server.closeAllConnections()
    await new Promise<void>((resolve) => { server.close(() => { resolve() }) })
  }
}

function attributesOf (list: KeyValue[] | undefined): Record<string, string | number | boolean> {
  const attributes: Record<string, string | number | boolean> = {}
  for (const { key, value } of list ?? []) {
    if (value === undefined) continue
    if (value.stringValue !== undefined) attributes[key] = value.stringValue
    else if (value.boolValue !== undefined) attributes[key] = value.boolValue
    else if (value.intValue !== undefined) attributes[key] = Number(value.intValue)
    else if (value.doubleValue !== undefined) attributes[key] = value.doubleValue
  }
  return attributes
}
