/**
 * ReplayableBody on a real stream standing for the client's body (a
 * PassThrough: 'end', 'close' without 'end', errors, as IncomingMessage
 * does), read the way undici reads a body; time on a ManualClock.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { PassThrough, type Readable } from 'node:stream'
import { setImmediate as turn } from 'node:timers/promises'
import { ErrorCode, ProxyError } from '../../../src/errors.js'
import { RATE_WINDOW_MS, ReplayableBody } from '../../../src/proxy/replayable-body.js'
import { ManualClock } from '../../../src/util/clock.js'

type Outcome = { body: string, error: ProxyError | undefined, isDone: boolean }

/** Reads an attempt's stream as undici does (pulling, with backpressure), keeping what came and how it ended. */
function read (attempt: Readable): Outcome {
  const outcome: Outcome = { body: '', error: undefined, isDone: false }
  attempt.on('data', (chunk: Buffer) => { outcome.body += chunk.toString() })
  attempt.on('end', () => { outcome.isDone = true })
  attempt.on('error', (error: ProxyError) => { outcome.error = error; outcome.isDone = true })
  return outcome
}

/** A few event-loop turns: streams hand chunks over on the next tick. */
async function settle (): Promise<void> {
  for (let index = 0; index < 5; index++) await turn()
}

const listens = (source: Readable): number => source.listenerCount('readable') + source.listenerCount('end') + source.listenerCount('error') + source.listenerCount('close')

test('nothing leaves the source until an attempt is read; an attempt dropped unread (a failed connect) leaves the whole body for the next', async () => {
  const source = new PassThrough()
  source.end('hello world')
  const body = new ReplayableBody(source)
  const before = listens(source)
  const first = body.forAttempt()
  await settle()
  assert.equal(listens(source), before, 'no listener on the source before undici asks')
  first.on('error', () => {})
  first.destroy(new Error('connect ECONNREFUSED'))
  await settle()
  assert.equal(body.canReplay, true)
  assert.equal(body.hasSourceFailed, false, 'an attempt\'s failure is not the client\'s')
  const second = read(body.forAttempt())
  await settle()
  assert.deepEqual(second, { body: 'hello world', error: undefined, isDone: true })
  assert.equal(body.canReplay, false, 'bytes were pulled: no more replays')
  assert.equal(listens(source), before, 'detached from the source at its end')
})

test('bytes pulled by one attempt end replays; a new attempt lets the previous one go', async () => {
  const source = new PassThrough()
  const body = new ReplayableBody(source)
  const first = body.forAttempt()
  const firstRead = read(first)
  source.write('part one ')
  await settle()
  assert.equal(firstRead.body, 'part one ')
  assert.equal(body.canReplay, false)
  const second = read(body.forAttempt())
  assert.equal(first.destroyed, true)
  source.end('part two')
  await settle()
  assert.deepEqual(second, { body: 'part two', error: undefined, isDone: true }, 'only what the source still held')
  assert.equal(firstRead.body, 'part one ')
})

test('keepBytes: what an attempt pulled is sent again first, up to keepBytes; past it no replay (a refused HTTP/2 stream had taken a gRPC message)', async () => {
  const source = new PassThrough()
  const body = new ReplayableBody(source, { keepBytes: 16 })
  const firstRead = read(body.forAttempt())
  source.write('0123456789')
  await settle()
  assert.equal(firstRead.body, '0123456789')
  assert.equal(body.canReplay, true, '10 bytes pulled, all kept')
  // The instance refused the stream: the next attempt gets the kept bytes, then the rest.
  const secondRead = read(body.forAttempt())
  await settle()
  assert.equal(secondRead.body, '0123456789')
  source.write('abcdef')
  await settle()
  assert.equal(body.canReplay, true, '16 bytes: still kept')
  source.end('!')
  await settle()
  assert.deepEqual(secondRead, { body: '0123456789abcdef!', error: undefined, isDone: true })
  assert.equal(body.canReplay, false, '17 bytes: past keepBytes')
  assert.equal(body.bytesReceived, 17, 'the client\'s bytes, each counted once')
})

