/**
 * What tracing costs a request: srvgate with tracing off, on but sampling
 * none (sampleRatio 0: every request still carries a traceparent to its
 * instance), and sampling all (a SERVER and a CLIENT span a request, exported
 * over OTLP/protobuf to a receiver in this process that reads and answers
 * exports without decoding them, so it takes little of the box). Load is
 * paced (hey at a fixed rate below capacity): the gateway's CPU a request at
 * a fixed rate moves far less with the box's noise than req/s at
 * saturation. Rows interleaved, three rounds, medians.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { ConsulLikeDnsServer } from '../test/helpers/dns-server.js'
import { OtlpReceiver } from '../test/helpers/otlp/receiver.js'
import { spawnBenchGateway } from './spawn-gateway.js'
import { hey } from './hey.js'
import { cpuMsOfTree } from './wrk.js'
import { Tracing } from '../src/tracing/tracing.js'
import { systemClock } from '../src/util/clock.js'

const SECONDS = Number(process.env.BENCH_SECONDS ?? 8)
const RATE = Number(process.env.BENCH_TRACING_RATE ?? 2000)
const ROUNDS = 3
const ROWS = [
  { name: 'tracing off', tracing: '', target: '' },
  { name: 'tracing on, sampleRatio 0', tracing: 'sampleRatio: 0', target: '≤ 2 µs' },
  { name: 'tracing on, sampleRatio 1 (all exported)', tracing: 'sampleRatio: 1', target: '≤ 15 µs' }
] as const

/** A collector that reads each export and answers 200, in its own process (its CPU is not this process's). */
async function sinkCollector (): Promise<{ readonly url: string, readonly child: ChildProcess }> {
  const child = spawn(process.execPath, ['-e', "const s=require('http').createServer((q,r)=>{q.resume();q.on('end',()=>r.end())});s.listen(0,'127.0.0.1',()=>process.stdout.write(String(s.address().port)+'\\n'))"], { stdio: ['ignore', 'pipe', 'inherit'] })
  const port = await new Promise<string>((resolve) => child.stdout?.once('data', (chunk: Buffer) => { resolve(chunk.toString().trim()) }))
  return { url: `http://127.0.0.1:${port}/v1/traces`, child }
}

/**
 * Tracing's own CPU a request, in this process: a request's trace started,
 * routed, one attempt, ended, and its spans batched, encoded (OTLP protobuf)
 * and posted to a collector, for `count` requests; the batches are flushed
 * before the clock stops. What tracing adds to a request, without the
 * noise of a whole gateway under load.
 */
async function ownCost (sampleRatio: number, url: string, count: number): Promise<{ readonly cpuUs: number, readonly exported: number, readonly dropped: number }> {
  const spans = { exported: 0, dropped: 0 }
  const events = { exported: (n: number) => { spans.exported += n }, dropped: (_reason: string, n: number) => { spans.dropped += n } }
  const tracing = new Tracing({ endpoint: url, protocol: 'http/protobuf', headers: {}, timeoutMs: 10_000 as never, isGzipped: false, sampleRatio, serviceName: 'bench', resourceAttributes: {}, restartAtEdge: false }, events, systemClock, { OTEL_BSP_MAX_QUEUE_SIZE: '20000', OTEL_BSP_SCHEDULE_DELAY: '200' })
  const instance = { address: '127.0.0.1', port: 8080, key: '127.0.0.1:8080' } as never
  const decision = { frontend: { name: 'www', match: { pathPrefix: '/api/' } }, index: 0, env: undefined } as never
  const headers = { host: 'www.example.com', 'user-agent': 'bench', accept: '*/*', 'x-request-id': 'abc' }
  const facts = { status: 200, path: '/api/items', host: 'www.example.com', clientIp: '127.0.0.1', backend: 'web', split: undefined, failoverTarget: undefined, retries: 0, errorCode: undefined, isUpgrade: false }
  const before = process.cpuUsage()
  for (let done = 0; done < count; done += 200) {
    for (let index = 0; index < 200; index++) {
      const trace = tracing.startRequest(headers, 'GET', false, systemClock.now())
      trace.routed(decision)
      const { span } = trace.attempt('web', instance, 1, headers)
      if (span !== undefined) trace.attemptEnded(span, 'success', 200, false)
      trace.end(facts)
    }
    // The event loop turns as a gateway's does: batches leave while requests go on.
    await new Promise((resolve) => setImmediate(resolve))
  }
  // What is still queued leaves now (shutdown flushes); a failed export shows as dropped spans.
  await tracing.shutdown().catch(() => {})
  const used = process.cpuUsage(before)
  return { cpuUs: (used.user + used.system) / count, ...spans }
}

