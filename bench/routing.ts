/** Routing cost with 10 vs 10,000 frontends: host-keyed rules are map lookups, so the cost must not grow. */
import { parseConfigText } from '../src/config/load.js'
import { Router } from '../src/routing/router.js'
import type { RequestFacts } from '../src/routing/matcher.js'

function configWith (count: number): string {
  const frontends = Array.from({ length: count }, (_, index) => `  - { name: f${index}, match: { host: "app${index}.example.com" }, backend: web }`)
  frontends.push('  - { name: staging, match: { host: "*.staging.example.com" }, backend: web }')
  return `
listen: { http: 127.0.0.1:0 }
resolvers: { consul: { nameservers: [127.0.0.1:8600] } }
backends: { web: { discovery: { resolver: consul, srv: _web._prod.service.consul } } }
frontends:
${frontends.join('\n')}
`
}

function nsPerRoute (router: Router, hosts: readonly string[], iterations: number): number {
  const facts = hosts.map((host): RequestFacts => ({ host, path: '/', method: 'GET', header: () => undefined }))
  let best = Infinity
  for (let run = 0; run < 5; run++) {
    const started = process.hrtime.bigint()
    for (let index = 0; index < iterations; index++) router.route(facts[index % facts.length] as RequestFacts)
    best = Math.min(best, Number(process.hrtime.bigint() - started) / iterations)
  }
  return best
}

export function routingSection (report: (name: string, value: string, target?: string) => void): void {
  console.log('\n## routing')
  for (const count of [10, 10_000]) {
    const router = new Router(parseConfigText(configWith(count), {}).frontends)
    const hosts = [`app${count - 1}.example.com`, 'app3.example.com', 'x.staging.example.com', 'nobody.example.org']
    report(`route() with ${count.toLocaleString('en')} host frontends`, `${nsPerRoute(router, hosts, 400_000).toFixed(0)} ns`, 'flat from 10 to 10,000')
  }
}