test('an ended source gives an empty body at once; a large body flows with backpressure, whole and in order', async () => {
  const empty = new PassThrough()
  empty.end()
  empty.resume()
  await settle()
  assert.equal(empty.readableEnded, true)
  const emptyRead = read(new ReplayableBody(empty).forAttempt())
  await settle()
  assert.deepEqual(emptyRead, { body: '', error: undefined, isDone: true })

  const source = new PassThrough()
  const body = new ReplayableBody(source)
  const attempt = body.forAttempt()
  const chunks = Array.from({ length: 64 }, (_, index) => String(index % 10).repeat(4096))
  const outcome = read(attempt)
  attempt.pause()
  // Chunk by chunk, as a client's bytes arrive (one source.read() takes all the source holds).
  for (const chunk of chunks) {
    source.write(chunk)
    await settle()
  }
  source.end()
  await settle()
  assert.ok(attempt.readableLength <= 2 * attempt.readableHighWaterMark, `a paused reader stops the pull (${attempt.readableLength} bytes taken)`)
  assert.ok(source.readableLength + source.writableLength > 0, 'the rest waits in the source')
  assert.equal(body.canReplay, false)
  attempt.resume()
  for (let index = 0; index < 100 && !outcome.isDone; index++) await settle()
  assert.equal(outcome.body, chunks.join(''))
})

test('the client gone before undici asks, or mid-body: CLIENT_GONE, a failure of the client\'s side', async () => {
  const gone = new PassThrough()
  gone.destroy()
  await settle()
  const early = new ReplayableBody(gone)
  const earlyRead = read(early.forAttempt())
  await settle()
  assert.equal(earlyRead.error?.code, ErrorCode.CLIENT_GONE)
  assert.equal(early.hasSourceFailed, true)
  assert.equal(early.failure, earlyRead.error)

  const source = new PassThrough()
  const body = new ReplayableBody(source)
  const outcome = read(body.forAttempt())
  source.write('half')
  await settle()
  source.destroy()
  await settle()
  assert.equal(outcome.body, 'half')
  assert.equal(outcome.error?.code, ErrorCode.CLIENT_GONE)
  assert.match(outcome.error?.message ?? '', /closed its connection mid-body/)
  assert.equal(body.failure?.code, ErrorCode.CLIENT_GONE)
})

test('a body Node cannot parse (HPE_ errors) is REQUEST_MALFORMED; any other source error CLIENT_GONE', async () => {
  for (const [code, expected] of [['HPE_INVALID_CHUNK_SIZE', ErrorCode.REQUEST_MALFORMED], ['ECONNRESET', ErrorCode.CLIENT_GONE]] as const) {
    const source = new PassThrough()
    const body = new ReplayableBody(source)
    const outcome = read(body.forAttempt())
    await settle()
    source.destroy(Object.assign(new Error('broken'), { code }))
    await settle()
    assert.equal(outcome.error?.code, expected, code)
    assert.ok(outcome.error?.cause instanceof Error)
    assert.equal(body.failure?.code, expected)
  }
})

test('client.bodyIdleTimeout: a pause while undici waits fails the attempt with CLIENT_TIMEOUT when it reaches the bound, not before; each byte restarts it', async () => {
  const clock = new ManualClock()
  const source = new PassThrough()
  const body = new ReplayableBody(source, { idleTimeoutMs: 1000 }, clock)
  const outcome = read(body.forAttempt())
  await settle()
  clock.advance(999)
  source.write('a')
  await settle()
  clock.advance(999)
  await settle()
  assert.deepEqual([outcome.body, outcome.error], ['a', undefined], 'every pause shorter than the bound')
  clock.advance(1)
  await settle()
  assert.equal(outcome.error?.code, ErrorCode.CLIENT_TIMEOUT)
  assert.match(outcome.error?.message ?? '', /client\.bodyIdleTimeout \(1000 ms\)/)
  assert.equal(body.hasSourceFailed, true)
  assert.equal(source.destroyed, false, 'the source is the caller\'s to close')
  assert.equal(listens(source), 0)
})

