/** wrk runs and /proc readings shared by the bench sections. */
import { spawn } from 'node:child_process'
import { readFileSync, readdirSync } from 'node:fs'

export type WrkResult = { requestsPerSecond: number, p50Ms: number, p99Ms: number, requests: number, errors: number }

/** Async: a DNS server may live in the bench process and must keep answering while wrk runs. */
export async function wrk (url: string, options: { threads: number, connections: number, seconds: number, host: string, extraHeaders?: readonly string[] }): Promise<WrkResult> {
  const headers = (options.extraHeaders ?? []).flatMap((header) => ['-H', header])
  const child = spawn('wrk', [`-t${options.threads}`, `-c${options.connections}`, `-d${options.seconds}s`, '--latency', '-H', `Host: ${options.host}`, ...headers, url], { stdio: ['ignore', 'pipe', 'inherit'] })
  let out = ''
  child.stdout.on('data', (chunk: Buffer) => { out += chunk.toString() })
  await new Promise((resolve) => child.on('close', resolve))
  const number = (pattern: RegExp): number => Number(pattern.exec(out)?.[1] ?? NaN)
  const latency = (label: string): number => {
    const match = new RegExp(`\\s${label}%\\s+([\\d.]+)(us|ms|s)`).exec(out)
    if (match === null) return NaN
    const value = Number(match[1])
    return match[2] === 'us' ? value / 1000 : match[2] === 's' ? value * 1000 : value
  }
  const errors = /Non-2xx or 3xx responses: (\d+)/.exec(out)
  const socketErrors = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out)
  return {
    requestsPerSecond: number(/Requests\/sec:\s+([\d.]+)/),
    requests: number(/(\d+) requests in/),
    p50Ms: latency('50'),
    p99Ms: latency('99'),
    errors: (errors === null ? 0 : Number(errors[1])) + (socketErrors === null ? 0 : socketErrors.slice(1).reduce((sum, value) => sum + Number(value), 0))
  }
}

/** Resident set size of a process, in kB, from /proc (Linux). */
export function rssKb (pid: number): number {
  return Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? NaN)
}

/** User + system CPU time of a process, in ms, from /proc (Linux). */
export function cpuMs (pid: number): number {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? []
    return (Number(fields[11]) + Number(fields[12])) * 10 // USER_HZ is 100 on Linux
  } catch {
    return 0 // exited
  }
}

/** The process and its children (a cluster's workers, nginx's and HAProxy's workers). */
export function processTree (pid: number): number[] {
  const children: number[] = []
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    try {
      const parent = Number(readFileSync(`/proc/${entry}/stat`, 'utf8').split(') ')[1]?.split(' ')[1])
      if (parent === pid) children.push(Number(entry))
    } catch {}
  }
  return [pid, ...children.flatMap((child) => processTree(child))]
}

export function cpuMsOfTree (pid: number): number {
  return processTree(pid).reduce((sum, member) => sum + cpuMs(member), 0)
}
