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
import { cpuMsOfTree, processTree, wrk, type WrkResult } from './wrk.js'
import { workerExecArgv } from '../src/cluster/worker-v8.js'
import { h2loadPaced, hey, rssOf, type PacedResult } from './hey.js'
import { TestCa } from '../test/helpers/certificates.js'
import { request as httpsRequest } from 'node:https'

const SECONDS = Number(process.env.BENCH_SECONDS ?? 10)
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3)
const ONLY = process.env.BENCH_PEERS
/** BENCH_HTTPS=only: the HTTPS rows alone (the plain closed loop and paced rows left out). */
const PLAIN = process.env.BENCH_HTTPS !== 'only'
/** BENCH_BASELINE=DIR: another built srvgate checkout (a worktree of an earlier commit) run beside this one, for before/after in one run. */
const BASELINE = process.env.BENCH_BASELINE
const WRK_ARGS = { threads: 2, connections: 64 }
/** BENCH_RATES=2000,5000: the fixed rates of the paced rows (req/s; below every contestant's capacity). BENCH_RATES=0 skips them. */
const RATES = (process.env.BENCH_RATES ?? '2000,5000').split(',').map(Number).filter((rate) => rate > 0)
/** BENCH_PACED_CONNECTIONS: hey's connections at each fixed rate (hey paces each one: rate / connections per second). */
const PACED_CONNECTIONS = Number(process.env.BENCH_PACED_CONNECTIONS ?? 50)
/** BENCH_PACERS=hey,h2load: the paced rows' load generators (bench/hey.ts): hey's bursts of one request a connection, h2load's requests spread over each millisecond. */
const PACERS = (process.env.BENCH_PACERS ?? 'hey').split(',').map((pacer) => pacer.trim()).filter((pacer) => pacer === 'hey' || pacer === 'h2load')
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
    // And the node:http floor with the spec's per-request duties (id, forwarding fields, metrics, access line) and nothing else.
    for (const server of ['fastify', 'http', 'duties']) {
      await add(`stack floor: undici dispatch behind ${FLOOR_NAMES[server] as string}, 2 workers`, (port) => startFloor(server, port, instancePorts))
    }
    // The node:http floor again, as a contestant of its own: the same code against itself (an A/A
    // control) says how far two runs of one thing differ here, the resolution of every ratio above.
    await add(AA_CONTROL, (port) => startFloor('http', port, instancePorts))
    for (const workers of [2, 1]) await add(`srvgate, ${workers} worker${workers === 1 ? '' : 's'}`, (port) => startSrvgate(dir, port, nameserver, workers))
    if (BASELINE !== undefined) await add('srvgate baseline, 2 workers', (port) => startSrvgate(dir, port, nameserver, 2, { root: BASELINE }))
    // BENCH_NODE_VARIANTS="name:--flag --flag;name2:--flag" adds srvgate (2 workers) under other Node flags, side by side.
    for (const variant of (process.env.BENCH_NODE_VARIANTS ?? '').split(';').filter((part) => part.includes(':'))) {
      const [name, flags] = variant.split(/:(.*)/s) as [string, string]
      await add(`srvgate, 2 workers, ${name}`, (port) => startSrvgate(dir, port, nameserver, 2, { nodeFlags: flags.split(' ').filter(Boolean) }))
    }
    // BENCH_NODE_BINARIES="node22:/path/to/node" adds srvgate (2 workers) under another Node binary, side by side.
    for (const binary of (process.env.BENCH_NODE_BINARIES ?? '').split(';').filter((part) => part.includes(':'))) {
      const [name, node] = binary.split(/:(.*)/s) as [string, string]
      await add(`srvgate, 2 workers, ${name} (${spawnSync(node, ['--version'], { encoding: 'utf8' }).stdout.trim()})`, (port) => startSrvgate(dir, port, nameserver, 2, { node }))
    }

    // Item 6's measure, before any closed loop: 5 s at 200 req/s, then RSS 5 s later.
    if (PLAIN && has('hey')) {
      for (const contestant of contestants.filter(hasWorkersToWeigh).filter(({ name }) => name !== AA_CONTROL)) {
        await hey(`http://127.0.0.1:${contestant.port}/`, { ratePerSecond: 200, connections: 2, seconds: 5, host: HOST })
        await new Promise((resolve) => setTimeout(resolve, 5000))
        reportRss(report, contestant, 'RSS 5 s after 5 s at 200 req/s')
      }
    }
    const results = new Map<string, WrkResult[]>()
    const cpu = new Map<string, number>()
    if (PLAIN) for (const contestant of contestants) await wrk(`http://127.0.0.1:${contestant.port}/`, { ...WRK_ARGS, seconds: 2, host: HOST }) // warm-up
    for (let round = 0; round < (PLAIN ? ROUNDS : 0); round++) {
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
    // Issue 21's item 4: srvgate at ≥ 0.85× the node:http floor. The duties floor says what the
    // spec's per-request work alone costs that floor, with no structure around it.
    const httpFloor = find(HTTP_FLOOR)
    const dutiesFloor = find(`stack floor: undici dispatch behind ${FLOOR_NAMES.duties as string}`)
    if (httpFloor !== undefined) {
      if (srvgate2 !== undefined) report('srvgate (2 workers) / the node:http floor, req/s', `${(srvgate2.requestsPerSecond / httpFloor.requestsPerSecond).toFixed(2)}×`, '≥ 0.85×')
      const control = find(AA_CONTROL)
      if (control !== undefined) report('A/A control: the node:http floor\'s second copy / the floor, req/s', `${(control.requestsPerSecond / httpFloor.requestsPerSecond).toFixed(2)}×`, '1.00× but for the noise')
      if (dutiesFloor !== undefined) report('the floor with the per-request duties / the node:http floor, req/s', `${(dutiesFloor.requestsPerSecond / httpFloor.requestsPerSecond).toFixed(2)}×`)
      if (srvgate2 !== undefined && dutiesFloor !== undefined) report('srvgate (2 workers) / the floor with the duties, req/s', `${(srvgate2.requestsPerSecond / dutiesFloor.requestsPerSecond).toFixed(2)}×`)
      // What the card's stack allows srvgate at best: the duties' share times fastify's (both against node:http).
      const fastifyFloor = find(`stack floor: undici dispatch behind ${FLOOR_NAMES.fastify as string}, 2 workers`)
      if (dutiesFloor !== undefined && fastifyFloor !== undefined) {
        report('ceiling on fastify: (duties floor / node:http floor) × (fastify floor / node:http floor)', `${(dutiesFloor.requestsPerSecond / httpFloor.requestsPerSecond * fastifyFloor.requestsPerSecond / httpFloor.requestsPerSecond).toFixed(2)}×`, '≥ 0.85× for the target to be reachable')
      }
    }
    // The floors' ratios say what the target asks of the stack itself, at the same load.
    for (const floor of contestants.filter((candidate) => candidate.name.startsWith('stack floor'))) {
      const result = median(floor.name)
      if (result !== undefined && haproxy2 !== undefined) report(`${floor.name.replace(', 2 workers', '')}: p99 / HAProxy's`, `${(result.p99Ms / (median(haproxy2.name) as WrkResult).p99Ms).toFixed(2)}×`)
    }
    if (PLAIN && RATES.length > 0) await pacedRows(report, contestants, median)
    // The floors' too: what a worker of the bare stack holds after the same load (item 6's ≤ 100 MB).
    if (PLAIN) for (const contestant of contestants.filter(hasWorkersToWeigh)) reportRss(report, contestant, 'RSS at the end')
    if (process.env.BENCH_HTTPS !== '0') await httpsRows(report, dir, nameserver, instancePorts, children)
  } finally {
    const exits = children.map(async (child) => { await new Promise((resolve) => { if (child.exitCode !== null || child.signalCode !== null) resolve(null); else child.once('exit', resolve) }) })
    for (const child of children) child.kill('SIGTERM')
    await Promise.all(exits)
    await bind?.stop()
  }
}

