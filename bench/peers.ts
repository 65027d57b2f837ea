/**
 * srvgate beside the gateways operators compare it with, in one run on one
 * machine: HAProxy, Caddy and nginx from Debian (installed here if missing),
 * and srvgate with 1 and 2 workers, all in front of the same three nginx
 * instances found through the same SRV records in a BIND9 this section
 * starts. Each contestant is loaded by the same wrk in interleaved rounds;
 * the median round is printed. Figures are for comparing rows of one run.
 *
 * nginx from Debian (1.22) cannot follow SRV records (open-source nginx
 * learned `service=` in 1.27.3): it gets the three instances written in its
 * file, a baseline of what proxying costs without discovery.
 *
 * The stack floors (bench/stack-floor.mjs) are undici's dispatch behind
 * fastify and behind bare node:http with none of srvgate's code: what the
 * stack srvgate is built on does at the same load, its throughput and its tail.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { BindServer, ZONE } from '../test/helpers/bind-server.js'
import { freePort } from '../test/helpers/dns-server.js'
import { send } from '../test/helpers/http.js'
import { cpuMsOfTree, wrk, type WrkResult } from './wrk.js'
import { TestCa } from '../test/helpers/certificates.js'
import { request as httpsRequest } from 'node:https'

const SECONDS = Number(process.env.BENCH_SECONDS ?? 10)
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3)
const ONLY = process.env.BENCH_PEERS
/** BENCH_BASELINE=DIR: another built srvgate checkout (a worktree of an earlier commit) run beside this one, for before/after in one run. */
const BASELINE = process.env.BENCH_BASELINE
const WRK_ARGS = { threads: 2, connections: 64 }
const SRV = `_web._tcp.${ZONE}`
const HOST = 'www.example.com'

type Contestant = { readonly name: string, readonly port: number, readonly child: ChildProcess }

