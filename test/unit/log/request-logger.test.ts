import { test } from 'node:test'
import assert from 'node:assert/strict'
import { Writable } from 'node:stream'
import pino from 'pino'
import { RequestLogger } from '../../../src/log/process-log.js'

function capture (): { logger: pino.Logger, lines: () => Array<Record<string, unknown>>, children: () => number } {
  let text = ''
  const sink = new Writable({ write (chunk: Buffer, _encoding, done) { text += chunk.toString(); done() } })
  const logger = pino({ level: 'info' }, sink)
  let children = 0
  const original = logger.child
  // Counted on the logger and inherited by its children (pino children are Object.create(parent)).
  logger.child = function (this: pino.Logger, ...args: Parameters<pino.Logger['child']>) { children++; return original.apply(this, args) } as pino.Logger['child']
  return { logger, lines: () => text.split('\n').filter((line) => line !== '').map((line) => JSON.parse(line) as Record<string, unknown>), children: () => children }
}

test('request.log: no pino child until a line is written; then lines carry the request id, at the parent\'s level', () => {
  const { logger, lines, children } = capture()
  const log = new RequestLogger(logger, { requestId: 'r-1' })
  assert.equal(log.level, 'info')
  log.debug('below the level')
  assert.equal(children(), 1, 'a line below the level still asks the child (pino decides), once')
  const quiet = new RequestLogger(logger, { requestId: 'r-2' })
  assert.equal(quiet.level, 'info')
  assert.equal(children(), 1, 'a request that logs nothing makes no child')
  log.warn({ err: new Error('boom') }, 'Reply was already sent')
  log.error('plain message')
  log.info({ a: 1 }, 'with %s', 'format')
  const written = lines()
  assert.deepEqual(written.map((line) => [line.requestId, line.msg]), [['r-1', 'Reply was already sent'], ['r-1', 'plain message'], ['r-1', 'with format']])
  assert.equal((written[0]?.err as { message?: string }).message, 'boom')
  assert.equal(written[2]?.a, 1)
  assert.equal(children(), 1, 'one child per request, however many lines')
  log.child({ more: true }).info('deeper')
  assert.deepEqual([lines().at(-1)?.requestId, lines().at(-1)?.more], ['r-1', true])
})
