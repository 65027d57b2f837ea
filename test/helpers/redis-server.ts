/**
 * Debian's redis-server on a loopback port of its own, nothing saved to
 * disk: the shared storage of tls.acme replicas. Stopped and started again
 * on the same port to test what an outage does.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { connect } from 'node:net'
import type { TestContext } from 'node:test'
import { freePort } from './dns-server.js'

export class RedisServer {
  readonly port: number
  #process: ChildProcess | undefined

  private constructor (port: number) { this.port = port }

  static async start (t: TestContext): Promise<RedisServer> {
    const server = new RedisServer(await freePort())
    t.after(() => { server.stop() })
    await server.restart()
    return server
  }

  get url (): string { return `redis://127.0.0.1:${this.port}` }

  async restart (): Promise<void> {
    this.stop()
    const child = spawn('redis-server', ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' })
    this.#process = child
    const deadline = Date.now() + 10_000
    while (Date.now() < deadline) {
      if (child.exitCode !== null) throw new Error(`redis-server exited (${child.exitCode})`)
      if (await this.#answers()) return
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
    throw new Error('redis-server did not answer PING within 10 s')
  }

  /** SIGSTOP: connected, answering nothing (a stalled Redis); resume() with SIGCONT. */
  pause (): void { this.#process?.kill('SIGSTOP') }
  resume (): void { this.#process?.kill('SIGCONT') }

  stop (): void {
    this.#process?.kill('SIGKILL')
    this.#process = undefined
  }

  async #answers (): Promise<boolean> {
    return await new Promise((resolve) => {
      const socket = connect(this.port, '127.0.0.1')
      socket.setTimeout(500, () => { socket.destroy(); resolve(false) })
      socket.on('error', () => { resolve(false) })
      socket.on('connect', () => { socket.write('PING\r\n') })
      socket.on('data', (chunk: Buffer) => { socket.destroy(); resolve(chunk.toString().startsWith('+PONG')) })
    })
  }
}