/** A stack floor (bench/stack-floor.mjs) with 2 workers, with the V8 flags srvgate's workers have (the young-generation cap): what differs is the code. */
function startFloor (server: string, port: number, instancePorts: readonly number[], env: NodeJS.ProcessEnv = process.env): ChildProcess {
  return spawn(process.execPath, [...workerExecArgv([], undefined), 'bench/stack-floor.mjs', server, String(port), '2', ...instancePorts.map((instance) => `http://127.0.0.1:${instance}`)], { stdio: 'ignore', env })
}

/** The stack floors bench/stack-floor.mjs serves, by its first argument. */
const FLOOR_NAMES: Record<string, string> = { fastify: 'fastify', http: 'node:http', duties: 'node:http, with the per-request duties' }
const HTTP_FLOOR = 'stack floor: undici dispatch behind node:http, 2 workers'
const AA_CONTROL = 'stack floor (A/A control): undici dispatch behind node:http, 2 workers, a second copy'

/**
 * Latency below capacity: each contestant at fixed rates, in interleaved
 * rounds, the median round by p99, for each pacer of BENCH_PACERS (hey's
 * bursts, h2load's spread: bench/hey.ts). The rows the issue names: srvgate
 * with 2 workers, the node:http stack floor (and its A/A copy), HAProxy
 * (nbthread 2), Caddy (GOMAXPROCS 2), nginx. On this 2-core box the load
 * generator shares the contestants' cores (nothing can be pinned apart: the
 * contestants use both); at these rates it takes a fraction of one.
 */
