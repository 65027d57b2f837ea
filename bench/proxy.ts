/**
 * Proxy throughput and latency: straight to a backend vs through srvgate, in
 * one run, with the gateway's CPU time per request. Load comes from wrk
 * (Debian package `wrk`) in its own process; each server runs in its own
 * process. On a 2-core machine all three share the cores: compare the two
 * rows with each other, not with other machines.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { cpuMs, rssKb, wrk as wrkRun, type WrkResult } from './wrk.js'
import { profileLayers } from './profile-layers.js'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ConsulLikeDnsServer, freePort } from '../test/helpers/dns-server.js'

const wrk = async (url: string, seconds: number): Promise<WrkResult> => await wrkRun(url, { threads: 1, connections: CONNECTIONS, seconds, host: 'www.example.com' })

const DURATION_S = Number(process.env.BENCH_SECONDS ?? 10)
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 50)

export async function proxySection (report: (name: string, value: string, target?: string) => void): Promise<void> {
  console.log(`\n## proxy (wrk -t1 -c${CONNECTIONS} -d${DURATION_S}s, tiny JSON, keep-alive)`)
  if (spawnSync('wrk', ['--version']).error !== undefined) {
    console.log('wrk not found: apt-get install wrk, then npm run bench again')
    return
  }
  const children: ChildProcess[] = []
  const dns = await ConsulLikeDnsServer.start(undefined)
  try {
    const backend = spawn(process.execPath, ['bench/backend.mjs'], { stdio: ['ignore', 'pipe', 'inherit'] })
    children.push(backend)
    const backendPort = await new Promise<number>((resolve) => backend.stdout?.once('data', (chunk: Buffer) => resolve((JSON.parse(chunk.toString()) as { port: number }).port)))
    dns.setService('_web._prod.service.consul', [{ address: '127.0.0.1', port: backendPort }])
    const gatewayPort = await freePort()
    const dir = mkdtempSync(join(tmpdir(), 'srvgate-bench-'))
    writeFileSync(join(dir, 'gateway.yaml'), `
listen: { http: "127.0.0.1:${gatewayPort}" }
workers: 1
resolvers: { consul: { nameservers: ["${dns.address}"] } }
backends: { web: { discovery: { resolver: consul, srv: _web._prod.service.consul } } }
frontends: [ { name: all, match: { host: www.example.com }, backend: web } ]
`)
    // BENCH_CPU_PROF=DIR writes a V8 CPU profile of the gateway there (node --cpu-prof), to read before optimising.
    const profile = process.env.BENCH_CPU_PROF === undefined ? [] : ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_CPU_PROF}`]
    const gateway = spawn(process.execPath, [...profile, 'dist/main.js', 'run', '-c', join(dir, 'gateway.yaml'), '--log-level', process.env.BENCH_LOG_LEVEL ?? 'warn'], { stdio: ['ignore', 'ignore', 'inherit'] })
    children.push(gateway)
    await waitForPort(gatewayPort)

    await wrk(`http://127.0.0.1:${backendPort}/`, 2) // warm-up
    const direct = await wrk(`http://127.0.0.1:${backendPort}/`, DURATION_S)
    await wrk(`http://127.0.0.1:${gatewayPort}/`, 2)
    const queriesBefore = dns.queries.length
    const cpuBefore = cpuMs(gateway.pid as number)
    const proxied = await wrk(`http://127.0.0.1:${gatewayPort}/`, DURATION_S)
    const cpuUsed = cpuMs(gateway.pid as number) - cpuBefore

    const row = (result: WrkResult) => `${result.requestsPerSecond.toFixed(0).padStart(7)} req/s  p50 ${result.p50Ms.toFixed(2)} ms  p99 ${result.p99Ms.toFixed(2)} ms  errors ${result.errors}`
    report('straight to the backend', row(direct))
    report('through srvgate', row(proxied))
    report('  srvgate CPU per request', `${(cpuUsed * 1000 / Math.max(proxied.requests, 1)).toFixed(0)} µs`)
    report(`  DNS queries in the ${DURATION_S} s run (per TTL, not per request)`, `${dns.queries.length - queriesBefore}`)
    report('  srvgate resident memory after the run', `${(rssKb(gateway.pid as number) / 1024).toFixed(0)} MB`)
  } finally {
    const exits = children.map(async (child) => { await new Promise((resolve) => { if (child.exitCode !== null) resolve(null); else child.once('exit', resolve) }) })
    for (const child of children) child.kill('SIGTERM')
    await Promise.all(exits)
    await dns.stop()
  }
  const profileDir = process.env.BENCH_CPU_PROF
  const layers = profileDir === undefined ? undefined : profileLayers(profileDir)
  if (layers !== undefined) {
    console.log('  where the gateway\'s busy CPU went (V8 profile, by layer):')
    for (const [layer, share] of layers) report(`    ${layer}`, `${(share * 100).toFixed(1)}%`)
  }
}

async function waitForPort (port: number): Promise<void> {
  const deadline = Date.now() + 15_000
  while (Date.now() < deadline) {
    try {
      const response = await fetch(`http://127.0.0.1:${port}/`)
      await response.arrayBuffer()
      return
    } catch {
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
  }
  throw new Error(`gateway did not listen on ${port}`)
}
