/** The discovery watcher and the state-file writer as timelines on a ManualClock: no sleeping. */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, readFileSync, existsSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ResolverCache } from '../../../src/dns/cache.js'
import type { Lookup, Resolver } from '../../../src/dns/resolver.js'
import type { Resolution } from '../../../src/dns/types.js'
import { DiscoveryWatcher } from '../../../src/discovery/watcher.js'
import { StateFileWriter } from '../../../src/discovery/state-file.js'
import { ManualClock } from '../../../src/util/clock.js'
import { SeededRandom } from '../../../src/util/random.js'

const WEB: Lookup = { kind: 'srv', name: '_web._prod.service.consul' }

function answer (addresses: string[]): Resolution {
  return { outcome: 'answer', instances: addresses.map((address) => ({ address, port: 80, priority: 1, weight: 1, target: address })), ttlSeconds: 0, nameserver: 'ns', transport: 'udp', tcpReason: undefined }
}

function setup () {
  const clock = new ManualClock()
  const asked: number[] = []
  let next = answer(['10.0.0.1'])
  const resolver: Resolver = { resolve: async () => { asked.push(clock.now()); return next } }
  const cache = new ResolverCache({ resolver, clock, random: new SeededRandom(3), policy: { ttl: { minMs: 1000, maxMs: 30_000 }, staleForMs: 60_000, negativeTtlMs: 5000, emptyGraceMs: 0 } })
  const changes: string[][] = []
  const watcher = new DiscoveryWatcher({ lookup: WEB, cache, clock, minIntervalMs: 1000, onChange: (snapshot) => { changes.push(snapshot.set.instances.map((instance) => instance.address)) } })
  return { clock, asked, watcher, changes, cache, answerWith: (addresses: string[]) => { next = answer(addresses) } }
}

test('the watcher reads the cache before expiry: one query per TTL, a change seen within it, every read a hit', async () => {
  const { clock, asked, watcher, changes, answerWith } = setup()
  const start = clock.now()
  await watcher.start()
  assert.deepEqual(changes, [['10.0.0.1']])
  await clock.advanceAndSettle(5000)
  assert.ok(asked.length >= 5 && asked.length <= 7, `${asked.length} queries in 5 s at a 1 s TTL`)
  answerWith(['10.0.0.2'])
  const changedAt = clock.now()
  await clock.advanceAndSettle(1500)
  assert.deepEqual(changes.at(-1), ['10.0.0.2'], 'followed within the TTL and a half')
  assert.ok(asked.every((at) => at >= start))
  assert.ok(asked.some((at) => at > changedAt))
  watcher.stop()
  const count = asked.length
  await clock.advanceAndSettle(5000)
  assert.equal(asked.length, count, 'no reads after stop()')
})

test('a connect failure asks for a refresh at once, but no more than one per 250 ms', async () => {
  const { clock, asked, watcher } = setup()
  await watcher.start()
  const before = asked.length
  for (let index = 0; index < 10; index++) watcher.refreshSoon()
  await clock.advanceAndSettle(0)
  assert.equal(asked.length, before + 1)
  await clock.advanceAndSettle(100)
  watcher.refreshSoon()
  await clock.advanceAndSettle(0)
  assert.equal(asked.length, before + 1, 'within 250 ms: not again')
  await clock.advanceAndSettle(200)
  watcher.refreshSoon()
  await clock.advanceAndSettle(0)
  assert.equal(asked.length, before + 2)
  watcher.stop()
})

test('the state-file writer coalesces a burst of changes into one write, everyMs later', async () => {
  const clock = new ManualClock()
  const path = join(mkdtempSync(join(tmpdir(), 'srvgate-writer-')), 'state.json')
  let collected = 0
  const writer = new StateFileWriter(path, () => { collected++; return [{ lookup: WEB, resolver: 'consul', instances: [], savedAt: 'then' }] }, { everyMs: 500, clock, onError: (error) => { throw error } })
  for (let index = 0; index < 20; index++) writer.schedule()
  clock.advance(499)
  assert.equal(existsSync(path), false, 'not before everyMs')
  clock.advance(1)
  await writer.writing
  assert.equal(collected, 1, 'one write for twenty changes')
  assert.equal((JSON.parse(readFileSync(path, 'utf8')) as { sets: unknown[] }).sets.length, 1)
  writer.schedule()
  await writer.flush()
  assert.equal(collected, 2, 'flush writes at once')
  clock.advance(1000)
  await writer.writing
  assert.equal(collected, 2, 'the flushed timer does not fire again')
})
