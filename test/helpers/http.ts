/** HTTP requests with any Host header (fetch forbids setting it), over a keep-alive agent. */
import { spawn } from 'node:child_process'
import { Agent, request as httpRequest, type IncomingHttpHeaders } from 'node:http'
import { connect } from 'node:net'

export type Response = { status: number, headers: IncomingHttpHeaders, body: string, json: () => Record<string, unknown> }

export const keepAlive = new Agent({ keepAlive: true, maxSockets: 64 })

export async function send (url: string, options: { host?: string, method?: string, headers?: Record<string, string>, body?: Buffer | string, agent?: Agent | false, timeoutMs?: number } = {}): Promise<Response> {
  return await new Promise((resolve, reject) => {
    const target = new URL(url)
    const headers: Record<string, string> = { ...options.headers }
    if (options.host !== undefined) headers.host = options.host
    const req = httpRequest({
      host: target.hostname.replace(/^\[|\]$/g, ''),
      port: target.port,
      path: target.pathname + target.search,
      method: options.method ?? 'GET',
      headers,
      agent: options.agent ?? keepAlive,
      timeout: options.timeoutMs ?? 10_000
    }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (chunk: Buffer) => chunks.push(chunk))
      res.on('end', () => {
        const body = Buffer.concat(chunks).toString()
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body, json: () => JSON.parse(body) as Record<string, unknown> })
      })
      res.on('error', reject)
    })
    req.on('timeout', () => req.destroy(new Error('client timeout')))
    req.on('error', reject)
    req.end(options.body)
  })
}

/**
 * A bounded load loop: `concurrency` workers send requests until `until()`
 * says stop or `maxRequests` is reached. Returns every status seen.
 */
export async function load (make: () => Promise<Response>, options: { concurrency: number, until: () => boolean, maxRequests: number }): Promise<{ total: number, failures: Array<{ status: number, body: string }>, byInstance: Map<string, number> }> {
  let total = 0
  const failures: Array<{ status: number, body: string }> = []
  const byInstance = new Map<string, number>()
  const worker = async (): Promise<void> => {
    while (!options.until() && total < options.maxRequests) {
      total++
      try {
        const response = await make()
        if (response.status !== 200) failures.push({ status: response.status, body: response.body })
        else {
          const instance = String(response.json().instance)
          byInstance.set(instance, (byInstance.get(instance) ?? 0) + 1)
        }
      } catch (error) {
        failures.push({ status: 0, body: (error as Error).message })
      }
    }
  }
  await Promise.all(Array.from({ length: options.concurrency }, worker))
  return { total, failures, byInstance }
}

/** curl in its own process, awaited (not spawnSync: the DNS server and instances live in this process): its exit status and output. */
export async function curl (args: string[]): Promise<{ status: number, stdout: string, stderr: string }> {
  const child = spawn('curl', ['-s', '-S', '--max-time', '10', ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (chunk: Buffer) => { stdout += chunk.toString() })
  child.stderr.on('data', (chunk: Buffer) => { stderr += chunk.toString() })
  const status = await new Promise<number | null>((resolve) => child.on('close', resolve))
  return { status: status ?? -1, stdout, stderr }
}

/** A raw WebSocket handshake on a new connection; what the gateway answered before closing (or within 5 s). */
export async function rawHandshake (port: number, host: string, extraHeaders = '', path = '/chat'): Promise<string> {
  return await new Promise<string>((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => {
      socket.write(`GET ${path} HTTP/1.1\r\nHost: ${host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n${extraHeaders}\r\n`)
    })
    let received = ''
    socket.on('data', (chunk: Buffer) => { received += chunk.toString('latin1') })
    socket.on('close', () => { resolve(received) })
    socket.on('error', reject)
    socket.setTimeout(5000, () => { socket.destroy(); resolve(received) })
  })
}
