import { test } from 'node:test'
import assert from 'node:assert/strict'
import { Writable } from 'node:stream'
import pino from 'pino'
import { AccessLog, accessRecordOf, jsonLine, type AccessRecord } from '../../../src/proxy/access-log.js'
import { LineBatch, type LineBatchOptions } from '../../../src/util/line-batch.js'
import { ManualClock } from '../../../src/util/clock.js'

const TIME = '2026-11-30T05:00:00.000Z'

/** What pino itself writes for a record, with the gateway's logger options (app.ts) and a fixed time. */
function pinoLine (record: AccessRecord): { line: string, head: string } {
  let line = ''
  const sink = new Writable({ write (chunk: Buffer, _encoding, done) { line += chunk.toString(); done() } })
  const logger = pino({ timestamp: () => `,"time":"${TIME}"`, formatters: { level: (label: string) => ({ level: label }) } }, sink)
  logger.info(record, 'request')
  // pino writes to a plain stream synchronously.
  const bindings = (logger as unknown as Record<symbol, string>)[pino.symbols.chindingsSym]
  return { line, head: `{"level":"info","time":"${TIME}"${bindings}` }
}

const FULL = accessRecordOf(undefined, {
  requestId: '0ac2b953-1994-4c30-9b0a-516bd0c09620',
  clientIp: '203.0.113.9',
  method: 'POST',
  host: 'www.example.com',
  path: '/orders',
  httpVersion: '2.0',
  status: 502,
  durationMs: 15.78,
  bytesIn: 77,
  bytesOut: 259,
  userAgent: 'curl/8.5',
  referer: 'https://example.com/',
  frontend: 'all',
  backend: 'web-v2',
  split: 'web',
  failover: 'web~failover-1',
  failoverDiscovery: '_web._prod.service.dc2.consul',
  instance: '10.0.0.1:8080',
  upstreamStatus: 503,
  upstreamMs: 11.29,
  retries: 2,
  retryReasons: ['status-503', 'connect'],
  error: 'SRVGATE_UPSTREAM_ERROR',
  errorDetail: 'web-v2 instance 10.0.0.1:8080: other side closed',
  upgrade: 'websocket'
})

test('the access line is byte for byte what pino writes: every field, and the fewest', () => {
  const least = accessRecordOf(undefined, { requestId: 'r1', clientIp: '', status: 400, durationMs: 0 })
  for (const record of [FULL, { ...FULL, query: 'page=2&token=REDACTED' }, least]) {
    const { line, head } = pinoLine(record)
    assert.equal(jsonLine(record, head), line)
  }
})

test('strings that need escaping come out as valid JSON with the same values', () => {
  const awkward = ['a"b', 'back\\slash', 'new\nline', 'tab\there', '\u0001\u001f', 'é ü', '😀', 'lone \ud800 surrogate', 'line\u2028sep', '</script>', '']
  for (const value of awkward) {
    const record = { ...FULL, userAgent: value, path: value, host: value }
    const { line, head } = pinoLine(record)
    const ours = jsonLine(record, head)
    assert.ok(ours.endsWith('}\n'))
    const parsed = JSON.parse(ours) as Record<string, unknown>
    assert.deepEqual([parsed.userAgent, parsed.path, parsed.host], [value, value, value], JSON.stringify(value))
    // pino's line went through a UTF-8 stream, which turns a lone surrogate into U+FFFD; ours keeps it escaped.
    if (!/[\ud800-\udfff]/.test(value) || value === '😀') assert.deepEqual(parsed, JSON.parse(line), JSON.stringify(value))
  }
})

test('common format: a Host with spaces or quotes cannot make fields of its own', () => {
  const lines: string[] = []
  const log = new AccessLog({ format: 'common', query: false }, pino({ enabled: false }), new ManualClock(), (line) => { lines.push(line) })
  log.record({ ...FULL, host: 'www.test rid=FAKE be="admin"' })
  assert.match(lines[0] ?? '', / host=www\.test\\x20rid=FAKE\\x20be=\\x22admin\\x22 fe=/)
  assert.equal((lines[0] ?? '').match(/ rid=/g)?.length, 1)
})

