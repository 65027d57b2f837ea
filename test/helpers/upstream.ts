/**
 * Real HTTP upstream instances on loopback. Each answers JSON naming itself,
 * echoes what it received (method, path, headers, body size), and can be
 * told to fail, hang or close connections.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { Socket } from 'node:net'
import type { TestContext } from 'node:test'

export type UpstreamReply = { instance: string, method: string, url: string, headers: IncomingMessage['headers'], bodyBytes: number }
export type Behaviour = (request: IncomingMessage, response: ServerResponse, body: Buffer) => boolean | undefined

export class Upstream {
  readonly name: string
  readonly host: string
  port = 0
  requests = 0
  /** Return true to say the behaviour answered the request itself. */
  behaviour: Behaviour | undefined
  /** Called as a request arrives, before its body is read. */
  onRequestStart: ((request: IncomingMessage) => void) | undefined
  readonly #server: Server
  readonly #sockets = new Set<Socket>()

  private constructor (name: string, host: string) {
    this.name = name
    this.host = host
    this.#server = createServer((request, response) => { this.#handle(request, response) })
    this.#server.keepAliveTimeout = 5000
    this.#server.on('connection', (socket) => {
      this.#sockets.add(socket)
      this.connectionsAccepted++
      socket.on('close', () => this.#sockets.delete(socket))
    })
  }

  static async start (t: TestContext | undefined, name: string, options: { host?: string, port?: number } = {}): Promise<Upstream> {
    const upstream = new Upstream(name, options.host ?? '127.0.0.1')
    await upstream.listen(options.port ?? 0)
    t?.after(async () => { await upstream.kill() })
    return upstream
  }

  /** Connections ever accepted (a recycled connection is a new one). */
  connectionsAccepted = 0

  /** Connections open to this instance now (the gateway's pool, seen from the instance). */
  get openConnections (): number { return this.#sockets.size }

  get address (): string { return this.host.includes(':') ? `[${this.host}]:${this.port}` : `${this.host}:${this.port}` }

  async listen (port: number): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      this.#server.once('error', reject)
      this.#server.listen(port, this.host, () => {
        this.#server.removeListener('error', reject)
        const address = this.#server.address()
        this.port = typeof address === 'object' && address !== null ? address.port : 0
        resolve()
      })
    })
  }

  /** Graceful: stop accepting, finish in-flight requests, close idle keep-alive sockets. */
  async stop (): Promise<void> {
    if (!this.#server.listening) return
    const closed = new Promise<void>((resolve) => this.#server.close(() => resolve()))
    this.#server.closeIdleConnections()
    await closed
  }

  /** Abrupt: every connection reset now, like a crashed process. */
  async kill (): Promise<void> {
    for (const socket of this.#sockets) socket.resetAndDestroy()
    if (this.#server.listening) await new Promise<void>((resolve) => this.#server.close(() => resolve()))
  }

  #handle (request: IncomingMessage, response: ServerResponse): void {
    this.onRequestStart?.(request)
    const chunks: Buffer[] = []
    request.on('data', (chunk: Buffer) => chunks.push(chunk))
    request.on('end', () => {
      this.requests++
      const body = Buffer.concat(chunks)
      if (this.behaviour?.(request, response, body) === true) return
      const reply: UpstreamReply = { instance: this.name, method: request.method ?? '', url: request.url ?? '', headers: request.headers, bodyBytes: body.length }
      response.setHeader('content-type', 'application/json')
      response.end(JSON.stringify(reply))
    })
  }
}
