/**
 * What tracing costs a request: srvgate with tracing off, on but sampling
 * none (sampleRatio 0: every request still carries a traceparent to its
 * instance), and sampling all (a SERVER and a CLIENT span a request, exported
 * over OTLP/protobuf to a real receiver in this process). Rows interleaved,
 * twice each; the gateway's CPU a request (its process tree) is the figure
 * this box measures best, req/s beside it.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { ConsulLikeDnsServer } from '../test/helpers/dns-server.js'
import { OtlpReceiver } from '../test/helpers/otlp/receiver.js'
import { spawnBenchGateway } from './spawn-gateway.js'
import { cpuMsOfTree, wrk } from './wrk.js'

const SECONDS = Number(process.env.BENCH_SECONDS ?? 8)
const ROWS = [
  { name: 'tracing off', tracing: '' },
  { name: 'tracing on, sampleRatio 0', tracing: 'sampleRatio: 0' },
  { name: 'tracing on, sampleRatio 1 (all exported)', tracing: 'sampleRatio: 1' }
] as const

export async function tracingSection (report: (name: string, value: string, target?: string) => void): Promise<void> {
  console.log(`\n## tracing (wrk -t1 -c50 -d${SECONDS}s through srvgate, 1 process; off / unsampled / all sampled, interleaved twice)`)
  if (spawnSync('wrk', ['--version']).error !== undefined) {
    console.log('wrk not found: apt-get install wrk, then npm run bench again')
    return
  }
  const dns = await ConsulLikeDnsServer.start(undefined)
  const receiver = await OtlpReceiver.start(undefined)
  const backend: ChildProcess = spawn(process.execPath, ['bench/backend.mjs'], { stdio: ['ignore', 'pipe', 'inherit'] })
  try {
    const backendPort = await new Promise<number>((resolve) => backend.stdout?.once('data', (chunk: Buffer) => { resolve((JSON.parse(chunk.toString()) as { port: number }).port) }))
    dns.setService('_web._prod.service.consul', [{ address: '127.0.0.1', port: backendPort }])
    const figures = new Map<string, Array<{ readonly cpuUs: number, readonly rps: number }>>()
    for (let round = 0; round < 2; round++) {
      for (const row of ROWS) {
        const gateway = await spawnBenchGateway('tracing', `
workers: 1
resolvers: { consul: { nameservers: ["${dns.address}"] } }
backends: { web: { discovery: { resolver: consul, srv: _web._prod.service.consul } } }
frontends: [ { name: all, match: {}, backend: web } ]
${row.tracing === '' ? '' : `tracing: { otlp: { endpoint: "${receiver.url}" }, ${row.tracing} }`}
`)
        try {
          const url = `http://127.0.0.1:${gateway.port}/`
          await wrk(url, { threads: 1, connections: 50, seconds: 2, host: 'www.example.com' })
          const before = cpuMsOfTree(gateway.child.pid as number)
          const result = await wrk(url, { threads: 1, connections: 50, seconds: SECONDS, host: 'www.example.com' })
          const cpuUs = (cpuMsOfTree(gateway.child.pid as number) - before) * 1000 / Math.max(1, result.requests)
          figures.set(row.name, [...(figures.get(row.name) ?? []), { cpuUs, rps: result.requestsPerSecond }])
        } finally {
          gateway.child.kill('SIGTERM')
          await new Promise((resolve) => { gateway.child.once('exit', resolve) })
        }
      }
    }
    const mean = (values: readonly number[]): number => values.reduce((sum, value) => sum + value, 0) / Math.max(1, values.length)
    const off = mean((figures.get(ROWS[0].name) ?? []).map((figure) => figure.cpuUs))
    for (const row of ROWS) {
      const runs = figures.get(row.name) ?? []
      const cpu = mean(runs.map((run) => run.cpuUs))
      report(`${row.name}: CPU a request (runs)`, `${cpu.toFixed(1)} µs (${runs.map((run) => run.cpuUs.toFixed(1)).join(', ')})`)
      report(`${row.name}: req/s (runs)`, runs.map((run) => run.rps.toFixed(0)).join(', '))
      if (row !== ROWS[0]) report(`${row.name}: over tracing off`, `${(cpu - off).toFixed(1)} µs`, row.tracing === 'sampleRatio: 0' ? '≤ 2 µs' : '≤ 15 µs')
    }
    report('spans the receiver decoded', String(receiver.spans.length))
  } finally {
    backend.kill('SIGTERM')
    await receiver.stop()
    await dns.stop()
  }
}
