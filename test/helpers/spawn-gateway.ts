/**
 * srvgate started through its CLI, as a user starts it: `srvgate run -c FILE`
 * in a child process, with its JSON log lines collected.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { TestContext } from 'node:test'
import { SRVGATE_BIN } from './cli.js'
import { freePort } from './dns-server.js'

export type LogLine = Record<string, unknown> & { msg?: string }

export type SpawnOptions = {
  readonly env?: Record<string, string>
  readonly dir?: string
  /** Write the configuration here instead of DIR/gateway.yaml. */
  readonly configPath?: string
  /** Node's own flags, before the script (V8 flags NODE_OPTIONS refuses); the workers inherit them. */
  readonly nodeArgs?: string[]
  /** More arguments for `srvgate run` (--watch). */
  readonly args?: string[]
  readonly port?: number
  readonly adminPort?: number
  /** SRVGATE_WORKERS; unset: the product's default (one worker per core). */
  readonly workers?: number
  /** Run under this descriptor limit (`prlimit --nofile`, like `ulimit -n`). */
  readonly fileLimit?: number
}

export class SpawnedGateway {
  readonly port: number
  readonly adminPort: number
  readonly configPath: string
  readonly process: ChildProcess
  readonly logs: LogLine[] = []
  stderr = ''
  #stdoutRest = ''
  #isClosed = false

  private constructor (port: number, adminPort: number, configPath: string, child: ChildProcess) {
    this.port = port
    this.adminPort = adminPort
    this.configPath = configPath
    this.process = child
    child.stdout?.on('data', (chunk: Buffer) => {
      const text = this.#stdoutRest + chunk.toString()
      const lines = text.split('\n')
      this.#stdoutRest = lines.pop() ?? ''
      for (const line of lines) {
        try { this.logs.push(JSON.parse(line) as LogLine) } catch { this.logs.push({ msg: line }) }
      }
    })
    child.stderr?.on('data', (chunk: Buffer) => { this.stderr += chunk.toString() })
    child.once('close', () => { this.#isClosed = true })
  }

  /**
   * Write `config` (YAML; `${PORT}` and `${ADMIN_PORT}` become free ports;
   * without a `drain:` key, drain.delay is 0 so tests stop fast) and start
   * `srvgate run`; waits until it listens.
   */
  static async start (t: TestContext, config: string, options: SpawnOptions = {}): Promise<SpawnedGateway> {
    // A free port probed here can be taken by another process before srvgate binds it: try new ones.
    for (let attempt = 1; ; attempt++) {
      const gateway = await SpawnedGateway.spawn(t, config, options)
      try {
        await gateway.waitForLog((line) => line.msg === 'srvgate listening', 20_000)
        return gateway
      } catch (error) {
        const isPortTaken = /EADDRINUSE/.test(gateway.stderr) && options.port === undefined && options.adminPort === undefined
        if (!isPortTaken || attempt >= 3) throw error
      }
    }
  }

  /** Like start, without waiting for the listener (start-up itself under test). */
  static async spawn (t: TestContext, config: string, options: SpawnOptions = {}): Promise<SpawnedGateway> {
    const port = options.port ?? await freePort()
    const adminPort = options.adminPort ?? await freePort()
    const ownDir = options.dir === undefined ? mkdtempSync(join(tmpdir(), 'srvgate-e2e-')) : undefined
    const dir = options.dir ?? ownDir as string
    const configPath = options.configPath ?? join(dir, 'gateway.yaml')
    writeFileSync(configPath, SpawnedGateway.render(config, port, adminPort))
    const command = [process.execPath, ...(options.nodeArgs ?? []), SRVGATE_BIN, 'run', '-c', configPath, ...(options.args ?? [])]
    if (options.fileLimit !== undefined) command.unshift('prlimit', `--nofile=${options.fileLimit}:${options.fileLimit}`)
    const child = spawn(command[0] as string, command.slice(1), { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...(options.workers === undefined ? {} : { SRVGATE_WORKERS: String(options.workers) }), ...options.env } })
    const gateway = new SpawnedGateway(port, adminPort, configPath, child)
    t.after(async () => {
      await gateway.stop()
      // A folder this helper made goes with the gateway; one the test gave is the test's.
      if (ownDir !== undefined) rmSync(ownDir, { recursive: true, force: true })
    })
    return gateway
  }

  /** The config text as start writes it: ports filled in, drain.delay 0 unless the text sets drain. */
  static render (config: string, port: number, adminPort: number): string {
    const text = config.replaceAll('${PORT}', String(port)).replaceAll('${ADMIN_PORT}', String(adminPort))
    return /^drain:/m.test(text) ? text : `${text}\ndrain: { delay: 0ms, timeout: 10s }\n`
  }

  /** Exit code once the process has ended (null: killed by a signal). */
  async exited (withinMs = 10_000): Promise<number | null> {
    if (this.#isClosed) return this.process.exitCode
    return await new Promise<number | null>((resolve, reject) => {
      const timer = setTimeout(() => { reject(new Error(`still running after ${withinMs} ms`)) }, withinMs)
      // 'close', not 'exit': stdout is read to its end first (the last log lines are in it).
      this.process.once('close', (code) => { clearTimeout(timer); resolve(code) })
    })
  }

  get url (): string { return `http://127.0.0.1:${this.port}` }
  get adminUrl (): string { return `http://127.0.0.1:${this.adminPort}` }

  async waitForLog (predicate: (line: LogLine) => boolean, withinMs = 10_000): Promise<LogLine> {
    const deadline = Date.now() + withinMs
    while (Date.now() < deadline) {
      const found = this.logs.find(predicate)
      if (found !== undefined) return found
      if (this.process.exitCode !== null) throw new Error(`srvgate exited (${this.process.exitCode}): ${this.stderr}`)
      await new Promise((resolve) => setTimeout(resolve, 20))
    }
    throw new Error(`no such log line within ${withinMs} ms; stderr: ${this.stderr}`)
  }

  /** SIGTERM and wait for the exit code. */
  async stop (): Promise<number | null> {
    if (this.#isClosed) return this.process.exitCode
    const child = this.process
    const closed = new Promise<void>((resolve) => { child.once('close', () => { resolve() }) })
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise<void>((resolve) => { child.once('exit', () => { resolve() }) })
      child.kill('SIGTERM')
      const timer = setTimeout(() => child.kill('SIGKILL'), 15_000)
      await exited
      clearTimeout(timer)
    }
    // Its output is read to the end ('close'), unless a process it left behind (a worker a test
    // stopped with SIGSTOP) still holds the pipes: that is not waited for past 2 s.
    let timer: NodeJS.Timeout | undefined
    await Promise.race([closed, new Promise((resolve) => { timer = setTimeout(resolve, 2000) })])
    clearTimeout(timer)
    if (!this.#isClosed) {
      child.stdout?.destroy()
      child.stderr?.destroy()
    }
    return child.exitCode
  }
}