async function pacedRows (report: (name: string, value: string, target?: string) => void, contestants: readonly Contestant[], closed: (name: string) => WrkResult | undefined): Promise<void> {
  const paced = contestants.filter(({ name }) => name.startsWith('srvgate') ? !name.includes('1 worker') : name.startsWith('stack floor') ? name.includes('node:http,') : name.startsWith('HAProxy') ? name.endsWith('nbthread 2') : name.startsWith('Caddy') ? name.endsWith('GOMAXPROCS 2') : name.startsWith('nginx'))
  if (paced.length === 0) return
  for (const pacer of PACERS) {
    if (!has(pacer)) {
      console.log(`peers: ${pacer} not found (apt-get install ${pacer === 'hey' ? 'hey' : 'nghttp2-client'}): its paced rows left out`)
      continue
    }
    const how = pacer === 'hey' ? `hey -c${PACED_CONNECTIONS} -q rate/${PACED_CONNECTIONS}: a burst of ${PACED_CONNECTIONS} requests at once each tick` : `h2load --h1 -c${PACED_CONNECTIONS} --rps rate/${PACED_CONNECTIONS}, connections started 1 ms apart: the requests spread over each tick`
    console.log(`\n## peers at fixed rates (${how}; ${SECONDS} s, keep-alive; ${ROUNDS} interleaved rounds, median by p99; load generator unpinned: 2 cores shared)`)
    const results = new Map<string, PacedResult[]>()
    for (let round = 0; round < ROUNDS; round++) {
      for (const rate of RATES) {
        for (const contestant of paced) {
          const load = { ratePerSecond: rate, connections: PACED_CONNECTIONS, seconds: SECONDS, host: HOST }
          const result = pacer === 'hey' ? await hey(`http://127.0.0.1:${contestant.port}/`, load) : await h2loadPaced(`http://127.0.0.1:${contestant.port}/`, load)
          const key = `${contestant.name}@${rate}`
          results.set(key, [...(results.get(key) ?? []), result])
        }
      }
    }
    reportPaced(report, pacer, paced, results, closed)
  }
}

