/**
 * `npm run bench -- grpc`: HTTP/2 and gRPC to instances (issue 24), from
 * outside, one worker, interleaved rounds:
 * - gRPC unary calls (@grpc/grpc-js both sides, 64 in flight): straight to
 *   the instance, and through srvgate over h2c on listen.http to an h2c
 *   backend; calls a second and p50/p99;
 * - HTTP/1.1 clients (wrk -c64, keep-alive) to the same tiny answer from an
 *   HTTP/1.1 instance (undici's pool) and from an HTTP/2 one (h2-pool.ts);
 * - new HTTP/1.1 connections (wrk, `Connection: close`) with listen.h2c on
 *   and off: what reading a connection's first bytes costs.
 */
import { spawnSync } from 'node:child_process'
import http2 from 'node:http2'
import { createServer } from 'node:http'
import * as grpc from '@grpc/grpc-js'
import { ConsulLikeDnsServer } from '../test/helpers/dns-server.js'
import { EchoClient, TEST_SERVICE, type EchoClientType } from '../test/helpers/grpc.js'
import { spawnBenchGateway, type BenchGateway } from './spawn-gateway.js'
import { wrk } from './wrk.js'

type Report = (name: string, value: string, target?: string) => void

const CALLS = 20_000
const IN_FLIGHT = 64
const ROUNDS = 2

export async function grpcSection (report: Report): Promise<void> {
  console.log('\n## HTTP/2 and gRPC to instances (one worker; medians of interleaved rounds)')
  const dns = await ConsulLikeDnsServer.start(undefined)
  const grpcServer = new grpc.Server()
  const reply = Buffer.from('ok')
  grpcServer.addService(TEST_SERVICE, {
    echo: (_call: unknown, callback: grpc.sendUnaryData<Buffer>) => { callback(null, reply) },
    fail: () => {},
    hang: () => {},
    download: () => {},
    upload: () => {},
    chat: () => {}
  })
  const grpcPort = await new Promise<number>((resolve, reject) => {
    grpcServer.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (error, port) => { if (error === null) resolve(port); else reject(error) })
  })
  const body = JSON.stringify({ ok: true })
  const h1 = createServer((request, response) => { request.resume(); response.writeHead(200, { 'content-type': 'application/json', 'content-length': body.length }); response.end(body) })
  const h2 = http2.createServer((request, response) => { request.resume(); response.writeHead(200, { 'content-type': 'application/json', 'content-length': body.length }); response.end(body) })
  for (const server of [h1, h2]) await new Promise<void>((resolve) => { server.listen(0, '127.0.0.1', resolve) })
  dns.setService('_grpc._tcp.service.consul', [{ address: '127.0.0.1', port: grpcPort }])
  dns.setService('_h1._tcp.service.consul', [{ address: '127.0.0.1', port: (h1.address() as { port: number }).port }])
  dns.setService('_h2._tcp.service.consul', [{ address: '127.0.0.1', port: (h2.address() as { port: number }).port }])
  const config = `
workers: 1
accessLog: { format: json }
resolvers: { consul: { nameservers: ["${dns.address}"] } }
backends:
  grpc: { protocol: h2c, discovery: { resolver: consul, srv: _grpc._tcp.service.consul } }
  h1: { discovery: { resolver: consul, srv: _h1._tcp.service.consul } }
  h2: { protocol: h2c, discovery: { resolver: consul, srv: _h2._tcp.service.consul } }
frontends:
  - { name: grpc, match: { host: grpc.bench }, backend: grpc }
  - { name: h1, match: { host: h1.bench }, backend: h1 }
  - { name: h2, match: { host: h2.bench }, backend: h2 }
`
  const on = await spawnBenchGateway('grpc-on', config)
  const off = await spawnBenchGateway('grpc-off', config, ', h2c: false')
  try {
    await expectH2c(on, true)
    await expectH2c(off, false)
    const direct: number[][] = []
    const through: number[][] = []
    for (let round = 0; round < ROUNDS; round++) {
      direct.push(await unaryLoad(`127.0.0.1:${grpcPort}`, 'grpc.bench'))
      through.push(await unaryLoad(`127.0.0.1:${on.port}`, 'grpc.bench'))
    }
    for (const [name, rows] of [['gRPC unary straight to the instance', direct], ['gRPC unary through srvgate (h2c in, h2c out)', through]] as const) {
      const [rate = 0, p50 = 0, p99 = 0] = medians(rows)
      report(name, `${rate.toFixed(0)} calls/s, p50 ${p50.toFixed(2)} ms, p99 ${p99.toFixed(2)} ms`)
    }
    if (!has('wrk')) {
      console.log('grpc: wrk not found (apt-get install wrk): the HTTP/1.1 rows are left out')
      return
    }
    const rows: Record<string, number[]> = { h1: [], h2: [], closeOn: [], closeOff: [] }
    for (let round = 0; round < ROUNDS; round++) {
      rows.h1?.push((await wrk(`http://127.0.0.1:${on.port}/`, { threads: 2, connections: 64, seconds: 5, host: 'h1.bench' })).requestsPerSecond)
      rows.h2?.push((await wrk(`http://127.0.0.1:${on.port}/`, { threads: 2, connections: 64, seconds: 5, host: 'h2.bench' })).requestsPerSecond)
      rows.closeOn?.push((await wrk(`http://127.0.0.1:${on.port}/`, { threads: 2, connections: 16, seconds: 5, host: 'h1.bench', extraHeaders: ['Connection: close'] })).requestsPerSecond)
      rows.closeOff?.push((await wrk(`http://127.0.0.1:${off.port}/`, { threads: 2, connections: 16, seconds: 5, host: 'h1.bench', extraHeaders: ['Connection: close'] })).requestsPerSecond)
    }
    report('HTTP/1.1 clients, HTTP/1.1 instance (undici Pool), req/s', median(rows.h1 ?? []).toFixed(0))
    report('HTTP/1.1 clients, HTTP/2 instance (h2-pool.ts), req/s', median(rows.h2 ?? []).toFixed(0))
    report('new HTTP/1.1 connections (Connection: close), listen.h2c on, req/s', median(rows.closeOn ?? []).toFixed(0))
    report('new HTTP/1.1 connections (Connection: close), listen.h2c off, req/s', median(rows.closeOff ?? []).toFixed(0))
  } finally {
    for (const gateway of [on, off]) gateway.child.kill('SIGTERM')
    grpcServer.forceShutdown()
    h1.close()
    h2.close()
    await dns.stop()
  }
}