export async function tracingSection (report: (name: string, value: string, target?: string) => void): Promise<void> {
  console.log('\n## tracing, its own work (in this process: 100,000 requests, one attempt each, spans encoded and posted to a collector in another process)')
  const sink = await sinkCollector()
  try {
    await ownCost(1, sink.url, 20_000)
    for (const [ratio, target] of [[0, '≤ 2 µs'], [1, '≤ 15 µs']] as const) {
      const runs = [await ownCost(ratio, sink.url, 100_000), await ownCost(ratio, sink.url, 100_000), await ownCost(ratio, sink.url, 100_000)]
      report(`sampleRatio ${ratio}: CPU a request (best of 3)`, `${Math.min(...runs.map((run) => run.cpuUs)).toFixed(2)} µs (${runs.map((run) => run.cpuUs.toFixed(2)).join(', ')})`, target)
      report(`sampleRatio ${ratio}: spans exported / dropped (last run)`, `${runs[2]?.exported ?? 0} / ${runs[2]?.dropped ?? 0}`)
    }
  } finally {
    sink.child.kill('SIGTERM')
  }
  console.log(`\n## tracing (hey at ${RATE} req/s, 20 connections, ${SECONDS}s, through srvgate in 1 process; off / unsampled / all sampled, interleaved, ${ROUNDS} rounds)`)
  if (spawnSync('hey', ['-h']).error !== undefined) {
    console.log('hey not found: apt-get install hey, then npm run bench again')
    return
  }
  const dns = await ConsulLikeDnsServer.start(undefined)
  const receiver = await OtlpReceiver.start(undefined)
  receiver.isDecoding = false
  const backend: ChildProcess = spawn(process.execPath, ['bench/backend.mjs'], { stdio: ['ignore', 'pipe', 'inherit'] })
  try {
    const backendPort = await new Promise<number>((resolve) => backend.stdout?.once('data', (chunk: Buffer) => { resolve((JSON.parse(chunk.toString()) as { port: number }).port) }))
    dns.setService('_web._prod.service.consul', [{ address: '127.0.0.1', port: backendPort }])
    const figures = new Map<string, Array<{ readonly cpuUs: number, readonly p50: number, readonly p99: number }>>()
    for (let round = 0; round < ROUNDS; round++) {
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
          await hey(url, { ratePerSecond: RATE, connections: 20, seconds: 2, host: 'www.example.com' })
          const before = cpuMsOfTree(gateway.child.pid as number)
          const result = await hey(url, { ratePerSecond: RATE, connections: 20, seconds: SECONDS, host: 'www.example.com' })
          const cpuUs = (cpuMsOfTree(gateway.child.pid as number) - before) * 1000 / Math.max(1, result.requestsPerSecond * SECONDS)
          figures.set(row.name, [...(figures.get(row.name) ?? []), { cpuUs, p50: result.p50Ms, p99: result.p99Ms }])
        } finally {
          gateway.child.kill('SIGTERM')
          await new Promise((resolve) => { gateway.child.once('exit', resolve) })
        }
      }
    }
    const median = (values: readonly number[]): number => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] ?? NaN
    const off = median((figures.get(ROWS[0].name) ?? []).map((figure) => figure.cpuUs))
    for (const row of ROWS) {
      const runs = figures.get(row.name) ?? []
      const cpu = median(runs.map((run) => run.cpuUs))
      report(`${row.name}: CPU a request (median of runs)`, `${cpu.toFixed(1)} µs (${runs.map((run) => run.cpuUs.toFixed(1)).join(', ')})`)
      report(`${row.name}: p50 / p99 (median)`, `${median(runs.map((run) => run.p50)).toFixed(2)} / ${median(runs.map((run) => run.p99)).toFixed(2)} ms`)
      if (row.target !== '') report(`${row.name}: over tracing off`, `${(cpu - off).toFixed(1)} µs`, row.target)
    }
    report('OTLP bytes the receiver was sent', `${(receiver.bytes / 1e6).toFixed(1)} MB in ${receiver.requests.length} exports`)
  } finally {
    backend.kill('SIGTERM')
    await receiver.stop()
    await dns.stop()
  }
}