/** One pacer's paced rows: each contestant's median round by p99 at each rate, then issue 21's ratios beside the A/A control's. */
function reportPaced (report: (name: string, value: string, target?: string) => void, pacer: string, paced: readonly Contestant[], results: ReadonlyMap<string, readonly PacedResult[]>, closed: (name: string) => WrkResult | undefined): void {
  const median = (key: string): PacedResult | undefined => {
    const rounds = [...(results.get(key) ?? [])].sort((a, b) => a.p99Ms - b.p99Ms)
    return rounds[Math.floor(rounds.length / 2)]
  }
  const ms = (value: number): string => value.toFixed(2).padStart(6)
  for (const contestant of paced) {
    const loop = closed(contestant.name)
    const cells = RATES.map((rate) => {
      const result = median(`${contestant.name}@${rate}`)
      // Below 95 % of the rate asked: the contestant (or the pacer, sharing its cores) fell behind; its percentiles are not at that rate.
      const isBehind = result !== undefined && result.requestsPerSecond < 0.95 * result.askedPerSecond
      return result === undefined ? '' : `@${rate}: ${result.requestsPerSecond.toFixed(0).padStart(5)}/s${isBehind ? ' (behind)' : ''} p50 ${ms(result.p50Ms)} p90 ${ms(result.p90Ms)} p99 ${ms(result.p99Ms)} ms${result.errors > 0 ? ` errors ${result.errors}` : ''}`
    })
    report(`${contestant.name} (${pacer})`, `${loop === undefined ? '' : `closed ${loop.requestsPerSecond.toFixed(0)} req/s p99 ${loop.p99Ms.toFixed(2)} ms | `}${cells.join(' | ')}`)
  }
  // Issue 21's target: srvgate's p99 at each rate at most Caddy's, and at most 1.2× the stack floor's.
  // The A/A control (the floor against a second copy of itself) is what the same ratio gives with no difference in code.
  const srvgate = paced.find(({ name }) => name.startsWith('srvgate, 2 workers'))
  const caddy = paced.find(({ name }) => name.startsWith('Caddy'))
  const floor = paced.find(({ name }) => name === HTTP_FLOOR)
  const control = paced.find(({ name }) => name === AA_CONTROL)
  for (const rate of RATES) {
    const ratio = (mine: Contestant | undefined, other: Contestant | undefined): string => {
      const own = mine === undefined ? undefined : median(`${mine.name}@${rate}`)
      const result = other === undefined ? undefined : median(`${other.name}@${rate}`)
      return own === undefined || result === undefined ? '–' : `${(own.p99Ms / result.p99Ms).toFixed(2)}×`
    }
    if (srvgate !== undefined) report(`srvgate p99 at ${rate}/s (${pacer}): / Caddy's, / the floor's`, `${ratio(srvgate, caddy)}, ${ratio(srvgate, floor)}`, '≤ 1.0×, ≤ 1.2×')
    if (control !== undefined) report(`A/A control p99 at ${rate}/s (${pacer}): the floor's second copy / the floor`, ratio(control, floor), '1.00× but for the noise')
    const labelled: Array<[string, Contestant | undefined]> = [['srvgate', srvgate], ['floor', floor], ['its copy', control], ['Caddy', caddy]]
    const rounds = labelled.filter(([, contestant]) => contestant !== undefined).map(([label, contestant]) => `${label} ${(results.get(`${(contestant as Contestant).name}@${rate}`) ?? []).map((result) => result.p99Ms.toFixed(1)).join(' ')}`)
    report(`p99 of each round at ${rate}/s (${pacer}), ms`, rounds.join('; '))
  }
}

/** Issue 21 item 6: each srvgate (or floor) process's resident memory (the primary, then its workers), from `ps -o rss`, at the end of the run. */
function hasWorkersToWeigh (contestant: Contestant): boolean {
  return contestant.name.startsWith('srvgate') || contestant.name.startsWith('stack floor')
}