/** The gateway speaks h2c on listen.http, or not, as its file says. */
async function expectH2c (gateway: BenchGateway, expected: boolean): Promise<void> {
  const session = http2.connect(`http://127.0.0.1:${gateway.port}`)
  const isOn = await new Promise<boolean>((resolve) => {
    session.once('remoteSettings', () => { resolve(true) })
    session.once('error', () => { resolve(false) })
    session.once('close', () => { resolve(false) })
    setTimeout(() => { resolve(false) }, 2000).unref()
  })
  session.destroy()
  if (isOn !== expected) throw new Error(`grpc bench: listen.h2c is ${String(isOn)}, expected ${String(expected)}`)
}

/** CALLS unary calls, IN_FLIGHT at a time, over one channel: [calls/s, p50 ms, p99 ms]. */
async function unaryLoad (target: string, authority: string): Promise<number[]> {
  const client = new EchoClient(target, grpc.credentials.createInsecure(), { 'grpc.default_authority': authority }) as EchoClientType
  const latencies: number[] = []
  let sent = 0
  const started = performance.now()
  const one = async (): Promise<void> => {
    while (sent < CALLS) {
      sent++
      const before = performance.now()
      await new Promise<void>((resolve, reject) => {
        client.echo?.(Buffer.from('bench'), (error: Error | null) => { if (error === null) resolve(); else reject(error) })
      })
      latencies.push(performance.now() - before)
    }
  }
  await Promise.all(Array.from({ length: IN_FLIGHT }, one))
  const seconds = (performance.now() - started) / 1000
  client.close()
  latencies.sort((a, b) => a - b)
  return [CALLS / seconds, latencies[Math.floor(latencies.length * 0.5)] ?? 0, latencies[Math.floor(latencies.length * 0.99)] ?? 0]
}

function medians (rows: number[][]): number[] {
  return (rows[0] ?? []).map((_, column) => median(rows.map((row) => row[column] ?? 0)))
}

function median (values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.floor(sorted.length / 2)] ?? 0
}

function has (command: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${command}`]).status === 0
}
