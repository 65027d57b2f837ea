/**
 * An ACME directory that answers every new account with a rate limit
 * (429, `urn:ietf:params:acme:error:rateLimited`, Retry-After): what Let's
 * Encrypt sends past its limits, which Pebble never does. It checks no
 * signature; it only gives a client something real to talk to on loopback.
 */
import { createServer, type Server } from 'node:http'
import { randomBytes } from 'node:crypto'
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
