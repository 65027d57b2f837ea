import { test } from 'node:test'
import assert from 'node:assert/strict'
import { ActiveChecker } from '../../../src/health/active-checker.js'
import { HealthTable } from '../../../src/health/instance-health.js'
import { toInstance } from '../../../src/discovery/instance-set.js'
import { SeededRandom } from '../../../src/util/random.js'
import { ms } from '../../../src/util/duration.js'

const CHECK = { path: '/healthz', intervalMs: ms(1000), timeoutMs: ms(100), rise: 2, fall: 3 }

test('fall failures in a row take an instance out; rise passes in a row bring it back', async () => {
  const instance = toInstance({ address: '10.0.0.1', port: 80, priority: 1, weight: 1 })
  const health = new HealthTable()
  const results: boolean[] = [true, false, false, true, false, false, false, true, true, false, true, true]
  const changes: boolean[] = []
  const checker = new ActiveChecker({
    check: CHECK, instances: () => [instance], health, random: new SeededRandom(1),
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
    check: { ...CHECK, fall: 1 }, instances: () => [instance], health, random: new SeededRandom(1), onChange: () => {},
    probe: async () => { throw new Error('ECONNREFUSED') }
  })
  await checker.round()
  assert.equal(health.get(instance.key).isFailingActiveCheck, true)
})