test('numbers that JSON cannot hold are written as null, never as bare NaN', () => {
  const record = { ...FULL, durationMs: Number.NaN, upstreamMs: Number.POSITIVE_INFINITY }
  const parsed = JSON.parse(jsonLine(record, '{"level":"info"')) as Record<string, unknown>
  assert.equal(parsed.durationMs, null)
  assert.equal(parsed.upstreamMs, null)
})

test('a failover target is named as in /admin/state and the metric label (api~failover-1), its DNS name beside it, in both formats', () => {
  assert.match(jsonLine(FULL, pinoLine(FULL).head), /"failover":"web~failover-1","failoverDiscovery":"_web._prod\.service\.dc2\.consul"/)
  const lines: string[] = []
  const log = new AccessLog({ format: 'common', query: false }, pino({ enabled: false }), new ManualClock(), (line) => { lines.push(line) })
  log.record(FULL)
  assert.match(lines[0] ?? '', / split=web failover=web~failover-1 failover_discovery=_web\._prod\.service\.dc2\.consul err=/)
})

/** A LineBatch on a manual clock, and what it wrote. */
function lineBatch (options: LineBatchOptions): { clock: ManualClock, writes: string[], batch: LineBatch } {
  const clock = new ManualClock()
  const writes: string[] = []
  return { clock, writes, batch: new LineBatch((chunk) => { writes.push(chunk) }, clock, options) }
}

test('LineBatch: lines wait at most maxDelayMs, then go out as one write, in order', () => {
  const { clock, writes, batch } = lineBatch({ maxDelayMs: 20 })
  batch.push('a\n')
  clock.advance(10)
  batch.push('b\n')
  clock.advance(9)
  assert.deepEqual(writes, [], 'nothing is written before the first line has waited 20 ms')
  clock.advance(1)
  assert.deepEqual(writes, ['a\nb\n'])
  batch.push('c\n')
  clock.advance(19)
  assert.deepEqual(writes, ['a\nb\n'], 'a new batch starts its own 20 ms')
  clock.advance(1)
  assert.deepEqual(writes, ['a\nb\n', 'c\n'])
  clock.advance(1000)
  assert.equal(writes.length, 2, 'an idle batch writes nothing')
})

test('LineBatch: a full batch is written at once, and flush writes what is pending (the exit path)', () => {
  const { clock, writes, batch } = lineBatch({ maxBytes: 8 })
  batch.push('1234\n')
  batch.push('5678\n')
  assert.deepEqual(writes, ['1234\n5678\n'])
  batch.push('x\n')
  batch.flush()
  batch.flush()
  assert.deepEqual(writes, ['1234\n5678\n', 'x\n'])
  clock.advance(1000)
  assert.equal(writes.length, 2, 'the flushed batch\'s timer is gone with it')
})

test('LineBatch: lines keep every character (UTF-8 of any width), and a line too long for the batch goes after what was pending', () => {
  const { writes, batch } = lineBatch({ maxBytes: 64 })
  batch.push('é ü 東京 😀\n')
  batch.push('b\n')
  const long = `${'x'.repeat(10_000)}\n`
  batch.push(long)
  batch.push('c\n')
  batch.flush()
  assert.deepEqual(writes, ['é ü 東京 😀\nb\n', long, 'c\n'])
})

test('LineBatch: a batch is written when its bytes reach maxBytes, counted in UTF-8 (not characters)', () => {
  const { writes, batch } = lineBatch({ maxBytes: 10 })
  batch.push('ééé\n') // 4 characters, 7 bytes
  assert.deepEqual(writes, [])
  batch.push('éé\n') // 14 bytes in all
  assert.deepEqual(writes, ['ééé\néé\n'])
})
