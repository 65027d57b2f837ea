import type { Server } from 'node:http'
import { nodeHttp } from '../util/node-http.js'

/** A demo instance: answers every request with a line naming its environment, itself and its address. */
export class DemoInstance {
  readonly env: string
  readonly name: string
  port = 0
  readonly #server: Server

  constructor (env: string, name: string) {
    this.env = env
    this.name = name
    this.#server = nodeHttp.createServer((request, response) => {
      request.resume()
      if (request.url === '/healthz') {
        response.end('ok\n')
        return
      }
      const body = `${JSON.stringify({ env, instance: name, address: `127.0.0.1:${this.port}`, method: request.method, path: request.url, requestId: request.headers['x-request-id'] })}\n`
      response.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) })
      response.end(body)
    })
    this.#server.keepAliveTimeout = 5000
  }

  async start (): Promise<void> {
    await new Promise<void>((resolve) => this.#server.listen(0, '127.0.0.1', resolve))
    const address = this.#server.address()
    this.port = typeof address === 'object' && address !== null ? address.port : 0
  }

  /** Graceful: in-flight requests finish, idle connections close. */
  async stop (): Promise<void> {
    const closed = new Promise<void>((resolve) => this.#server.close(() => resolve()))
    this.#server.closeIdleConnections()
    await closed
  }
}
