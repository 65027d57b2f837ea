/** RequestEnd: the one place a request's metrics and access record are made, for requests in flight and refusals alike. */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { PassThrough } from 'node:stream'
import { pino } from 'pino'
import { ManualClock } from '../../../src/util/clock.js'
import { ErrorCode, ProxyError } from '../../../src/errors.js'
import { AccessLog } from '../../../src/proxy/access-log.js'
import { RequestEnd, type FinishedRequest } from '../../../src/proxy/request-end.js'
import { ProxyRequest } from '../../../src/proxy/proxy-request.js'

function setup () {
  const clock = new ManualClock()
  const lines: string[] = []
  const calls: Array<['finished' | 'ended', FinishedRequest]> = []
  const ends = new RequestEnd(new AccessLog({ format: 'json', query: false }, pino({ level: 'info' }), clock, (line) => { lines.push(line) }), {
    requestStarted: () => {},
    requestFinished: (request) => { calls.push(['finished', request]) },
    requestEnded: (request) => { calls.push(['ended', request]) }
  }, clock)
  const records = (): Array<Record<string, unknown>> => lines.map((line) => JSON.parse(line) as Record<string, unknown>)
  return { clock, ends, calls, records }
}

const head = { method: 'GET', url: '/a?token=secret', httpVersion: '1.1', headers: { host: 'api.example.com', 'user-agent': 'ua' } }

test('a request in flight leaves the gauge (requestFinished); its record has its duration, bytes and error', () => {
  const { clock, ends, calls, records } = setup()
  const request = new ProxyRequest('GET', clock.now())
  request.requestId = 'r1'
  request.clientIp = '192.0.2.1'
  request.protocol = 'HTTP/1.1'
  request.isInFlight = true
  request.bytesOut = 120
  request.error = new ProxyError(ErrorCode.NO_HEALTHY_INSTANCE, 'none', 'api')
  clock.advance(12.5)
  ends.ended(head, request, 503)
  assert.deepEqual(calls.map(([kind, finished]) => [kind, finished.status, finished.durationSeconds, finished.protocol]), [['finished', 503, 0.0125, 'HTTP/1.1']])
  const [record] = records()
  assert.equal(record?.path, '/a', 'no query string in the log')
  assert.equal(record?.durationMs, 12.5)
  assert.equal(record?.bytesIn, 0, 'no body received')
  assert.equal(record?.bytesOut, 120)
  assert.equal(record?.error, ErrorCode.NO_HEALTHY_INSTANCE)
  assert.equal(record?.errorDetail, 'none')
  assert.equal(record?.userAgent, 'ua')
})

test('a refusal on the raw socket: the JSON answer written, counted by requestEnded (never in flight), one record of duration 0', () => {
  const { ends, calls, records } = setup()
  const socket = Object.assign(new PassThrough(), { remoteAddress: '198.51.100.4' })
  let written = ''
  socket.on('data', (chunk: Buffer) => { written += chunk.toString() })
  ends.refuseRaw(socket, { ...head, headers: { ...head.headers, 'x-request-id': 'abc-1' } }, new ProxyError(ErrorCode.METHOD_NOT_ALLOWED, 'CONNECT'), 'websocket')
  assert.match(written, /^HTTP\/1\.1 405 /)
  assert.match(written, /x-request-id: abc-1\r\n/)
  assert.deepEqual(calls.map(([kind, finished]) => [kind, finished.status, finished.durationSeconds, finished.frontend]), [['ended', 405, 0, undefined]])
  const [record] = records()
  assert.equal(record?.requestId, 'abc-1')
  assert.equal(record?.bytesOut, Buffer.byteLength('{"error":"method_not_allowed"}'), 'the body written, not the head')
  assert.equal(record?.clientIp, '198.51.100.4')
  assert.equal(record?.status, 405)
  assert.equal(record?.durationMs, 0)
  assert.equal(record?.upgrade, 'websocket')
  assert.equal(record?.error, ErrorCode.METHOD_NOT_ALLOWED)
})
