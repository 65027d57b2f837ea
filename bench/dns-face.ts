/**
 * The DNS face beside BIND9 in one run: BIND serves a zone file holding the
 * same names (web A × N, _web._tcp SRV × N), srvgate's face answers them from
 * the instances it discovered (SRV records in that same BIND). Both are
 * loaded by dnsperf from Debian (installed here if missing; else a bounded
 * Node load loop), A and SRV queries mixed, EDNS0 on (neither truncates).
 */
import { spawnSync } from 'node:child_process'
import { createSocket } from 'node:dgram'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Packet } from 'dns2'
import { BindServer, ZONE } from '../test/helpers/bind-server.js'
import { freePort } from '../test/helpers/dns-server.js'
import { spawnBenchGateway } from './spawn-gateway.js'

const SECONDS = Number(process.env.BENCH_SECONDS ?? 10)
const INSTANCES = 8
const QUERIES = [`web.${ZONE} A`, `_web._tcp.${ZONE} SRV`]

type Figures = { readonly qps: number, readonly latencyMs: number, readonly lost: number }

export async function dnsFaceSection (report: (name: string, value: string, target?: string) => void): Promise<void> {
  console.log(`\n## dns-face (${QUERIES.join(' + ')}, ${INSTANCES} instances, ${SECONDS}s each, EDNS0; BIND9 from a zone file beside srvgate's face)`)
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
  const bind = await BindServer.start({ after: () => {} } as never, records)
  const facePort = await freePort()
  const gateway = await spawnBenchGateway('dns-face', `
workers: 1
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
    const dir = mkdtempSync(join(tmpdir(), 'srvgate-dnsperf-'))
    const queryFile = join(dir, 'queries.txt')
    writeFileSync(queryFile, `${QUERIES.join('\n')}\n`)
    const tool = has('dnsperf') ? 'dnsperf' : 'a Node load loop (dnsperf not found)'
    for (const [name, port] of [['BIND9 (named -n 1, zone file)', bind.port], ['srvgate DNS face', facePort]] as const) {
      const figures = has('dnsperf') ? dnsperf(port, queryFile) : await nodeLoop(port)
      report(`${name}: queries/s (${tool})`, figures.qps.toFixed(0))
      report(`${name}: average latency`, `${figures.latencyMs.toFixed(3)} ms`)
      if (figures.lost > 0) report(`${name}: queries lost`, String(figures.lost))
    }
  } finally {
    gateway.child.kill('SIGTERM')
    await bind.stop()
  }
}

function dnsperf (port: number, queryFile: string): Figures {
  const result = spawnSync('dnsperf', ['-s', '127.0.0.1', '-p', String(port), '-d', queryFile, '-l', String(SECONDS), '-c', '4', '-e', '-q', '200'], { encoding: 'utf8', timeout: (SECONDS + 30) * 1000 })
  const out = result.stdout
  const number = (pattern: RegExp): number => Number(pattern.exec(out)?.[1] ?? 0)
  return { qps: number(/Queries per second:\s+([\d.]+)/), latencyMs: number(/Average Latency \(s\):\s+([\d.]+)/) * 1000, lost: number(/Queries lost:\s+(\d+)/) }
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

function has (command: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${command}`]).status === 0
}
