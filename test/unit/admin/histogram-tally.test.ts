import { test } from 'node:test'
import assert from 'node:assert/strict'
import { Histogram, Registry } from 'prom-client'
import { HistogramTally } from '../../../src/admin/histogram-tally.js'

const BUCKETS = [0.001, 0.01, 0.1, 1]
/** Values on, between, under and over the bounds, and a zero. */
const VALUES = [0, 0.0005, 0.001, 0.002, 0.01, 0.05, 0.1, 0.5, 1, 3, 30, 0.007]

function twoHistograms (): { registry: Registry, tallied: Histogram<'backend'>, direct: Histogram<'backend'>, tallies: Array<HistogramTally<'backend'>> } {
  const registry = new Registry()
  const tallies: Array<HistogramTally<'backend'>> = []
  const tallied = new Histogram({ name: 'tallied_seconds', help: 'h', labelNames: ['backend'], buckets: BUCKETS, registers: [registry], collect () { for (const tally of tallies) tally.flush() } })
  const direct = new Histogram({ name: 'direct_seconds', help: 'h', labelNames: ['backend'], buckets: BUCKETS, registers: [registry] })
  return { registry, tallied, direct, tallies }
}

async function seriesOf (registry: Registry, name: string): Promise<string[]> {
  const text = await registry.metrics()
  return text.split('\n').filter((line) => line.startsWith(name)).map((line) => line.slice(name.length)).map((line) => line.replace(/_sum\{([^}]*)\} ([\d.e-]+)$/, (_all, labels: string, sum: string) => `_sum{${labels}} ${Number(sum).toFixed(9)}`))
}

test('a tally gives prom-client\'s own buckets, sum and count for the same observations, read after read', async () => {
  const { registry, tallied, direct, tallies } = twoHistograms()
  const web = new HistogramTally(tallied, { backend: 'web' })
  const api = new HistogramTally(tallied, { backend: 'api' })
  tallies.push(web, api)
  for (const value of VALUES) {
    web.observe(value)
    direct.observe({ backend: 'web' }, value)
  }
  api.observe(0.02)
  direct.observe({ backend: 'api' }, 0.02)
  assert.deepEqual(await seriesOf(registry, 'tallied_seconds'), await seriesOf(registry, 'direct_seconds'))
  // A second read adds only what came since the first.
  web.observe(0.3)
  direct.observe({ backend: 'web' }, 0.3)
  const afterSecondRead = await seriesOf(registry, 'tallied_seconds')
  assert.deepEqual(afterSecondRead, await seriesOf(registry, 'direct_seconds'))
  assert.ok(afterSecondRead.includes('_count{backend="web"} 13'), afterSecondRead.join('\n'))
  assert.ok(afterSecondRead.includes('_bucket{le="+Inf",backend="web"} 13'))
  assert.ok(afterSecondRead.includes('_bucket{le="0.001",backend="web"} 3'))
})

test('a tally adds to a series prom-client already keeps, survives a reset, and never turns the sum into NaN', async () => {
  const { registry, tallied, direct, tallies } = twoHistograms()
  tallied.observe({ backend: 'web' }, 0.5)
  direct.observe({ backend: 'web' }, 0.5)
  const web = new HistogramTally(tallied, { backend: 'web' })
  tallies.push(web)
  web.observe(0.005)
  direct.observe({ backend: 'web' }, 0.005)
  web.observe(Number.NaN)
  web.observe(Number.POSITIVE_INFINITY)
  assert.deepEqual(await seriesOf(registry, 'tallied_seconds'), await seriesOf(registry, 'direct_seconds'))

  registry.resetMetrics()
  web.observe(2)
  direct.observe({ backend: 'web' }, 2)
  assert.deepEqual(await seriesOf(registry, 'tallied_seconds'), await seriesOf(registry, 'direct_seconds'))
  assert.ok((await seriesOf(registry, 'tallied_seconds')).includes('_count{backend="web"} 1'))
})

test('nothing observed: the series is not made (as with prom-client, which makes none before a first observe)', async () => {
  const { registry, tallies, tallied } = twoHistograms()
  tallies.push(new HistogramTally(tallied, { backend: 'idle' }))
  assert.deepEqual(await seriesOf(registry, 'tallied_seconds'), [])
})
