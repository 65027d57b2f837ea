/**
 * The DNS face beside BIND9 in one run: BIND serves a zone file holding the
 * same names (web A × N, _web._tcp SRV × N), srvgate's face answers them from
 * the instances it discovered (SRV records in that same BIND). Both are
 * loaded by dnsperf from Debian (installed here if missing; else a bounded
 * Node load loop), A and SRV queries mixed, EDNS0 on (neither truncates).
 * Beside them, the floor: bare node:dgram processes echoing each query
 * (bench/dns-floor.mjs), what a face on Node could reach if its own work
 * cost nothing.
 */
import { fork, spawnSync, type ChildProcess } from 'node:child_process'
import { createSocket } from 'node:dgram'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Packet } from 'dns2'
import { BindServer, ZONE } from '../test/helpers/bind-server.js'
import { freePort } from '../test/helpers/dns-server.js'
import { spawnBenchGateway } from './spawn-gateway.js'
import { cpuMsOfTree } from './wrk.js'

const SECONDS = Number(process.env.BENCH_SECONDS ?? 10)
const INSTANCES = 8
const QUERIES = [`web.${ZONE} A`, `_web._tcp.${ZONE} SRV`]

type Figures = { readonly qps: number, readonly latencyMs: number, readonly lost: number }
/** Latency percentiles at a fixed rate (dnsperf -Q, each query's time from -v). */
type Paced = { readonly p50: number, readonly p90: number, readonly p99: number, readonly answered: number }

/** A rate below every contestant's capacity on a 2-core box: latency, not throughput, is what it shows. */
const PACED_QPS = Number(process.env.BENCH_DNS_PACED_QPS ?? 5000)