function reportRss (report: (name: string, value: string, target?: string) => void, contestant: Contestant, when: string): void {
  const [primary, ...workers] = processTree(contestant.child.pid as number)
  if (primary === undefined) return
  const sizes = rssOf([primary, ...workers])
  const mb = (pid: number): string => `${((sizes.get(pid) ?? NaN) / 1024).toFixed(0)} MB`
  report(`${contestant.name}: ${when}`, workers.length === 0 ? `one process ${mb(primary)}` : `primary ${mb(primary)}, workers ${workers.map(mb).join(', ')}`, contestant.name.startsWith('srvgate') ? 'workers ≤ 100 MB' : undefined)
}

/**
 * HTTPS beside the same peers: new TLS handshakes per second (wrk, every
 * request on a new connection: `Connection: close`), the same with every
 * client resuming its session by ticket (h2load --h1 with `Connection:
 * close`: h2load offers each connection's previous session, wrk only some
 * of the time), and HTTP/2 requests per
 * second (h2load, Debian's nghttp2-client), one round each, for HAProxy
 * (nbthread 2), Caddy (GOMAXPROCS 2) and srvgate (2 workers) terminating TLS
 * with the same ECDSA P-256 certificate for `localhost`.
 */
async function httpsRows (report: (name: string, value: string, target?: string) => void, dir: string, nameserver: string, instancePorts: readonly number[], children: ChildProcess[]): Promise<void> {
  console.log(`\n## peers over HTTPS (one round each: wrk -t2 -c64 -d${SECONDS}s kept alive, then with Connection: close; h2load -t2 -c64 -m10 -D ${SECONDS})`)
  if (!has('h2load')) console.log('peers: h2load not found (apt-get install nghttp2-client): HTTP/2 rows left out')
  const ca = TestCa.create({ after: () => {} } as never)
  const issued = ca.issue(['localhost', 'www.example.com'])
  const combined = join(dir, 'combined.pem')
  writeFileSync(combined, readFileSync(issued.cert, 'utf8') + readFileSync(issued.key, 'utf8'))
  const tls = { cert: issued.cert, key: issued.key, combined }
  const starts: Array<[string, (port: number) => ChildProcess | undefined]> = []
  if (has('haproxy')) starts.push([`HAProxy ${version('haproxy', ['-v'])}, nbthread 2, TLS`, (port) => startHaproxy(dir, port, nameserver, 2, tls)])
  if (has('caddy')) starts.push([`Caddy ${version('caddy', ['version'])}, GOMAXPROCS 2, TLS`, (port) => startCaddy(dir, port, nameserver, 2, tls)])
  // The stack's HTTPS floor: node:http2's secure server (allowHTTP1) forwarding with undici, none of srvgate's code.
  starts.push(['stack floor: undici dispatch behind node:http2 (allowHTTP1), 2 workers, TLS', (port) => startFloor('tls', port, instancePorts, { ...process.env, FLOOR_CERT: issued.cert, FLOOR_KEY: issued.key })])
  starts.push(['srvgate, 2 workers, TLS', (port) => startSrvgate(dir, port, nameserver, 2, { tls })])
  if (BASELINE !== undefined) starts.push(['srvgate baseline, 2 workers, TLS', (port) => startSrvgate(dir, port, nameserver, 2, { tls, root: BASELINE })])
  const rows = new Map<string, { h1: number, handshakes: number, resumed: number | undefined, h2: number | undefined }>()
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
    await wrk(`https://localhost:${port}/`, { threads: 2, connections: 64, seconds: 2, host: HOST }) // warm-up, as the closed loop's
    const keptAlive = await wrk(`https://localhost:${port}/`, { threads: 2, connections: 64, seconds: SECONDS, host: HOST })
    const handshakes = await wrk(`https://localhost:${port}/`, { threads: 2, connections: 64, seconds: SECONDS, host: HOST, extraHeaders: ['Connection: close'] })
    // By count: h2load's -D never ends once its connections close after each request. Over HTTP/1.1,
    // h2load writes its own Host and then a `host` given with -H (two: a 400); :authority replaces its own.
    const resumed = has('h2load') ? await h2load(`https://localhost:${port}/`, undefined, ['--h1', '-m1', '-n', String(SECONDS * 1000), '-H', 'connection: close', '-H', `:authority: ${HOST}`]) : undefined
    const h2 = has('h2load') ? await h2load(`https://localhost:${port}/`, SECONDS) : undefined
    rows.set(name, { h1: keptAlive.requestsPerSecond, handshakes: handshakes.requestsPerSecond, resumed: resumed?.requestsPerSecond, h2: h2?.requestsPerSecond })
    const resumedText = resumed === undefined ? '' : `  ${resumed.requestsPerSecond.toFixed(0).padStart(6)} resumed handshakes/s (failed ${resumed.failed})`
    report(name, `${keptAlive.requestsPerSecond.toFixed(0).padStart(6)} HTTP/1.1 req/s  ${handshakes.requestsPerSecond.toFixed(0).padStart(6)} handshakes/s (errors ${keptAlive.errors + handshakes.errors})${resumedText}${h2 === undefined ? '' : `  ${h2.requestsPerSecond.toFixed(0).padStart(6)} HTTP/2 req/s (failed ${h2.failed})`}`)
  }
  // Issue 21's HTTPS targets, and the same ratios for the stack's floor: what Node's TLS and HTTP/2 allow at all.
  const caddy = [...rows].find(([name]) => name.startsWith('Caddy'))?.[1]
  if (caddy === undefined) return
  for (const [name, row] of rows) {
    if (!name.startsWith('srvgate') && !name.startsWith('stack floor')) continue
    const ratio = (mine: number | undefined, theirs: number | undefined): string => mine === undefined || theirs === undefined ? 'n/a' : `${(mine / theirs).toFixed(2)}×`
    report(`${name.replace(/, 2 workers, TLS$/, '')} / Caddy: HTTP/1.1, handshakes, resumed, HTTP/2`, `${ratio(row.h1, caddy.h1)}, ${ratio(row.handshakes, caddy.handshakes)}, ${ratio(row.resumed, caddy.resumed)}, ${ratio(row.h2, caddy.h2)}`, name.startsWith('srvgate') ? '≥ 1.1×, ≥ 1.0×, (none), ≥ 1.0×' : undefined)
  }
}

