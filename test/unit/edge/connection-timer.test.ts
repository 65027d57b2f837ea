/**
 * The HTTPS connection's timeline on a ManualClock: one deadline from accept
 * over handshake and head, keepAliveTimeout between requests, a next head
 * given headersTimeout once its bytes are seen. The socket is a stand-in
 * with the two things the timer reads: bytesRead and 'close'.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { EventEmitter } from 'node:events'
import type { Socket } from 'node:net'
import type { ServerHttp2Session } from 'node:http2'
import { ManualClock } from '../../../src/util/clock.js'
import { ConnectionTimer } from '../../../src/edge/connection-timer.js'

class StandIn extends EventEmitter {
  bytesRead = 0
  destroyed = false
  writable = true
  destroy (): void { this.destroyed = true; this.emit('close') }
}

function made (): { clock: ManualClock, raw: StandIn, timer: ConnectionTimer, events: string[] } {
  const clock = new ManualClock()
  const raw = new StandIn()
  const events: string[] = []
  const timer = new ConnectionTimer(raw as unknown as Socket, clock, () => ({ headersTimeoutMs: 1000, keepAliveTimeoutMs: 500 }), {
    handshakeTimedOut: () => { events.push('handshake'); raw.destroy() },
    headTimedOut: () => { events.push('408'); raw.destroy() }
  })
  return { clock, raw, timer, events }
}

test('a handshake not done within headersTimeout of accept is reported as such, whatever bytes came', () => {
  const { clock, raw, events } = made()
  for (let ms = 0; ms < 900; ms += 100) { raw.bytesRead++; clock.advance(100) }
  assert.deepEqual(events, [])
  clock.advance(100)
  assert.deepEqual(events, ['handshake'])
})

test('after the handshake, the same deadline covers the first head: 408 on HTTP/1.1, GOAWAY and close on HTTP/2', () => {
  const http1 = made()
  http1.clock.advance(400)
  http1.timer.secured(new StandIn() as unknown as Socket)
  http1.clock.advance(599)
  assert.deepEqual(http1.events, [])
  http1.clock.advance(1)
  assert.deepEqual(http1.events, ['408'])

  const http2 = made()
  const closed: string[] = []
  const session = Object.assign(new EventEmitter(), { destroyed: false, close: () => { closed.push('close') }, destroy: () => { closed.push('destroy') } })
  http2.timer.secured(new StandIn() as unknown as Socket)
  http2.timer.session(session as unknown as ServerHttp2Session)
  http2.clock.advance(1000)
  assert.deepEqual(closed, ['close'], 'GOAWAY first')
  http2.clock.advance(1000)
  assert.deepEqual(closed, ['close', 'destroy'], 'destroyed when the client keeps it open')
})

test('between requests keepAliveTimeout closes an idle connection; a next head under way gets headersTimeout instead', () => {
  const idle = made()
  idle.timer.secured(new StandIn() as unknown as Socket)
  idle.timer.requestStarted()
  idle.clock.advance(5000)
  assert.equal(idle.raw.destroyed, false, 'no deadline while a request is under way')
  idle.timer.requestEnded()
  idle.clock.advance(499)
  assert.equal(idle.raw.destroyed, false)
  idle.clock.advance(1)
  assert.equal(idle.raw.destroyed, true)

  const busy = made()
  busy.timer.secured(new StandIn() as unknown as Socket)
  busy.timer.requestStarted()
  busy.timer.requestEnded()
  busy.clock.advance(300)
  busy.raw.bytesRead += 16
  busy.clock.advance(200)
  assert.equal(busy.raw.destroyed, false, 'bytes of a next head came while idle')
  busy.clock.advance(999)
  assert.deepEqual(busy.events, [])
  busy.clock.advance(1)
  assert.deepEqual(busy.events, ['408'])
})

test('an upgraded connection (a WebSocket tunnel) is left to its own limits', () => {
  const { clock, raw, timer } = made()
  timer.secured(new StandIn() as unknown as Socket)
  timer.requestStarted()
  timer.tunnel()
  timer.requestEnded()
  clock.advance(60_000)
  assert.equal(raw.destroyed, false)
})
