import { test } from 'node:test'
import assert from 'node:assert/strict'
import { InstanceHealth, HealthTable } from '../../../src/health/instance-health.js'
import { OutlierDetector, MAX_EJECTION_MS } from '../../../src/health/outlier.js'

const POLICY = { consecutiveFailures: 3, ejectForMs: 10_000, maxEjectedPercent: 50 }

test('consecutiveFailures in a row eject for ejectFor; a success in between resets the count', () => {
  const detector = new OutlierDetector(POLICY)
  const health = new InstanceHealth('10.0.0.1:80')
  assert.equal(detector.recordFailure(health, 1000, 0, 4), false)
  assert.equal(detector.recordFailure(health, 1000, 0, 4), false)
  detector.recordSuccess(health)
  assert.equal(detector.recordFailure(health, 1000, 0, 4), false)
  assert.equal(detector.recordFailure(health, 1000, 0, 4), false)
  assert.equal(detector.recordFailure(health, 1000, 0, 4), true)
  assert.equal(health.ejectedUntilMs, 11_000)
  assert.equal(health.isEjected(10_999), true)
  assert.equal(health.isEjected(11_000), false)
})

test('repeated ejection grows the ejection time, capped; healthy time decays it', () => {
  const detector = new OutlierDetector(POLICY)
  const health = new InstanceHealth('10.0.0.1:80')
  const eject = (now: number) => { for (let index = 0; index < 3; index++) detector.recordFailure(health, now, 0, 4) }
  eject(0)
  assert.equal(health.ejectedUntilMs, 10_000)
  eject(10_000)
  assert.equal(health.ejectedUntilMs, 10_000 + 20_000, 'second ejection in a row: 2 × ejectFor')
  eject(30_000)
  assert.equal(health.ejectedUntilMs, 30_000 + 30_000)
  // Healthy for 2 × ejectFor after the last ejection ended: the count decays by 2 (3 → 1), so 2 × ejectFor next.
  eject(80_000)
  assert.equal(health.ejectedUntilMs, 80_000 + 20_000)
  let previousLengthMs = 0
  for (let round = 0; round < 100; round++) {
    const start = health.ejectedUntilMs
    eject(start)
    const lengthMs = health.ejectedUntilMs - start
    assert.ok(lengthMs >= previousLengthMs, 'never shorter in a row')
    assert.ok(lengthMs <= MAX_EJECTION_MS, `round ${round}: ${lengthMs} ms, over the cap`)
    previousLengthMs = lengthMs
  }
  // 30 ejections in a row would be 300 s uncapped at 10 s each; 100 reach the cap exactly.
  assert.equal(previousLengthMs, MAX_EJECTION_MS)
  assert.equal(MAX_EJECTION_MS, 300_000, 'Envoy\'s max_ejection_time default: 5 minutes')
})

test('maxEjectedPercent caps how many instances are out at once', () => {
  const detector = new OutlierDetector(POLICY)
  assert.equal(detector.mayEject(0, 4), true)
  assert.equal(detector.mayEject(1, 4), true)
  assert.equal(detector.mayEject(2, 4), false, '3 of 4 would be 75%')
  assert.equal(detector.mayEject(0, 1), false, 'the only instance is never ejected at 50%')
  const health = new InstanceHealth('10.0.0.1:80')
  for (let index = 0; index < 5; index++) assert.equal(detector.recordFailure(health, 0, 2, 4), false)
  assert.equal(health.isEjected(0), false)
})

test('maxEjectedPercent with an alternative (a split sibling, a failover target): the cap is lifted, the last instance may go; 0 still means never', () => {
  const detector = new OutlierDetector(POLICY)
  // Table: ejected, total, has an alternative → may eject.
  const rows: Array<[number, number, boolean, boolean]> = [
    [0, 1, false, false],
    [0, 1, true, true],
    [1, 2, false, false],
    [1, 2, true, true],
    [2, 4, true, true],
    [3, 4, true, true],
    [4, 4, true, false],
    [0, 0, true, false]
  ]
  for (const [ejected, total, hasAlternative, expected] of rows) {
    assert.equal(detector.mayEject(ejected, total, hasAlternative), expected, `${ejected} of ${total} out, alternative: ${String(hasAlternative)}`)
  }
  assert.equal(new OutlierDetector({ ...POLICY, maxEjectedPercent: 0 }).mayEject(0, 1, true), false, 'maxEjectedPercent 0: passive ejection is off')

  // The only instance of a member whose sibling is usable: ejected at the third failure in a row.
  const only = new InstanceHealth('10.0.0.1:80')
  let asked = 0
  const sibling = (): boolean => { asked++; return true }
  assert.equal(detector.recordFailure(only, 0, 0, 1, sibling), false)
  assert.equal(detector.recordFailure(only, 0, 0, 1, sibling), false)
  assert.equal(asked, 0, 'the alternative is looked at only when an ejection is due')
  assert.equal(detector.recordFailure(only, 0, 0, 1, sibling), true)
  assert.equal(only.isEjected(9_999), true)
  // The same with nowhere else to go: kept (its errors would otherwise become 503s).
  const alone = new InstanceHealth('10.0.0.2:80')
  for (let index = 0; index < 5; index++) assert.equal(detector.recordFailure(alone, 0, 0, 1, () => false), false)
})

test('the health table keeps records across refreshes and purges only absent, idle instances', () => {
  const table = new HealthTable()
  const kept = table.get('10.0.0.1:80')
  kept.consecutiveFailures = 2
  const busy = table.get('10.0.0.2:80')
  busy.inFlight = 1
  table.get('10.0.0.3:80')
  table.purge((key) => key === '10.0.0.1:80')
  assert.equal(table.get('10.0.0.1:80').consecutiveFailures, 2, 'same record after a refresh')
  assert.equal(table.peek('10.0.0.2:80'), busy, 'in-flight requests keep a removed instance known')
  assert.equal(table.peek('10.0.0.3:80'), undefined)
})

test('slow start counts from when an instance last became usable: appeared, back from an ejection, or passing its checks again', () => {
  const record = new InstanceHealth('10.0.0.1:80')
  assert.equal(record.warmFromMs, -Infinity, 'there from the start: never new')
  record.addedMs = 1_000
  assert.equal(record.warmFromMs, 1_000)
  record.ejectedUntilMs = 5_000
  assert.equal(record.warmFromMs, 5_000, 'an ejection ending ramps it again')
  record.recoveredMs = 9_000
  assert.equal(record.warmFromMs, 9_000, 'so does passing its checks again')
})
