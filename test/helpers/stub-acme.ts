/**
 * An ACME directory that answers every new account with a rate limit
 * (429, `urn:ietf:params:acme:error:rateLimited`, Retry-After): what Let's
 * Encrypt sends past its limits, which Pebble never does. It checks no
 * signature; it only gives a client something real to talk to on loopback.
 */
import { createServer, type Server } from 'node:http'
import { randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { Agent as HttpsAgent, get as httpsGet } from 'node:https'
import type { AddressInfo } from 'node:net'

export class RateLimitingCa {
  readonly #server: Server
  /** Requests to each path, in order. */
  readonly requests: string[] = []
  /** The Retry-After sent with each 429 (seconds, or an HTTP date). */
  retryAfter = '3600'

  private constructor (server: Server) { this.#server = server }

  static async start (): Promise<RateLimitingCa> {
    let ca: RateLimitingCa | undefined
    const server = createServer((request, response) => {
      const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
      ca?.requests.push(`${String(request.method)} ${String(request.url)}`)
      const nonce = randomBytes(12).toString('base64url')
      request.resume()
      request.on('end', () => {
        if (request.url === '/directory') {
          response.writeHead(200, { 'content-type': 'application/json' })
          response.end(JSON.stringify({ newNonce: `${base}/nonce`, newAccount: `${base}/account`, newOrder: `${base}/order`, revokeCert: `${base}/revoke`, keyChange: `${base}/key-change` }))
        } else if (request.url === '/nonce') {
          response.writeHead(request.method === 'HEAD' ? 200 : 204, { 'replay-nonce': nonce, 'cache-control': 'no-store' })
          response.end()
        } else {
          response.writeHead(429, { 'content-type': 'application/problem+json', 'replay-nonce': nonce, 'retry-after': ca?.retryAfter ?? '3600' })
          response.end(JSON.stringify({ type: 'urn:ietf:params:acme:error:rateLimited', detail: 'too many new registrations from this address', status: 429 }))
        }
      })
    })
    ca = new RateLimitingCa(server)
    await new Promise<void>((resolve) => { server.listen(0, '127.0.0.1', resolve) })
    return ca
  }

  get directoryUrl (): string { return `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}/directory` }

  /** Requests other than the directory and nonces: what reached the account or an order. */
  get signedRequests (): string[] { return this.requests.filter((line) => !line.endsWith('/directory') && !line.includes('/nonce')) }

  async stop (): Promise<void> {
    this.#server.closeAllConnections()
    await new Promise<void>((resolve) => { this.#server.close(() => { resolve() }) })
  }
}

/**
 * Pebble's directory with `renewalInfo` added (Debian's Pebble 2.4 has no
 * ARI): GET /dir is Pebble's own, plus a renewalInfo URL served here, which
 * answers every certificate ID with `window` (RFC 9773 §4.2). Everything
 * else an ACME client asks goes to Pebble itself, whose URLs the directory names.
 */
export class AriDirectory {
  readonly #server: Server
  /** The certificate IDs asked, in order. */
  readonly asked: string[] = []
  /** What renewalInfo answers for a certificate ID; none: 404 (a real CA answers each certificate its own). */
  readonly windows = new Map<string, { start: Date, end: Date }>()
  /** What every other certificate ID gets (a CA answering an old window for any certificate); undefined: 404. */
  otherwise: { start: Date, end: Date } | undefined

  private constructor (server: Server) { this.#server = server }

  static async start (pebbleDirectory: string, pebbleCaPath: string): Promise<AriDirectory> {
    let ari: AriDirectory | undefined
    const agent = new HttpsAgent({ ca: readFileSync(pebbleCaPath) })
    const server = createServer((request, response) => {
      const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
      if (request.url === '/dir') {
        httpsGet(pebbleDirectory, { agent }, (upstream) => {
          const chunks: Buffer[] = []
          upstream.on('data', (chunk: Buffer) => chunks.push(chunk))
          upstream.on('end', () => {
            const directory = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown>
            response.writeHead(200, { 'content-type': 'application/json' })
            response.end(JSON.stringify({ ...directory, renewalInfo: `${base}/ari/` }))
          })
        }).on('error', () => { response.writeHead(502).end() })
        return
      }
      const match = /^\/ari\/(.+)$/.exec(request.url ?? '')
      if (match !== null && ari !== undefined) {
        ari.asked.push(match[1] as string)
        const window = ari.windows.get(match[1] as string) ?? ari.otherwise
        if (window === undefined) {
          response.writeHead(404).end()
          return
        }
        response.writeHead(200, { 'content-type': 'application/json', 'retry-after': '60' })
        response.end(JSON.stringify({ suggestedWindow: { start: window.start.toISOString(), end: window.end.toISOString() } }))
        return
      }
      response.writeHead(404).end()
    })
    ari = new AriDirectory(server)
    await new Promise<void>((resolve) => { server.listen(0, '127.0.0.1', resolve) })
    return ari
  }

  get directoryUrl (): string { return `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}/dir` }

  async stop (): Promise<void> {
    this.#server.closeAllConnections()
    await new Promise<void>((resolve) => { this.#server.close(() => { resolve() }) })
  }
}