export async function peersSection (report: (name: string, value: string, target?: string) => void): Promise<void> {
  console.log(`\n## peers (wrk -t${WRK_ARGS.threads} -c${WRK_ARGS.connections} -d${SECONDS}s, ${ROUNDS} interleaved rounds, median; 3 nginx instances behind SRV records in BIND9)`)
  installMissing()
  if (!has('wrk') || !has('/usr/sbin/named') || !has('nginx')) {
    console.log('peers: wrk, named (bind9) and nginx are needed: apt-get install wrk bind9 nginx-light')
    return
  }
  const dir = mkdtempSync(join(tmpdir(), 'srvgate-peers-'))
  const children: ChildProcess[] = []
  const bindT = { after: () => {} } as never
  let bind: BindServer | undefined
  try {
    const instancePorts = [await freePort(), await freePort(), await freePort()]
    children.push(startNginxInstances(dir, instancePorts))
    // Targets are `localhost.`: Caddy looks SRV targets up with the system resolver, not the
    // SRV source, so the name must resolve there too; BIND serves it for HAProxy and srvgate.
    bind = await BindServer.start(bindT, instancePorts.map((port) => `_web._tcp 5 IN SRV 1 1 ${port} localhost.`), { localhost: ['@ 5 IN A 127.0.0.1'] })
    const nameserver = bind.address
    const contestants: Contestant[] = []
    const add = async (name: string, start: (port: number) => ChildProcess | undefined): Promise<void> => {
      // BENCH_PEERS=caddy,srvgate runs some contestants only.
      if (ONLY !== undefined && !ONLY.split(',').some((part) => name.toLowerCase().startsWith(part.trim().toLowerCase()))) return
      const port = await freePort()
      const child = start(port)
      if (child === undefined) return
      children.push(child)
      if (await answers(port)) contestants.push({ name, port, child })
      else console.log(`peers: ${name} did not answer on ${port}; left out`)
    }
    if (has('haproxy')) {
      for (const threads of [2, 1]) await add(`HAProxy ${version('haproxy', ['-v'])}, nbthread ${threads}`, (port) => startHaproxy(dir, port, nameserver, threads))
    }
    if (has('caddy')) {
      for (const procs of [2, 1]) await add(`Caddy ${version('caddy', ['version'])}, GOMAXPROCS ${procs}`, (port) => startCaddy(dir, port, nameserver, procs))
    }
    await add(`nginx ${version('nginx', ['-v'])} (static upstream), 2 workers`, (port) => startNginxProxy(dir, port, instancePorts))
    // What the named stack costs with none of srvgate's code: undici dispatch behind fastify, and behind bare node:http.
    for (const server of ['fastify', 'http']) {
      await add(`stack floor: undici dispatch behind ${server === 'http' ? 'node:http' : 'fastify'}, 2 workers`, (port) => spawn(process.execPath, ['bench/stack-floor.mjs', server, String(port), '2', ...instancePorts.map((instance) => `http://127.0.0.1:${instance}`)], { stdio: 'ignore' }))
    }
    for (const workers of [2, 1]) await add(`srvgate, ${workers} worker${workers === 1 ? '' : 's'}`, (port) => startSrvgate(dir, port, nameserver, workers))
    if (BASELINE !== undefined) await add('srvgate baseline, 2 workers', (port) => startSrvgate(dir, port, nameserver, 2, undefined, [], BASELINE))
    // BENCH_NODE_VARIANTS="name:--flag --flag;name2:--flag" adds srvgate (2 workers) under other Node flags, side by side.
    for (const variant of (process.env.BENCH_NODE_VARIANTS ?? '').split(';').filter((part) => part.includes(':'))) {
      const [name, flags] = variant.split(/:(.*)/s) as [string, string]
      await add(`srvgate, 2 workers, ${name}`, (port) => startSrvgate(dir, port, nameserver, 2, undefined, flags.split(' ').filter(Boolean)))
    }

    const results = new Map<string, WrkResult[]>()
    const cpu = new Map<string, number>()
    for (const contestant of contestants) await wrk(`http://127.0.0.1:${contestant.port}/`, { ...WRK_ARGS, seconds: 2, host: HOST }) // warm-up
    for (let round = 0; round < ROUNDS; round++) {
      for (const contestant of contestants) {
        const before = cpuMsOfTree(contestant.child.pid as number)
        const result = await wrk(`http://127.0.0.1:${contestant.port}/`, { ...WRK_ARGS, seconds: SECONDS, host: HOST })
        cpu.set(contestant.name, (cpu.get(contestant.name) ?? 0) + cpuMsOfTree(contestant.child.pid as number) - before)
        results.set(contestant.name, [...(results.get(contestant.name) ?? []), result])
      }
    }
    const median = (name: string): WrkResult | undefined => {
      const rounds = [...(results.get(name) ?? [])].sort((a, b) => a.requestsPerSecond - b.requestsPerSecond)
      return rounds[Math.floor(rounds.length / 2)]
    }
    for (const contestant of contestants) {
      const result = median(contestant.name)
      if (result === undefined) continue
      const requests = (results.get(contestant.name) ?? []).reduce((sum, round) => sum + round.requests, 0)
      report(contestant.name, `${result.requestsPerSecond.toFixed(0).padStart(7)} req/s  p50 ${result.p50Ms.toFixed(2)} ms  p99 ${result.p99Ms.toFixed(2)} ms  ${(cpu.get(contestant.name) ?? 0) * 1000 / Math.max(requests, 1) < 1000 ? `${((cpu.get(contestant.name) ?? 0) * 1000 / Math.max(requests, 1)).toFixed(0)} µs CPU/req` : ''}  errors ${result.errors}`)
    }
    const find = (prefix: string): WrkResult | undefined => {
      const contestant = contestants.find((candidate) => candidate.name.startsWith(prefix))
      return contestant === undefined ? undefined : median(contestant.name)
    }
    const srvgate2 = find('srvgate, 2 workers')
    const caddy2 = contestants.find((candidate) => candidate.name.startsWith('Caddy') && candidate.name.endsWith('GOMAXPROCS 2'))
    const haproxy2 = contestants.find((candidate) => candidate.name.startsWith('HAProxy') && candidate.name.endsWith('nbthread 2'))
    if (srvgate2 !== undefined && caddy2 !== undefined) {
      const caddy = median(caddy2.name) as WrkResult
      report('srvgate (2 workers) / Caddy (GOMAXPROCS 2), req/s', `${(srvgate2.requestsPerSecond / caddy.requestsPerSecond).toFixed(2)}×`, '≥ 1.0×')
    }
    if (srvgate2 !== undefined && haproxy2 !== undefined) {
      const haproxy = median(haproxy2.name) as WrkResult
      report('srvgate (2 workers) / HAProxy (nbthread 2), req/s', `${(srvgate2.requestsPerSecond / haproxy.requestsPerSecond).toFixed(2)}×`, 'stretch 0.5×')
      report('srvgate (2 workers) p99 / HAProxy (nbthread 2) p99', `${(srvgate2.p99Ms / haproxy.p99Ms).toFixed(2)}×`, '≤ 2×')
    }
    // The floors' ratios say what the target asks of the stack itself, at the same load.
    for (const floor of contestants.filter((candidate) => candidate.name.startsWith('stack floor'))) {
      const result = median(floor.name) as WrkResult
      if (haproxy2 !== undefined) report(`${floor.name.replace(', 2 workers', '')}: p99 / HAProxy's`, `${(result.p99Ms / (median(haproxy2.name) as WrkResult).p99Ms).toFixed(2)}×`)
    }
    if (process.env.BENCH_HTTPS !== '0') await httpsRows(report, dir, nameserver, children)
  } finally {
    const exits = children.map(async (child) => { await new Promise((resolve) => { if (child.exitCode !== null || child.signalCode !== null) resolve(null); else child.once('exit', resolve) }) })
    for (const child of children) child.kill('SIGTERM')
    await Promise.all(exits)
    await bind?.stop()
  }
}