test('no idle bound (0), and no bound while undici has not asked: time alone fails nothing', async () => {
  const clock = new ManualClock()
  const unbounded = new ReplayableBody(new PassThrough(), { idleTimeoutMs: 0, minBytesPerSecond: 0 }, clock)
  const outcome = read(unbounded.forAttempt())
  const bounded = new ReplayableBody(new PassThrough(), { idleTimeoutMs: 1000 }, clock)
  bounded.forAttempt()
  await settle()
  clock.advance(60_000)
  await settle()
  assert.deepEqual([outcome.error, bounded.failure], [undefined, undefined])
  assert.equal(clock.pendingTimers, 0)
})

test('client.minBodyRate: slower than the floor over a window spent mostly waiting on the client fails with CLIENT_TIMEOUT; at the floor it goes on', async () => {
  const floor = 100
  const windowBytes = floor * RATE_WINDOW_MS / 1000
  const clock = new ManualClock()
  const slowSource = new PassThrough()
  const slow = new ReplayableBody(slowSource, { minBytesPerSecond: floor }, clock)
  const slowRead = read(slow.forAttempt())
  const steadySource = new PassThrough()
  const steady = new ReplayableBody(steadySource, { minBytesPerSecond: floor }, clock)
  const steadyRead = read(steady.forAttempt())
  await settle()
  for (let second = 1; second <= RATE_WINDOW_MS / 1000; second++) {
    clock.advance(999)
    slowSource.write('x'.repeat(windowBytes / 10 - 1))
    steadySource.write('x'.repeat(windowBytes / 10))
    await settle()
    clock.advance(1)
    await settle()
  }
  assert.equal(slowRead.error?.code, ErrorCode.CLIENT_TIMEOUT)
  assert.match(slowRead.error?.message ?? '', /slower than client\.minBodyRate \(100 bytes\/s over 10 s\)/)
  assert.equal(steadyRead.error, undefined)
  // The next window is judged afresh.
  clock.advance(RATE_WINDOW_MS)
  await settle()
  const nextWindow: Outcome = steadyRead
  assert.equal(nextWindow.error?.code, ErrorCode.CLIENT_TIMEOUT, 'nothing at all in the next window')
})

test('client.minBodyRate: a body held back by a slow instance (undici not reading) is not the client\'s fault', async () => {
  const clock = new ManualClock()
  const source = new PassThrough()
  const body = new ReplayableBody(source, { minBytesPerSecond: 1_000_000 }, clock)
  const attempt = body.forAttempt()
  const outcome = read(attempt)
  source.write('x'.repeat(64 * 1024))
  await settle()
  attempt.pause()
  source.write('y'.repeat(64 * 1024))
  await settle()
  clock.advance(RATE_WINDOW_MS * 3)
  await settle()
  assert.equal(outcome.error, undefined)
  assert.equal(body.hasSourceFailed, false)
})

test('abandon(): the request is over; its timers go, its attempt goes, the source is left alone', async () => {
  const clock = new ManualClock()
  const source = new PassThrough()
  const body = new ReplayableBody(source, { idleTimeoutMs: 1000, minBytesPerSecond: 10 }, clock)
  const attempt = body.forAttempt()
  read(attempt)
  await settle()
  assert.ok(clock.pendingTimers > 0)
  body.abandon()
  await settle()
  assert.equal(clock.pendingTimers, 0)
  assert.equal(attempt.destroyed, true)
  clock.advance(60_000)
  assert.equal(body.failure, undefined)
  assert.equal(source.destroyed, false)
  assert.equal(listens(source), 0)
})
