import { test } from 'node:test'
import assert from 'node:assert/strict'
import { ActiveChecker } from '../../../src/health/active-checker.js'
import { HealthTable } from '../../../src/health/instance-health.js'
import { toInstance } from '../../../src/discovery/instance-set.js'
import { SeededRandom } from '../../../src/util/random.js'
import { ms } from '../../../src/util/duration.js'
import { ManualClock } from '../../../src/util/clock.js'

const CHECK = { path: '/healthz', intervalMs: ms(1000), timeoutMs: ms(100), rise: 2, fall: 3 }

test('fall failures in a row take an instance out; rise passes in a row bring it back', async () => {
  const instance = toInstance({ address: '10.0.0.1', port: 80, priority: 1, weight: 1 })
  const health = new HealthTable()
  const results: boolean[] = [true, false, false, true, false, false, false, true, true, false, true, true]
  const changes: boolean[] = []
  const checker = new ActiveChecker({
    check: CHECK, instances: () => [instance], health, random: new SeededRandom(1), clock: new ManualClock(),
    onChange: (_instance, isFailing) => changes.push(isFailing),
    probe: async () => results.shift() as boolean
  })
  const states: boolean[] = []
  while (results.length > 0) {
    await checker.round()
    states.push(health.get(instance.key).isFailingActiveCheck)
  }
  //           pass   fail   fail   pass   fail   fail   FAIL   pass   PASS   fail  pass  pass
  assert.deepEqual(states, [false, false, false, false, false, false, true, true, false, false, false, false])
  assert.deepEqual(changes, [true, false])
})

test('a probe that throws counts as a failure', async () => {
  const instance = toInstance({ address: '10.0.0.1', port: 80, priority: 1, weight: 1 })
  const health = new HealthTable()
  const checker = new ActiveChecker({
    check: { ...CHECK, fall: 1 }, instances: () => [instance], health, random: new SeededRandom(1), clock: new ManualClock(), onChange: () => {},
    probe: async () => { throw new Error('ECONNREFUSED') }
  })
  await checker.round()
  assert.equal(health.get(instance.key).isFailingActiveCheck, true)
})

test('rounds run on the clock: the first within one interval, then every interval ± 20%, none after stop()', async () => {
  const instance = toInstance({ address: '10.0.0.1', port: 80, priority: 1, weight: 1 })
  const clock = new ManualClock()
  const probedAt: number[] = []
  const checker = new ActiveChecker({
    check: CHECK, instances: () => [instance], health: new HealthTable(), random: new SeededRandom(7), clock, onChange: () => {},
    probe: async () => { probedAt.push(clock.now()); return true }
  })
  const start = clock.now()
  checker.start()
  await clock.advanceAndSettle(5000)
  assert.ok(probedAt.length >= 4 && probedAt.length <= 7, `${probedAt.length} rounds in 5 s at 1 s ± 20%`)
  assert.ok((probedAt[0] as number) - start <= 1000, 'the first round within one interval')
  const gaps = probedAt.slice(1).map((at, index) => at - (probedAt[index] as number))
  assert.ok(gaps.every((gap) => gap >= 800 && gap <= 1200), `gaps ${gaps.join(', ')}`)
  assert.ok(new Set(gaps).size > 1, 'jittered: replicas do not probe in lockstep')
  checker.stop()
  const count = probedAt.length
  await clock.advanceAndSettle(5000)
  assert.equal(probedAt.length, count)
  assert.equal(clock.pendingTimers, 0)
})

test('checks speak the backend\'s protocol: HTTP/2 with prior knowledge (h2c), HTTP/2 over TLS (h2) with its serverName and CA; HTTP/1.1 to an HTTP/2-only instance fails', async (t) => {
  const { createServer, createSecureServer } = await import('node:http2')
  const { readFileSync } = await import('node:fs')
  const { TestCa } = await import('../../helpers/certificates.js')
  const { systemClock } = await import('../../../src/util/clock.js')
  const answer = (request: { url: string }, response: { writeHead: (status: number) => void, end: () => void }): void => {
    response.writeHead(request.url === '/healthz' ? 200 : 404)
    response.end()
  }
  const plain = createServer(answer)
  const ca = TestCa.create(t)
  const issued = ca.issue(['grpc.internal'])
  const secure = createSecureServer({ cert: readFileSync(issued.cert), key: readFileSync(issued.key) }, answer)
  for (const server of [plain, secure]) {
    await new Promise<void>((resolve) => { server.listen(0, '127.0.0.1', resolve) })
    t.after(() => { server.close() })
  }
  const portOf = (server: typeof plain | typeof secure): number => (server.address() as { port: number }).port
  const outcome = async (port: number, speaks: ConstructorParameters<typeof ActiveChecker>[0]['speaks']): Promise<boolean> => {
    const instance = toInstance({ address: '127.0.0.1', port, priority: 1, weight: 1 })
    const health = new HealthTable()
    const checker = new ActiveChecker({ check: { ...CHECK, timeoutMs: ms(2000), fall: 1 }, instances: () => [instance], health, random: new SeededRandom(1), clock: systemClock, onChange: () => {}, speaks })
    await checker.round()
    checker.stop()
    return !health.get(instance.key).isFailingActiveCheck
  }
  assert.equal(await outcome(portOf(plain), { protocol: 'h2c', tls: undefined }), true, 'h2c')
  assert.equal(await outcome(portOf(plain), { protocol: 'http1', tls: undefined }), false, 'HTTP/1.1 to an h2c-only instance')
  assert.equal(await outcome(portOf(secure), { protocol: 'h2', tls: { serverName: 'grpc.internal', caPath: ca.caPath, verify: true } }), true, 'h2 over TLS')
  assert.equal(await outcome(portOf(secure), { protocol: 'h2', tls: { serverName: 'other.internal', caPath: ca.caPath, verify: true } }), false, 'a certificate for another name')
})