export async function dnsFaceSection (report: (name: string, value: string, target?: string) => void): Promise<void> {
  console.log(`\n## dns-face (${QUERIES.join(' + ')}, ${INSTANCES} instances, ${SECONDS}s each, EDNS0; BIND9 from a zone file beside srvgate's face, 1 and 2 threads / workers; then p50/p90/p99 at ${PACED_QPS} q/s)`)
  if (!has('dnsperf')) {
    console.log('dns-face: installing dnsperf (apt-get)')
    spawnSync('apt-get', ['install', '-y', '-q', 'dnsperf'], { stdio: 'ignore', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' }, timeout: 300_000 })
  }
  if (!has('/usr/sbin/named')) {
    console.log('dns-face: named (bind9) is needed: apt-get install bind9')
    return
  }
  const records = Array.from({ length: INSTANCES }, (_, index) => [
    `web 5 IN A 10.9.0.${index + 1}`,
    `_web._tcp 5 IN SRV 1 1 ${8000 + index} i${index}.${ZONE}.`,
    `_svc._tcp 5 IN SRV 1 1 ${8000 + index} i${index}.${ZONE}.`,
    `i${index} 5 IN A 10.9.0.${index + 1}`
  ]).flat()
  const dir = mkdtempSync(join(tmpdir(), 'srvgate-dnsperf-'))
  const queryFile = join(dir, 'queries.txt')
  writeFileSync(queryFile, `${QUERIES.join('\n')}\n`)
  const tool = has('dnsperf') ? 'dnsperf' : 'a Node load loop (dnsperf not found)'
  // CPU a query, of the server's processes (its workers, BIND's threads): what the box's cores are shared by.
  const run = async (name: string, port: number, pids: readonly number[]): Promise<number> => {
    const cpu = (): number => pids.reduce((sum, pid) => sum + cpuMsOfTree(pid), 0)
    const before = cpu()
    const figures = has('dnsperf') ? dnsperf(port, queryFile) : await nodeLoop(port)
    const perQuery = (cpu() - before) * 1000 / Math.max(1, figures.qps * SECONDS)
    report(`${name}: queries/s (${tool})`, `${figures.qps.toFixed(0)} (${perQuery.toFixed(1)} µs CPU a query)`)
    report(`${name}: average latency at saturation`, `${figures.latencyMs.toFixed(3)} ms`)
    if (figures.lost > 0) report(`${name}: queries lost`, String(figures.lost))
    if (has('dnsperf')) {
      const pacedBefore = cpu()
      const paced = pacedDnsperf(port, queryFile)
      const pacedPerQuery = (cpu() - pacedBefore) * 1000 / Math.max(1, paced.answered)
      report(`${name}: p50 / p90 / p99 at ${PACED_QPS} q/s`, `${paced.p50.toFixed(3)} / ${paced.p90.toFixed(3)} / ${paced.p99.toFixed(3)} ms (${paced.answered} answered, ${pacedPerQuery.toFixed(1)} µs CPU a query)`)
    }
    return figures.qps
  }
  // One process each at a time, so none takes the others' cores: BIND with n threads, then srvgate with n workers.
  for (const parallel of [1, 2]) {
    const bind = await BindServer.start({ after: () => {} } as never, records, {}, { threads: parallel })
    let bindQps = 0
    try {
      bindQps = await run(`BIND9 (named -n ${parallel}, zone file)`, bind.port, [bind.pid])
      const facePort = await freePort()
      // The face asks this BIND for the instances; it then answers from memory (BIND idle meanwhile).
      const gateway = await spawnBenchGateway('dns-face', `
workers: ${parallel}
resolvers: { bind: { nameservers: ["${bind.address}"] } }
backends: { web: { discovery: { resolver: bind, srv: _svc._tcp.${ZONE} } } }
frontends: [ { name: all, match: {}, backend: web } ]
dns:
  listen: ["127.0.0.1:${facePort}"]
  zone: ${ZONE}
  names: { web: { backend: web } }
  rateLimit: { perSecond: 1000000, burst: 1000000, globalPerSecond: 1000000 }
`)
      try {
        const faceQps = await run(`srvgate DNS face (workers: ${parallel})`, facePort, [gateway.child.pid as number])
        report(`srvgate DNS face (workers: ${parallel}) / BIND9 (named -n ${parallel})`, `${(faceQps / Math.max(1, bindQps)).toFixed(2)}×`, '≥ 1.00×')
      } finally {
        gateway.child.kill('SIGTERM')
      }
      // What Node itself reaches with no DNS work at all: the most any face on node:dgram could.
      const floorPort = await freePort()
      const floors = await Promise.all(Array.from({ length: parallel }, async () => await startFloor(floorPort)))
      try {
        const floorQps = await run(`floor: bare node:dgram echo (${parallel} process${parallel === 1 ? '' : 'es'}, SO_REUSEPORT)`, floorPort, floors.map((floor) => floor.pid as number))
        report(`floor (${parallel}) / BIND9 (named -n ${parallel})`, `${(floorQps / Math.max(1, bindQps)).toFixed(2)}×`)
      } finally {
        for (const floor of floors) floor.kill('SIGTERM')
      }
    } finally {
      await bind.stop()
    }
  }
}

function dnsperf (port: number, queryFile: string): Figures {
  const result = spawnSync('dnsperf', ['-s', '127.0.0.1', '-p', String(port), '-d', queryFile, '-l', String(SECONDS), '-c', '4', '-e', '-q', '200'], { encoding: 'utf8', timeout: (SECONDS + 30) * 1000 })
  const out = result.stdout
  const number = (pattern: RegExp): number => Number(pattern.exec(out)?.[1] ?? 0)
  return { qps: number(/Queries per second:\s+([\d.]+)/), latencyMs: number(/Average Latency \(s\):\s+([\d.]+)/) * 1000, lost: number(/Queries lost:\s+(\d+)/) }
}

/** PACED_QPS for SECONDS with every query's time (-v): dnsperf itself prints only mean and deviation. */
function pacedDnsperf (port: number, queryFile: string): Paced {
  const result = spawnSync('dnsperf', ['-s', '127.0.0.1', '-p', String(port), '-d', queryFile, '-l', String(SECONDS), '-c', '4', '-e', '-Q', String(PACED_QPS), '-v'], { encoding: 'utf8', timeout: (SECONDS + 30) * 1000, maxBuffer: 256 * 1024 * 1024 })
  // "> NOERROR web.srvgate.internal A 0.000123": the last field is the query's latency in seconds.
  const latencies = result.stdout.split('\n').filter((line) => line.startsWith('> ')).map((line) => Number(line.slice(line.lastIndexOf(' ') + 1)) * 1000).filter(Number.isFinite).sort((a, b) => a - b)
  const at = (fraction: number): number => latencies[Math.min(latencies.length - 1, Math.floor(latencies.length * fraction))] ?? 0
  return { p50: at(0.5), p90: at(0.9), p99: at(0.99), answered: latencies.length }
}

/** 64 queries in flight over UDP from one socket, for SECONDS: answered per second, mean latency. */
async function nodeLoop (port: number): Promise<Figures> {
  const socket = createSocket('udp4')
  const sentAt = new Map<number, number>()
  let answered = 0
  let latencyTotal = 0
  let nextId = 0
  const deadline = Date.now() + SECONDS * 1000
  const send = (): void => {
    if (Date.now() >= deadline) return
    const id = nextId = (nextId + 1) & 0xffff
    const [name, type] = (QUERIES[id % QUERIES.length] as string).split(' ') as [string, 'A' | 'SRV']
    const query = new Packet()
    query.header.id = id
    query.questions.push(new Packet.Question(name, Packet.TYPE[type], Packet.CLASS.IN))
    sentAt.set(id, performance.now())
    socket.send(query.toBuffer() as Buffer, port, '127.0.0.1')
  }
  socket.on('message', (message) => {
    const id = message.readUInt16BE(0)
    const started = sentAt.get(id)
    if (started !== undefined) {
      sentAt.delete(id)
      answered++
      latencyTotal += performance.now() - started
    }
    send()
  })
  for (let index = 0; index < 64; index++) send()
  await new Promise((resolve) => setTimeout(resolve, SECONDS * 1000 + 500))
  socket.close()
  return { qps: answered / SECONDS, latencyMs: answered === 0 ? 0 : latencyTotal / answered, lost: sentAt.size }
}

/** One bench/dns-floor.mjs process, resolved once it listens (bounded: 10 s). */
async function startFloor (port: number): Promise<ChildProcess> {
  const child = fork('bench/dns-floor.mjs', [String(port)], { stdio: 'ignore' })
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => { reject(new Error('the DNS floor did not listen within 10 s')) }, 10_000)
    child.once('message', () => { clearTimeout(timer); resolve() })
    child.once('exit', (code) => { clearTimeout(timer); reject(new Error(`the DNS floor exited (${String(code)})`)) })
  })
  return child
}

function has (command: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${command}`]).status === 0
}
