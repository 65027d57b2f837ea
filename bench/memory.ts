/**
 * Memory at scale: 1,000 backends × 10 instances each (SRV answers from the
 * Consul-like test DNS server), with 1 and 2 workers; resident memory of
 * every process, idle once warm and after a load across 100 of the hosts.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ConsulLikeDnsServer, freePort } from '../test/helpers/dns-server.js'
import { send } from '../test/helpers/http.js'
import { processTree, rssKb, wrk } from './wrk.js'

const BACKENDS = 1000
const INSTANCES = 10

export async function memorySection (report: (name: string, value: string, target?: string) => void): Promise<void> {
  console.log(`\n## memory (${BACKENDS} backends × ${INSTANCES} instances, SRV answers from the test DNS server)`)
  const dns = await ConsulLikeDnsServer.start(undefined)
  const backend = spawn(process.execPath, ['bench/backend.mjs'], { stdio: ['ignore', 'pipe', 'inherit'] })
  try {
    const backendPort = await new Promise<number>((resolve) => backend.stdout?.once('data', (chunk: Buffer) => resolve((JSON.parse(chunk.toString()) as { port: number }).port)))
    // Ten instances per service; one really answers (the others are never picked by the load below: weight 0 is not allowed, so they sit at a higher priority).
    for (let index = 0; index < BACKENDS; index++) {
      dns.setService(`_svc${index}._prod.service.consul`, Array.from({ length: INSTANCES }, (_, instance) => ({ address: `10.9.${index >> 8}.${index & 255}`, port: 9000 + instance, priority: 2 })).concat([{ address: '127.0.0.1', port: backendPort, priority: 1 }]).slice(-INSTANCES))
    }
    for (const workers of [1, 2]) {
      const port = await freePort()
      const adminPort = await freePort()
      const dir = mkdtempSync(join(tmpdir(), 'srvgate-memory-'))
      writeFileSync(join(dir, 'gateway.yaml'), `
listen: { http: "127.0.0.1:${port}", admin: "127.0.0.1:${adminPort}" }
workers: ${workers}
drain: { delay: 0s, timeout: 5s }
resolvers: { consul: { nameservers: ["${dns.address}"], ttl: { min: 5s, max: 30s } } }
backends:
${Array.from({ length: BACKENDS }, (_, index) => `  svc${index}: { discovery: { resolver: consul, srv: _svc${index}._prod.service.consul } }`).join('\n')}
frontends:
${Array.from({ length: BACKENDS }, (_, index) => `  - { name: svc${index}, match: { host: svc${index}.example.com }, backend: svc${index} }`).join('\n')}
`)
      const gateway: ChildProcess = spawn(process.execPath, ['dist/main.js', 'run', '-c', join(dir, 'gateway.yaml'), '--log-level', 'warn'], { stdio: 'ignore' })
      try {
        for (let attempt = 0; attempt < 300; attempt++) {
          try { if ((await send(`http://127.0.0.1:${adminPort}/readyz`, { agent: false })).status === 200) break } catch {}
          await new Promise((resolve) => setTimeout(resolve, 100))
        }
        await new Promise((resolve) => setTimeout(resolve, 3000))
        const idle = rssOf(gateway.pid as number)
        for (let host = 0; host < 100; host += 10) await wrk(`http://127.0.0.1:${port}/`, { threads: 1, connections: 20, seconds: 1, host: `svc${host}.example.com` })
        const loaded = rssOf(gateway.pid as number)
        const row = (figures: number[]): string => `total ${(figures.reduce((sum, value) => sum + value, 0) / 1024).toFixed(0)} MB (${figures.map((value) => (value / 1024).toFixed(0)).join(' + ')})`
        report(`${workers} worker${workers === 1 ? '' : 's'}: resident, idle (primary + workers)`, row(idle))
        report(`${workers} worker${workers === 1 ? '' : 's'}: resident, after load on 10 hosts`, row(loaded))
      } finally {
        await new Promise((resolve) => { gateway.once('exit', resolve); gateway.kill('SIGTERM') })
      }
    }
  } finally {
    backend.kill('SIGTERM')
    await dns.stop()
  }
}

function rssOf (pid: number): number[] {
  return processTree(pid).map(rssKb).filter((value) => Number.isFinite(value))
}
