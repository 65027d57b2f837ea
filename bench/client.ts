/**
 * srvgate/client beside plain undici, in one process and one run: the same
 * instance (bench/backend.mjs, its own process), the same concurrency, CPU
 * of this process per request (process.cpuUsage), interleaved rounds, the
 * median printed. Then the DNS queries the client sent per second while under
 * load: set by TTLs (ttl.min 1s here), not by the request rate.
 */
import { spawn } from 'node:child_process'
import { Pool, request } from 'undici'
import { createClient } from '../src/client/client.js'
import { ConsulLikeDnsServer } from '../test/helpers/dns-server.js'

const REQUESTS = Number(process.env.BENCH_CLIENT_REQUESTS ?? 20_000)
const ROUNDS = 5
const CONCURRENCY = 16

type Round = { readonly cpuUsPerRequest: number, readonly requestsPerSecond: number }

async function round (send: () => Promise<void>): Promise<Round> {
  let left = REQUESTS
  const started = performance.now()
  const cpu = process.cpuUsage()
  await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
    while (left-- > 0) await send()
  }))
  const used = process.cpuUsage(cpu)
  const seconds = (performance.now() - started) / 1000
  return { cpuUsPerRequest: (used.user + used.system) / REQUESTS, requestsPerSecond: REQUESTS / seconds }
}

const median = (values: number[]): number => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] as number

export async function clientSection (report: (name: string, value: string, target?: string) => void): Promise<void> {
  console.log(`\n## client (srvgate/client vs undici to the same instance: ${REQUESTS} requests × ${ROUNDS} interleaved rounds, ${CONCURRENCY} in flight, median)`)
  const backend = spawn(process.execPath, ['bench/backend.mjs'], { stdio: ['ignore', 'pipe', 'inherit'] })
  const dns = await ConsulLikeDnsServer.start(undefined)
  try {
    const port = await new Promise<number>((resolve) => backend.stdout?.once('data', (chunk: Buffer) => { resolve((JSON.parse(chunk.toString()) as { port: number }).port) }))
    dns.setService('_web._prod.service.consul', [{ address: '127.0.0.1', port }])
    const pool = new Pool(`http://127.0.0.1:${port}`, { connections: CONCURRENCY })
    const client = createClient({
      resolvers: { consul: { nameservers: [dns.address], ttl: { min: '1s', max: '30s' } } },
      services: { web: { discovery: { resolver: 'consul', srv: '_web._prod.service.consul' }, maxConnectionsPerInstance: CONCURRENCY } }
    })
    await client.ready()
    const plain = async (): Promise<void> => { await (await request(`http://127.0.0.1:${port}/`, { dispatcher: pool })).body.dump() }
    const through = async (): Promise<void> => { await (await client.request('http://web/')).body.dump() }
    // Warm both (JIT, connections) before measuring.
    await round(plain)
    await round(through)
    const plainRounds: Round[] = []
    const clientRounds: Round[] = []
    const queriesBefore = dns.queries.length
    const loadStarted = performance.now()
    let clientSeconds = 0
    for (let index = 0; index < ROUNDS; index++) {
      plainRounds.push(await round(plain))
      const started = performance.now()
      clientRounds.push(await round(through))
      clientSeconds += (performance.now() - started) / 1000
    }
    const queries = dns.queries.length - queriesBefore
    const plainCpu = median(plainRounds.map((entry) => entry.cpuUsPerRequest))
    const clientCpu = median(clientRounds.map((entry) => entry.cpuUsPerRequest))
    report('undici request → instance: CPU per request', `${plainCpu.toFixed(1)} µs`)
    report('srvgate/client request → same instance: CPU per request', `${clientCpu.toFixed(1)} µs`, 'within 10 µs of undici')
    report('srvgate/client: CPU added per request', `${(clientCpu - plainCpu).toFixed(1)} µs`, '< 10 µs')
    report('undici: requests per second', median(plainRounds.map((entry) => entry.requestsPerSecond)).toFixed(0))
    report('srvgate/client: requests per second', median(clientRounds.map((entry) => entry.requestsPerSecond)).toFixed(0))
    const elapsed = (performance.now() - loadStarted) / 1000
    report(`DNS queries per second during the load (${(REQUESTS * ROUNDS / clientSeconds).toFixed(0)} client req/s)`, (queries / elapsed).toFixed(2), 'set by TTLs (ttl.min 1s), not by requests')
    await client.close()
    await pool.close()
  } finally {
    backend.kill('SIGTERM')
    await dns.stop()
  }
}