/** h2load's "finished in …, N req/s" and its failed count. */
async function h2load (url: string, seconds: number | undefined, extra: readonly string[] = ['-m10', '-H', `host: ${HOST}`]): Promise<{ requestsPerSecond: number, failed: number }> {
  const child = spawn('h2load', ['-t2', '-c64', ...extra, ...(seconds === undefined ? [] : ['-D', String(seconds)]), url], { stdio: ['ignore', 'pipe', 'ignore'] })
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
  const missing = [['haproxy', 'haproxy'], ['caddy', 'caddy'], ['nginx', 'nginx-light'], ['wrk', 'wrk'], ['hey', 'hey'], ['h2load', 'nghttp2-client'], ['/usr/sbin/named', 'bind9']].filter(([command]) => !has(command as string)).map(([, pkg]) => pkg as string)
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

/** How a srvgate contestant differs from the plain one: TLS, Node flags, another checkout (root), another Node binary. */
type SrvgateVariant = { readonly tls?: BenchTls, readonly nodeFlags?: readonly string[], readonly root?: string, readonly node?: string }

function startSrvgate (dir: string, port: number, nameserver: string, workers: number, { tls, nodeFlags = [], root = '.', node = process.execPath }: SrvgateVariant = {}): ChildProcess {
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
  return spawn(node, [...nodeFlags, join(root, 'dist/main.js'), 'run', '-c', file], { stdio: 'ignore' })
}
