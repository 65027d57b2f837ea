import { test } from 'node:test'
import assert from 'node:assert/strict'
import { SpanKind, SpanStatusCode, TraceFlags } from '@opentelemetry/api'
import { resourceFromAttributes } from '@opentelemetry/resources'
import { RequestTrace, type TraceDeps, type TracedEnd } from '../../../src/tracing/request-trace.js'
import type { RecordedSpan } from '../../../src/tracing/recorded-span.js'
import type { Instance } from '../../../src/discovery/instance-set.js'
import type { RouteDecision } from '../../../src/routing/router.js'
import { ManualClock } from '../../../src/util/clock.js'

const TRACE = '4bf92f3577b34da6a3ce929d0e0e4736'
const INSTANCE = { address: '10.0.0.7', port: 8080, key: '10.0.0.7:8080' } as unknown as Instance

function setup (): { deps: TraceDeps, finished: RecordedSpan[], clock: ManualClock } {
  const clock = new ManualClock()
  const finished: RecordedSpan[] = []
  let next = 0
  const deps: TraceDeps = {
    origin: { resource: resourceFromAttributes({ 'service.name': 'test' }), scope: { name: 'srvgate' }, wallAtZeroMs: clock.wallNow() - clock.now() },
    now: () => clock.now(),
    spanId: () => (++next).toString(16).padStart(16, '0'),
    finished: (span) => { finished.push(span) }
  }
  return { deps, finished, clock }
}

const decision = (name: string, pathPrefix: string | undefined, env?: string): RouteDecision => ({ frontend: { name, match: { pathPrefix } }, index: 0, env }) as unknown as RouteDecision
const facts = (more: Partial<TracedEnd> = {}): TracedEnd => ({ status: 200, path: '/api/x', host: 'pr-7.preview.example.com', clientIp: '203.0.113.9', backend: 'web-pr-7', split: undefined, failoverTarget: undefined, retries: 0, errorCode: undefined, isUpgrade: false, ...more })

test('request trace: a sampled request gives a SERVER span named METHOD frontend route with its attributes, and attempts as CLIENT siblings under it, timed on the clock', () => {
  const { deps, finished, clock } = setup()
  const trace = new RequestTrace(deps, 'POST', { traceId: TRACE, spanId: 'aaaaaaaaaaaaaaaa', traceFlags: TraceFlags.SAMPLED }, { traceId: TRACE, spanId: 'bbbbbbbbbbbbbbbb', traceFlags: TraceFlags.SAMPLED, isRemote: true }, clock.now())
  trace.routed(decision('preview', undefined, 'pr-7'))
  clock.advance(5)
  const first = trace.attempt('web-pr-7', INSTANCE, 1, { host: 'h', traceparent: 'client', tracestate: 'client=1' })
  assert.equal(first.headers.traceparent, `00-${TRACE}-0000000000000001-01`)
  assert.equal(first.headers.tracestate, undefined, 'the client\'s tracestate is not passed on when the trace carries none')
  assert.equal(first.headers.host, 'h')
  clock.advance(10)
  trace.attemptEnded(first.span as RecordedSpan, 'connect-failure', undefined, true)
  const second = trace.attempt('web-pr-7', INSTANCE, 2, { host: 'h' })
  trace.connected(second.span as RecordedSpan, 0.2)
  trace.connected(second.span as RecordedSpan, 3)
  clock.advance(20)
  trace.attemptEnded(second.span as RecordedSpan, 'success', 200, false)
  trace.end(facts({ split: 'web', failoverTarget: 'web~failover-1', retries: 1, host: '[fd00::1]:8443' }))
  assert.deepEqual(finished.map((span) => [span.kind, span.name]), [[SpanKind.CLIENT, 'POST web-pr-7'], [SpanKind.CLIENT, 'POST web-pr-7'], [SpanKind.SERVER, 'POST preview /']])
  const [failed, succeeded, server] = finished as [RecordedSpan, RecordedSpan, RecordedSpan]
  assert.equal(server.parentSpanContext?.spanId, 'bbbbbbbbbbbbbbbb')
  assert.ok(failed.parentSpanContext?.spanId === 'aaaaaaaaaaaaaaaa' && succeeded.parentSpanContext?.spanId === 'aaaaaaaaaaaaaaaa')
  assert.deepEqual([failed.attributes['srvgate.outcome'], failed.attributes['error.type'], failed.status.code], ['connect-failure', 'connect-failure', SpanStatusCode.ERROR])
  assert.deepEqual([succeeded.attributes['srvgate.outcome'], succeeded.attributes['http.response.status_code'], succeeded.status.code], ['success', 200, SpanStatusCode.UNSET])
  assert.deepEqual(succeeded.events.map((event) => [event.name, event.attributes?.['srvgate.pool.wait_ms']]), [['pool.wait', 3]], 'a wait under 1 ms is no event')
  assert.deepEqual(server.attributes, {
    'http.request.method': 'POST', 'http.response.status_code': 200, 'client.address': '203.0.113.9', 'srvgate.retries': 1,
    'url.path': '/api/x', 'server.address': 'fd00::1', 'server.port': 8443, 'http.route': '/', 'srvgate.frontend': 'preview',
    'srvgate.backend': 'web-pr-7', 'srvgate.env': 'pr-7', 'srvgate.split': 'web', 'srvgate.failover.target': 'web~failover-1'
  })
  assert.deepEqual(server.duration, [0, 35_000_000], '35 ms on the clock')
  assert.deepEqual(failed.duration, [0, 10_000_000])
})