/**
 * HTTPS beside the same peers: new TLS handshakes per second (wrk, every
 * request on a new connection: `Connection: close`) and HTTP/2 requests per
 * second (h2load, Debian's nghttp2-client), one round each, for HAProxy
 * (nbthread 2), Caddy (GOMAXPROCS 2) and srvgate (2 workers) terminating TLS
 * with the same ECDSA P-256 certificate for `localhost`.
 */
async function httpsRows (report: (name: string, value: string, target?: string) => void, dir: string, nameserver: string, children: ChildProcess[]): Promise<void> {
  console.log(`\n## peers over HTTPS (one round each: wrk -t2 -c64 -d${SECONDS}s with Connection: close; h2load -t2 -c64 -m10 -D ${SECONDS})`)
  if (!has('h2load')) console.log('peers: h2load not found (apt-get install nghttp2-client): HTTP/2 rows left out')
  const ca = TestCa.create({ after: () => {} } as never)
  const issued = ca.issue(['localhost', 'www.example.com'])
  const combined = join(dir, 'combined.pem')
  writeFileSync(combined, readFileSync(issued.cert, 'utf8') + readFileSync(issued.key, 'utf8'))
  const tls = { cert: issued.cert, key: issued.key, combined }
  const starts: Array<[string, (port: number) => ChildProcess | undefined]> = []
  if (has('haproxy')) starts.push([`HAProxy ${version('haproxy', ['-v'])}, nbthread 2, TLS`, (port) => startHaproxy(dir, port, nameserver, 2, tls)])
  if (has('caddy')) starts.push([`Caddy ${version('caddy', ['version'])}, GOMAXPROCS 2, TLS`, (port) => startCaddy(dir, port, nameserver, 2, tls)])
  starts.push(['srvgate, 2 workers, TLS', (port) => startSrvgate(dir, port, nameserver, 2, tls)])
  if (BASELINE !== undefined) starts.push(['srvgate baseline, 2 workers, TLS', (port) => startSrvgate(dir, port, nameserver, 2, tls, [], BASELINE)])
  for (const [name, start] of starts) {
    if (ONLY !== undefined && !ONLY.split(',').some((part) => name.toLowerCase().startsWith(part.trim().toLowerCase()))) continue
    const port = await freePort()
    const child = start(port)
    if (child === undefined) continue
    children.push(child)
    if (!await answersTls(port)) {
      console.log(`peers: ${name} did not answer over HTTPS on ${port}; left out`)
      continue
    }
    const handshakes = await wrk(`https://localhost:${port}/`, { threads: 2, connections: 64, seconds: SECONDS, host: HOST, extraHeaders: ['Connection: close'] })
    const h2 = has('h2load') ? await h2load(`https://localhost:${port}/`, SECONDS) : undefined
    report(name, `${handshakes.requestsPerSecond.toFixed(0).padStart(6)} handshakes/s (errors ${handshakes.errors})${h2 === undefined ? '' : `  ${h2.requestsPerSecond.toFixed(0).padStart(6)} HTTP/2 req/s (failed ${h2.failed})`}`)
  }
}

