/**
 * BIND9's `named` (Debian) as a real, independent SRV source, started by the
 * test on loopback with a dynamic zone that `nsupdate` changes live.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { TestContext } from 'node:test'
import { freePort } from './dns-server.js'
import { makeResolver } from './resolver.js'

export const ZONE = 'srvgate.test'
const NAMED = '/usr/sbin/named'
const NSUPDATE = '/usr/bin/nsupdate'

export class BindServer {
  readonly port: number
  readonly #process: ChildProcess
  readonly #dir: string
  #output = ''

  private constructor (port: number, process: ChildProcess, dir: string) {
    this.port = port
    this.#process = process
    this.#dir = dir
    process.stdout?.on('data', (chunk: Buffer) => { this.#output += chunk.toString() })
    process.stderr?.on('data', (chunk: Buffer) => { this.#output += chunk.toString() })
  }

  /** named's process id (the bench reads its CPU time). */
  get pid (): number { return this.#process.pid as number }

  get address (): string { return `127.0.0.1:${this.port}` }
  get address6 (): string { return `[::1]:${this.port}` }

  /**
   * Start named with a zone holding `records` (zone-file lines, names relative to the zone);
   * `extraZones` adds more zones by name (the peers bench serves `localhost.` too).
   */
  static async start (t: TestContext, records: string[] = [], extraZones: Readonly<Record<string, string[]>> = {}, options: { readonly threads?: number } = {}): Promise<BindServer> {
    const dir = mkdtempSync(join(tmpdir(), 'srvgate-bind-'))
    const port = await freePort()
    writeFileSync(join(dir, `${ZONE}.zone`), [
      '$TTL 0',
      `@ IN SOA ns.${ZONE}. hostmaster.${ZONE}. 1 3600 600 86400 0`,
      `@ IN NS ns.${ZONE}.`,
      'ns IN A 127.0.0.1',
      ...records,
      ''
    ].join('\n'))
    for (const [zone, lines] of Object.entries(extraZones)) {
      writeFileSync(join(dir, `${zone}.zone`), [`$TTL 0`, `@ IN SOA ns.${ZONE}. hostmaster.${ZONE}. 1 3600 600 86400 0`, `@ IN NS ns.${ZONE}.`, ...lines, ''].join('\n'))
    }
    writeFileSync(join(dir, 'named.conf'), `
options {
  directory "${dir}";
  pid-file "${dir}/named.pid";
  listen-on port ${port} { 127.0.0.1; };
  listen-on-v6 port ${port} { ::1; };
  recursion no;
  dnssec-validation no;
  notify no;
  allow-query { any; };
  // Since 9.18.28 an RRset holds at most 100 records by default; a 200-instance service needs more.
  max-records-per-type 0;
};
controls { };
zone "${ZONE}" {
  type primary;
  file "${dir}/${ZONE}.zone";
  allow-update { 127.0.0.1; ::1; };
};
${Object.keys(extraZones).map((zone) => `zone "${zone}" { type primary; file "${dir}/${zone}.zone"; };`).join('\n')}
`)
    const child = spawn(NAMED, ['-g', '-n', String(options.threads ?? 1), '-c', join(dir, 'named.conf')], { stdio: ['ignore', 'pipe', 'pipe'] })
    const server = new BindServer(port, child, dir)
    t.after(async () => { await server.stop() })
    await server.#waitUntilAnswering()
    return server
  }

  /** Apply `update add/delete …` lines in one nsupdate transaction. */
  update (lines: string[]): void {
    const script = [`server 127.0.0.1 ${this.port}`, `zone ${ZONE}`, ...lines, 'send', ''].join('\n')
    const result = spawnSync(NSUPDATE, ['-v'], { input: script, encoding: 'utf8', timeout: 10_000 })
    if (result.status !== 0) throw new Error(`nsupdate failed (${String(result.status)}): ${result.stderr}${result.stdout}`)
  }

  async stop (): Promise<void> {
    if (this.#process.exitCode === null && this.#process.signalCode === null) {
      const exited = new Promise((resolve) => this.#process.once('exit', resolve))
      this.#process.kill('SIGTERM')
      const timer = setTimeout(() => this.#process.kill('SIGKILL'), 5000)
      await exited
      clearTimeout(timer)
    }
    rmSync(this.#dir, { recursive: true, force: true })
  }

  async #waitUntilAnswering (): Promise<void> {
    const { resolver } = makeResolver([this.address], { timeoutMs: 200, attempts: 1 })
    const deadline = Date.now() + 15_000
    while (Date.now() < deadline) {
      if (this.#process.exitCode !== null) throw new Error(`named exited (${this.#process.exitCode}):\n${this.#output}`)
      try {
        await resolver.query({ name: `ns.${ZONE}`, type: 'A' })
        return
      } catch {
        await new Promise((resolve) => setTimeout(resolve, 100))
      }
    }
    throw new Error(`named did not answer within 15 s:\n${this.#output}`)
  }
}

/** Zone lines for an SRV service of `count` instances with their A records. */
export function srvRecords (service: string, count: number, base = 8000): string[] {
  return Array.from({ length: count }, (_, index) => [
    `${service} 0 IN SRV 1 1 ${base + index} i${index}.${ZONE}.`,
    `i${index} 0 IN A 10.2.${index >> 8}.${index & 255}`
  ]).flat()
}
