/**
 * The process logger's base fields, as srvgate's own lines (access-log.ts)
 * carry them: the same text pino writes after level and time. After an
 * upgrade of pino, this says whether access lines still match pino's lines.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { hostname } from 'node:os'
import { Writable } from 'node:stream'
import { pinoBindings, processLogger } from '../../../src/log/process-log.js'
import { ManualClock } from '../../../src/util/clock.js'

function sink (): { stream: Writable, lines: () => string[] } {
  let text = ''
  const stream = new Writable({ write (chunk: Buffer, _encoding, done) { text += chunk.toString(); done() } })
  return { stream, lines: () => text.split('\n').filter((line) => line !== '') }
}

test('pinoBindings: pid and hostname, exactly as pino writes them after level and time', () => {
  const clock = new ManualClock()
  const out = sink()
  const log = processLogger({ level: 'info' }, clock, out.stream)
  const bindings = pinoBindings(log)
  assert.equal(bindings, `,"pid":${process.pid},"hostname":${JSON.stringify(hostname())}`)
  log.info({ status: 200 }, 'request')
  const [line] = out.lines()
  const head = `{"level":"info","time":"${new Date(clock.wallNow()).toISOString()}"${bindings}`
  assert.equal(line?.slice(0, head.length), head, `${line ?? '(no line)'} does not open with ${head}`)
  assert.deepEqual(JSON.parse(line ?? '{}'), { level: 'info', time: new Date(clock.wallNow()).toISOString(), pid: process.pid, hostname: hostname(), status: 200, msg: 'request' })
})

test('pinoBindings: nothing for a logger that is not a process logger (logging off: fastify\'s abstract logger)', () => {
  assert.equal(pinoBindings({ info () {}, error () {} }), '')
  const log = processLogger({ level: 'info' }, new ManualClock(), sink().stream)
  assert.equal(pinoBindings(log.child({ requestId: 'r-1' })), '', 'a child is not the process logger')
})
