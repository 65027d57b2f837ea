/**
 * Paced load for the bench sections: Debian's `hey` at a fixed request rate
 * (`-q` is per connection, so rate = q × connections), and `ps` readings.
 * A paced generator measures latency below capacity, where a closed loop
 * (wrk) measures it at saturation: there p99 is queueing and follows
 * throughput (docs/BENCHMARKS.md, issue 9).
 */
import { spawn, spawnSync } from 'node:child_process'

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
 * reached with the rate asked before reading the percentiles).
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