/** h2load's "finished in …, N req/s" and its failed count. */
async function h2load (url: string, seconds: number): Promise<{ requestsPerSecond: number, failed: number }> {
  const child = spawn('h2load', ['-t2', '-c64', '-m10', '-D', String(seconds), '-H', `host: ${HOST}`, url], { stdio: ['ignore', 'pipe', 'ignore'] })
  let out = ''
  child.stdout.on('data', (chunk: Buffer) => { out += chunk.toString() })
  await new Promise((resolve) => child.on('close', resolve))
  return {
    requestsPerSecond: Number(/finished in [^,]+, ([\d.]+) req\/s/.exec(out)?.[1] ?? NaN),
    failed: Number(/(\d+) failed/.exec(out)?.[1] ?? NaN)
  }
}

async function answersTls (port: number): Promise<boolean> {
  for (let attempt = 0; attempt < 100; attempt++) {
    const result = await new Promise<number>((resolve) => {
      const request = httpsRequest({ host: '127.0.0.1', port, servername: 'localhost', path: '/', headers: { host: HOST }, rejectUnauthorized: false, timeout: 1000 }, (response) => { response.resume(); resolve(response.statusCode ?? 0) })
      request.on('error', () => { resolve(0) })
      request.end()
    })
    if (result === 200) return true
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  return false
}

/** The bench's own setup step: Debian packages of the peers, when this machine may install them. */
function installMissing (): void {
  const missing = [['haproxy', 'haproxy'], ['caddy', 'caddy'], ['nginx', 'nginx-light'], ['wrk', 'wrk'], ['/usr/sbin/named', 'bind9']].filter(([command]) => !has(command as string)).map(([, pkg]) => pkg as string)
  if (missing.length === 0) return
  console.log(`peers: installing ${missing.join(' ')} (apt-get)`)
  const result = spawnSync('apt-get', ['install', '-y', '-q', ...missing], { stdio: 'ignore', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' }, timeout: 300_000 })
  if (result.status !== 0) console.log(`peers: apt-get could not install ${missing.join(' ')}; those contestants are left out`)
}

function has (command: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${command}`]).status === 0
}

function version (command: string, args: string[]): string {
  const result = spawnSync(command, args, { encoding: 'utf8' })
  return /(\d+\.\d+(?:\.\d+)?)/.exec(`${result.stdout}${result.stderr}`)?.[1] ?? '?'
}

async function answers (port: number): Promise<boolean> {
  for (let attempt = 0; attempt < 100; attempt++) {
    try {
      if ((await send(`http://127.0.0.1:${port}/`, { host: HOST, agent: false, timeoutMs: 1000 })).status === 200) return true
    } catch {}
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  return false
}

function startNginxInstances (dir: string, ports: number[]): ChildProcess {
  const file = join(dir, 'instances.conf')
  writeFileSync(file, `
daemon off; master_process on; worker_processes 1; pid ${dir}/instances.pid; error_log stderr error;
events { worker_connections 4096; }
http {
  access_log off; keepalive_requests 100000; keepalive_timeout 60s;
${ports.map((port, index) => `  server { listen 127.0.0.1:${port}; location / { default_type application/json; return 200 '{"ok":true,"instance":${index}}'; } }`).join('\n')}
}`)
  return spawn('nginx', ['-c', file, '-p', dir], { stdio: 'ignore' })
}

function startNginxProxy (dir: string, port: number, instances: number[]): ChildProcess {
  const file = join(dir, 'proxy.conf')
  writeFileSync(file, `
daemon off; master_process on; worker_processes 2; pid ${dir}/proxy.pid; error_log stderr error;
events { worker_connections 4096; }
http {
  access_log off; keepalive_requests 100000;
  upstream web { ${instances.map((instance) => `server 127.0.0.1:${instance};`).join(' ')} keepalive 64; }
  server { listen 127.0.0.1:${port}; location / { proxy_pass http://web; proxy_http_version 1.1; proxy_set_header Connection ""; } }
}`)
  return spawn('nginx', ['-c', file, '-p', dir], { stdio: 'ignore' })
}

type BenchTls = { readonly cert: string, readonly key: string, readonly combined: string }

function startHaproxy (dir: string, port: number, nameserver: string, threads: number, tls?: BenchTls): ChildProcess {
  const file = join(dir, `haproxy-${threads}${tls === undefined ? '' : '-tls'}.cfg`)
  writeFileSync(file, `
global
  nbthread ${threads}
  maxconn 4000
defaults
  mode http
  timeout connect 5s
  timeout client 30s
  timeout server 30s
  option http-keep-alive
resolvers bind
  nameserver ns1 ${nameserver}
  accepted_payload_size 8192
  hold valid 5s
frontend www
  bind 127.0.0.1:${port}${tls === undefined ? '' : ` ssl crt ${tls.combined} alpn h2,http/1.1`}
  default_backend web
backend web
  balance roundrobin
  server-template web 3 ${SRV} resolvers bind resolve-prefer ipv4 init-addr none
`)
  return spawn('haproxy', ['-f', file, '-db'], { stdio: 'ignore' })
}

function startCaddy (dir: string, port: number, nameserver: string, procs: number, tls?: BenchTls): ChildProcess {
  const file = join(dir, `Caddyfile-${procs}${tls === undefined ? '' : '-tls'}`)
  writeFileSync(file, `{
  admin off
  auto_https ${tls === undefined ? 'off' : 'disable_redirects'}
  storage file_system ${dir}/caddy-${procs}
}
${tls === undefined ? 'http' : 'https'}://:${port} {
  bind 127.0.0.1
  ${tls === undefined ? '' : `tls ${tls.cert} ${tls.key}`}
  reverse_proxy {
    dynamic srv {
      name ${SRV}
      refresh 5s
      resolvers ${nameserver}
    }
  }
}
`)
  // Caddy 2.6 (Go 1.19) dials SRV targets through the system resolver, and Go 1.19 matches
  // /etc/hosts names only without the trailing dot; in its own mount namespace it gets a
  // hosts file that also names `localhost.` (the machine's file is left alone).
  const hosts = join(dir, 'hosts')
  writeFileSync(hosts, '127.0.0.1 localhost localhost.\n')
  const command = `mount --bind ${hosts} /etc/hosts && exec caddy run --config ${file} --adapter caddyfile`
  return spawn('unshare', ['--mount', 'sh', '-c', command], { stdio: 'ignore', env: { ...process.env, GOMAXPROCS: String(procs), HOME: dir, XDG_DATA_HOME: dir, XDG_CONFIG_HOME: dir } })
}

function startSrvgate (dir: string, port: number, nameserver: string, workers: number, tls?: BenchTls, nodeFlags: readonly string[] = [], root = '.'): ChildProcess {
  const file = join(dir, `srvgate-${workers}${tls === undefined ? '' : '-tls'}-${port}.yaml`)
  writeFileSync(file, `
listen: { ${tls === undefined ? 'http' : 'https'}: "127.0.0.1:${port}", admin: "127.0.0.1:0" }
${tls === undefined ? '' : `tls: { certificates: [ { cert: ${tls.cert}, key: ${tls.key} } ] }`}
workers: ${workers}
drain: { delay: 0s, timeout: 5s }
resolvers: { bind: { nameservers: ["${nameserver}"] } }
backends: { web: { discovery: { resolver: bind, srv: ${SRV} }, balance: round-robin } }
frontends: [ { name: www, match: { host: ${HOST} }, backend: web }, { name: local, match: { host: localhost }, backend: web } ]
`)
  // Default logging: one JSON access-log line per request, as operators run it.
  return spawn(process.execPath, [...nodeFlags, join(root, 'dist/main.js'), 'run', '-c', file], { stdio: 'ignore' })
}
