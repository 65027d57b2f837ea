import { test } from 'node:test'
import assert from 'node:assert/strict'
import { Registry } from 'prom-client'
import { DnsFaceMetrics } from '../../../src/admin/dns-face-metrics.js'

const NAME = 'srvgate_dns_face_queries_total'

async function series (registry: Registry): Promise<Map<string, number>> {
  const text = await registry.metrics()
  return new Map(text.split('\n').filter((line) => line.startsWith(`${NAME}{`)).map((line) => {
    const space = line.lastIndexOf(' ')
    return [line.slice(NAME.length, space), Number(line.slice(space + 1))]
  }))
}

test('DNS face queries counted per query are the counter\'s series when it is read, read after read, and a reset starts them again', async () => {
  const registry = new Registry()
  const metrics = new DnsFaceMetrics([registry])
  for (let index = 0; index < 5; index++) metrics.countQuery('web', 'A', 'udp', 'noerror')
  metrics.countQuery('web', 'A', 'tcp', 'noerror')
  metrics.countQuery('(unknown)', 'AAAA', 'udp', 'nxdomain')
  assert.deepEqual(await series(registry), new Map([
    ['{name="web",type="A",transport="udp",rcode="noerror"}', 5],
    ['{name="web",type="A",transport="tcp",rcode="noerror"}', 1],
    ['{name="(unknown)",type="AAAA",transport="udp",rcode="nxdomain"}', 1]
  ]))
  metrics.countQuery('web', 'A', 'udp', 'noerror')
  const again = await series(registry)
  assert.equal(again.get('{name="web",type="A",transport="udp",rcode="noerror"}'), 6, 'added to, not counted twice')
  assert.equal(again.get('{name="web",type="A",transport="tcp",rcode="noerror"}'), 1)
  registry.resetMetrics()
  metrics.countQuery('web', 'A', 'udp', 'noerror')
  assert.deepEqual(await series(registry), new Map([['{name="web",type="A",transport="udp",rcode="noerror"}', 1]]))
})

test('DNS face queries past the tallied label sets are counted by prom-client directly: none lost', async () => {
  const registry = new Registry()
  const metrics = new DnsFaceMetrics([registry])
  const names = 4096 + 10
  for (let index = 0; index < names; index++) metrics.countQuery(`name${index}`, 'A', 'udp', 'noerror')
  metrics.countQuery(`name${names - 1}`, 'A', 'udp', 'noerror')
  const counted = await series(registry)
  assert.equal(counted.size, names)
  assert.equal([...counted.values()].reduce((sum, value) => sum + value, 0), names + 1)
  assert.equal(counted.get(`{name="name${names - 1}",type="A",transport="udp",rcode="noerror"}`), 2)
})
