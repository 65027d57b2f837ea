/**
 * A flood of random preview hosts: every valid `{env}` makes a templated
 * backend, so memory must stay bounded by the template limit (256), not by
 * the number of hosts seen. Prints backends alive and resident memory.
 */
import { readFileSync } from 'node:fs'
import { ConsulLikeDnsServer } from '../test/helpers/dns-server.js'
import { spawnBenchGateway } from './spawn-gateway.js'
import { send } from '../test/helpers/http.js'

const HOSTS = Number(process.env.BENCH_FLOOD_HOSTS ?? 5000)

export async function floodSection (report: (name: string, value: string, target?: string) => void): Promise<void> {
  console.log(`\n## flood (${HOSTS.toLocaleString('en')} distinct preview hosts)`)
  const dns = await ConsulLikeDnsServer.start(undefined)
  const { port, adminPort, child: gateway } = await spawnBenchGateway('flood', `
resolvers: { consul: { nameservers: ["${dns.address}"] } }
frontends:
  - name: preview
    match: { host: "{env}.preview.example.com" }
    env: { pattern: "pr-[0-9]{1,6}" }
    backend: { template: "web-{env}", discovery: { resolver: consul, srv: "_web._{env}.service.consul" } }
`)
  try {
    const rssBefore = rssMb(gateway.pid as number)
    const started = performance.now()
    const statuses = new Map<number, number>()
    for (let index = 0; index < HOSTS; index += 50) {
      await Promise.all(Array.from({ length: 50 }, async (_, offset) => {
        const response = await send(`http://127.0.0.1:${port}/`, { host: `pr-${index + offset}.preview.example.com` })
        statuses.set(response.status, (statuses.get(response.status) ?? 0) + 1)
      }))
    }
    const seconds = (performance.now() - started) / 1000
    const state = (await send(`http://127.0.0.1:${adminPort}/admin/state`)).json() as { backends: unknown[] }
    report('requests answered (each a new env, none has instances)', [...statuses].map(([status, count]) => `${count}×${status}`).join(' '))
    report('  rate', `${(HOSTS / seconds).toFixed(0)} req/s`)
    report('  templated backends alive afterwards', `${state.backends.length}`, '≤ 256')
    report('  resident memory before → after', `${rssBefore.toFixed(0)} → ${rssMb(gateway.pid as number).toFixed(0)} MB`)
    report('  DNS queries (one per new env name)', `${dns.queries.length}`)
  } finally {
    gateway.kill('SIGTERM')
    await dns.stop()
  }
}

function rssMb (pid: number): number {
  return Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? NaN) / 1024
}