test('request trace: unsampled, nothing is recorded and the instance is told the trace with flags 00 under the request\'s own id', () => {
  const { deps, finished } = setup()
  const trace = new RequestTrace(deps, 'GET', { traceId: TRACE, spanId: 'cccccccccccccccc', traceFlags: TraceFlags.NONE }, undefined, 0)
  const { span, headers } = trace.attempt('web', INSTANCE, 1, { host: 'h' })
  assert.equal(span, undefined)
  assert.equal(headers.traceparent, `00-${TRACE}-cccccccccccccccc-00`)
  trace.end(facts())
  assert.deepEqual(finished, [])
  assert.equal(trace.isRecording, false)
})

test('request trace: an attempt still open when the request ends (let go) ends with it as abandoned; 5xx and srvgate\'s own errors mark the SERVER span, 4xx does not; no frontend: the method alone', () => {
  const { deps, finished } = setup()
  const trace = new RequestTrace(deps, 'GET', { traceId: TRACE, spanId: 'dddddddddddddddd', traceFlags: TraceFlags.SAMPLED }, undefined, 0)
  trace.routed(decision('api', '/api/'))
  trace.attempt('web', INSTANCE, 1, {})
  trace.end(facts({ status: 504, errorCode: 'SG_ERR_UPSTREAM_TIMEOUT' }))
  trace.end(facts())
  assert.deepEqual(finished.map((span) => [span.name, span.attributes['srvgate.outcome'] ?? span.attributes['error.type'], span.status.code]), [['GET web', 'abandoned', SpanStatusCode.UNSET], ['GET api /api/', 'SG_ERR_UPSTREAM_TIMEOUT', SpanStatusCode.ERROR]], 'ended once')
  const refused = new RequestTrace(deps, 'GET', { traceId: TRACE, spanId: 'eeeeeeeeeeeeeeee', traceFlags: TraceFlags.SAMPLED }, undefined, 0)
  refused.end(facts({ status: 404, backend: undefined, errorCode: 'SG_ERR_ROUTE_NOT_FOUND', path: `/${'a'.repeat(5000)}` }))
  const last = finished.at(-1) as RecordedSpan
  assert.equal(String(last.attributes['url.path']).length, 1024, 'a client\'s path is cut in the span')
  assert.deepEqual([last.name, last.status.code, last.attributes['error.type'], last.attributes['http.route'], last.attributes['server.address'], last.attributes['server.port']], ['GET', SpanStatusCode.UNSET, undefined, undefined, 'pr-7.preview.example.com', undefined], 'srvgate\'s own 404 is the client\'s: no error')
})
