/**
 * Paced load for the bench sections: Debian's `hey` at a fixed request rate
 * (`-q` is per connection, so rate = q × connections), h2load at the same
 * rate spread over time, and `ps` readings.
 * A paced generator measures latency below capacity, where a closed loop
 * (wrk) measures it at saturation: there p99 is queueing and follows
 * throughput (docs/BENCHMARKS.md, issue 9).
 */
import { spawn, spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

export type PacedResult = {
  /** The rate asked for, and what hey reached (below the rate: the contestant, or hey, fell behind). */
  readonly askedPerSecond: number
  readonly requestsPerSecond: number
  readonly p50Ms: number
  readonly p90Ms: number
  readonly p99Ms: number
  /** Answers other than 2xx/3xx, and requests that failed (hey's error distribution). */
  readonly errors: number
}

/**
 * `hey -z SECONDS -c CONNECTIONS -q RATE/CONNECTIONS`. hey paces each
 * connection on a ticker and waits for the answer before the next request,
 * so a contestant slower than the tick lowers the rate reached (reported)
 * rather than queueing requests (coordinated omission: compare the rate
 * reached with the rate asked before reading the percentiles). The tickers
 * all start together, so the requests come as bursts of one per connection
 * (h2loadPaced below spreads them).
 */
export async function hey (url: string, options: { ratePerSecond: number, connections: number, seconds: number, host: string, keepAlive?: boolean }): Promise<PacedResult> {
  const perConnection = Math.max(1, Math.round(options.ratePerSecond / options.connections))
  const args = ['-z', `${options.seconds}s`, '-c', String(options.connections), '-q', String(perConnection), '-host', options.host, ...(options.keepAlive === false ? ['-disable-keepalive'] : []), url]
  const child = spawn('hey', args, { stdio: ['ignore', 'pipe', 'inherit'] })
  let out = ''
  child.stdout.on('data', (chunk: Buffer) => { out += chunk.toString() })
  await new Promise((resolve) => child.on('close', resolve))
  return parseHey(out, perConnection * options.connections)
}

/**
 * The same rate spread out in time: h2load (Debian's nghttp2-client) over
 * HTTP/1.1, each connection at rate/connections a second (`--rps`), the
 * connections started 1 ms apart (`-r 1 --rate-period 1ms`), so that their
 * ticks fall in different milliseconds: at 5,000/s about 5 requests arrive
 * each millisecond. hey instead starts every connection's ticker at once,
 * and its "fixed rate" arrives as one burst of every connection together
 * (50 requests within ~1.7 ms, every 10 ms at 5,000/s: docs/BENCHMARKS.md):
 * its percentiles are how fast a contestant drains a burst of 50, which
 * follows its CPU a request. h2load's are the latency of a request at that
 * rate. Percentiles come from h2load's per-request log (`--log-file`: start
 * in µs, status, duration in µs); the rate reached is requests over the
 * span of their starts. :authority sets the one Host h2load writes over
 * HTTP/1.1 (`-H host:` would add a second: a 400).
 */
export async function h2loadPaced (url: string, options: { ratePerSecond: number, connections: number, seconds: number, host: string }): Promise<PacedResult> {
  const perConnection = Math.max(1, Math.round(options.ratePerSecond / options.connections))
  const asked = perConnection * options.connections
  const sent = asked * options.seconds
  const dir = mkdtempSync(join(tmpdir(), 'srvgate-paced-'))
  const log = join(dir, 'requests.tsv')
  try {
    const args = ['--h1', '-c', String(options.connections), '-n', String(sent), '--rps', String(perConnection), '-r', '1', '--rate-period', '1ms', '-H', `:authority: ${options.host}`, '--log-file', log, url]
    const child = spawn('h2load', args, { stdio: ['ignore', 'ignore', 'inherit'] })
    await new Promise((resolve) => child.on('close', resolve))
    return parseH2loadLog(readFileSync(log, 'utf8'), asked, sent)
  } catch {
    return { askedPerSecond: asked, requestsPerSecond: NaN, p50Ms: NaN, p90Ms: NaN, p99Ms: NaN, errors: NaN }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

/**
 * h2load's --log-file lines: "start µs since the epoch<TAB>status<TAB>duration µs". Errors: answers
 * other than 2xx/3xx, and requests of the `sent` asked that have no line (their connection failed).
 */
export function parseH2loadLog (text: string, askedPerSecond: number, sent: number): PacedResult {
  const durations: number[] = []
  let first = Infinity
  let last = -Infinity
  let errors = 0
  for (const line of text.split('\n')) {
    const [start, status, duration] = line.split('\t')
    if (duration === undefined) continue
    const startedUs = Number(start)
    if (startedUs < first) first = startedUs
    if (startedUs > last) last = startedUs
    if (!/^[23]/.test(status as string)) errors++
    durations.push(Number(duration) / 1000)
  }
  errors += Math.max(0, sent - durations.length)
  durations.sort((a, b) => a - b)
  const percentile = (fraction: number): number => durations.length === 0 ? NaN : durations[Math.min(durations.length - 1, Math.floor(durations.length * fraction))] as number
  return {
    askedPerSecond,
    requestsPerSecond: last > first ? (durations.length - 1) / ((last - first) / 1e6) : NaN,
    p50Ms: percentile(0.5),
    p90Ms: percentile(0.9),
    p99Ms: percentile(0.99),
    errors
  }
}

/** hey's summary: "Requests/sec:", "NN% in S secs", "[status] N responses", "[N] error text". */
export function parseHey (out: string, askedPerSecond: number): PacedResult {
  const percentile = (label: number): number => {
    const match = new RegExp(`\\s${label}% in ([\\d.]+) secs`).exec(out)
    return match === null ? NaN : Number(match[1]) * 1000
  }
  let errors = 0
  for (const match of out.matchAll(/\[(\d+)\]\s+(\d+) responses/g)) if (!/^[23]/.test(match[1] as string)) errors += Number(match[2])
  const errorSection = /Error distribution:\n([\s\S]*)/.exec(out)?.[1] ?? ''
  for (const match of errorSection.matchAll(/^\s+\[(\d+)\]/gm)) errors += Number(match[1])
  return {
    askedPerSecond,
    requestsPerSecond: Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1] ?? NaN),
    p50Ms: percentile(50),
    p90Ms: percentile(90),
    p99Ms: percentile(99),
    errors
  }
}

/** Resident set size of each process, in kB, from `ps -o rss` (what an operator reads). */
export function rssOf (pids: readonly number[]): Map<number, number> {
  const result = spawnSync('ps', ['-o', 'pid=,rss=', '-p', pids.join(',')], { encoding: 'utf8' })
  const sizes = new Map<number, number>()
  for (const line of result.stdout.split('\n')) {
    const [pid, rss] = line.trim().split(/\s+/)
    if (pid !== undefined && rss !== undefined && pid !== '') sizes.set(Number(pid), Number(rss))
  }
  return sizes
}
