/**
 * deploy/grafana/srvgate-dashboard.json against a running srvgate: every
 * metric a panel queries is one the gateway exports (with the labels the
 * query filters on), and the dashboard is well formed for Grafana (panels on
 * the 24-column grid without overlap, one datasource variable, unique ids).
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { ConsulLikeDnsServer } from '../helpers/dns-server.js'
import { Upstream } from '../helpers/upstream.js'
import { SpawnedGateway } from '../helpers/spawn-gateway.js'
import { send } from '../helpers/http.js'

type Target = { expr: string, refId: string, datasource?: { uid: string } }
type Panel = { id: number, type: string, title: string, gridPos: { x: number, y: number, w: number, h: number }, targets?: Target[], datasource?: { uid: string } }
type Dashboard = { uid: string, title: string, schemaVersion: number, panels: Panel[], templating: { list: Array<{ name: string, type: string }> } }

const dashboard = JSON.parse(readFileSync('deploy/grafana/srvgate-dashboard.json', 'utf8')) as Dashboard
const PROMQL_WORDS = new Set(['sum', 'by', 'rate', 'increase', 'histogram_quantile', 'min', 'max', 'le'])

test('the Grafana dashboard is well formed: grid, ids, datasource variable, a query on every panel', () => {
  assert.equal(dashboard.uid, 'srvgate-overview')
  assert.ok(dashboard.schemaVersion >= 36)
  assert.ok(dashboard.templating.list.some((variable) => variable.name === 'datasource' && variable.type === 'datasource'))
  const ids = dashboard.panels.map((panel) => panel.id)
  assert.equal(new Set(ids).size, ids.length, 'panel ids are unique')
  const occupied = new Set<string>()
  for (const panel of dashboard.panels) {
    const { x, y, w, h } = panel.gridPos
    assert.ok(x >= 0 && w > 0 && x + w <= 24, `${panel.title}: inside the 24-column grid`)
    for (let row = y; row < y + h; row++) {
      for (let column = x; column < x + w; column++) {
        const cell = `${row}:${column}`
        assert.ok(!occupied.has(cell), `${panel.title} overlaps another panel at ${cell}`)
        occupied.add(cell)
      }
    }
    if (panel.type === 'row') continue
    assert.equal(panel.datasource?.uid, '${datasource}', panel.title)
    assert.ok((panel.targets ?? []).length > 0, `${panel.title} has a query`)
  }
})

test('every metric and label the dashboard queries is exported by a running srvgate', async (t) => {
  const dns = await ConsulLikeDnsServer.start(t)
  const upstream = await Upstream.start(t, 'graphed')
  dns.setService('_g.service.consul', [{ address: '127.0.0.1', port: upstream.port }])
  const gateway = await SpawnedGateway.start(t, `
listen: { http: "127.0.0.1:\${PORT}", admin: "127.0.0.1:\${ADMIN_PORT}" }
resolvers: { consul: { nameservers: ["${dns.address}"] } }
backends: { g: { discovery: { resolver: consul, srv: _g.service.consul } } }
frontends: [ { name: g, match: { host: g.example.com }, backend: g } ]
`)
  for (let index = 0; index < 5; index++) await send(`${gateway.url}/`, { host: 'g.example.com' })
  await send(`${gateway.url}/`, { host: 'nowhere.example.com' })
  const exposition = (await send(`${gateway.adminUrl}/metrics`)).body
  const families = new Map<string, Set<string>>()
  for (const match of exposition.matchAll(/^# TYPE (\S+) (\S+)$/gm)) families.set(match[1] as string, new Set())
  for (const match of exposition.matchAll(/^([a-zA-Z_:][\w:]*)\{([^}]*)\}/gm)) {
    const family = familyOf(match[1] as string, families)
    for (const label of (match[2] as string).matchAll(/(\w+)="/g)) families.get(family)?.add(label[1] as string)
  }
  for (const panel of dashboard.panels) {
    for (const target of panel.targets ?? []) {
      for (const selector of target.expr.matchAll(/([a-zA-Z_:][\w:]*)\{([^}]*)\}/g)) {
        const name = selector[1] as string
        if (PROMQL_WORDS.has(name)) continue
        const family = familyOf(name, families)
        assert.ok(families.has(family), `${panel.title}: ${name} is not exported`)
        const labels = families.get(family) as Set<string>
        if (labels.size === 0) continue
        for (const label of (selector[2] as string).matchAll(/(\w+)\s*=~?/g)) {
          const key = label[1] as string
          if (key === 'job' || key === 'instance') continue
          assert.ok(labels.has(key), `${panel.title}: ${name} has no label ${key}`)
        }
      }
      for (const grouping of target.expr.matchAll(/by \(([^)]*)\)/g)) {
        for (const key of (grouping[1] as string).split(',').map((item) => item.trim())) {
          if (key === 'le' || key === 'instance' || key === 'job') continue
          const names = [...target.expr.matchAll(/([a-zA-Z_:][\w:]*)\{/g)].map((item) => familyOf(item[1] as string, families)).filter((name) => families.has(name))
          assert.ok(names.some((name) => (families.get(name) as Set<string>).has(key) || (families.get(name) as Set<string>).size === 0), `${panel.title}: grouped by ${key}, which none of its metrics carries`)
        }
      }
    }
  }
})

/** `x_bucket` → `x` when `x` is a histogram family. */
function familyOf (name: string, families: ReadonlyMap<string, unknown>): string {
  if (families.has(name)) return name
  const base = name.replace(/_(bucket|sum|count)$/, '')
  return families.has(base) ? base : name
}
