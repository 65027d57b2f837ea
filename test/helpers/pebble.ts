/**
 * Pebble, Let's Encrypt's ACME test CA (Debian's pebble), with
 * pebble-challtestsrv as its DNS server (every A query answers 127.0.0.1, no
 * AAAA), so the CA validates challenges against the gateway on loopback: its
 * http-01 port and tls-alpn-01 port are the gateway's listeners.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { Agent, get } from 'node:https'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { TestContext } from 'node:test'
import { TestCa } from './certificates.js'
import { freePort } from './dns-server.js'

export type PebbleOptions = {
  /** The gateway's plain listener: where the CA fetches http-01 tokens. */
  readonly httpPort: number
  /** The gateway's HTTPS listener: where the CA makes tls-alpn-01 handshakes. */
  readonly tlsPort: number
  /** Pebble's certificateValidityPeriod (seconds); unset: Pebble's default (5 years). */
  readonly validitySeconds?: number
  /** PEBBLE_WFE_NONCEREJECT: the share of good nonces refused as bad (Pebble's default: 5). */
  readonly nonceRejectPercent?: number
  /** External account binding required, with these keys (kid → base64url HMAC key). */
  readonly eab?: Readonly<Record<string, string>>
}

export class Pebble {
  /** The ACME directory URL. */
  readonly directory: string
  /** The PEM file that signs Pebble's own HTTPS certificate: tls.acme.directoryCa. */
  readonly directoryCa: string
  readonly #managementPort: number
  readonly #ca: TestCa
  readonly #config: string
  readonly #dnsPort: number
  readonly #options: PebbleOptions
  #pebble: ChildProcess | undefined
  #output = ''

  private constructor (ca: TestCa, config: string, ports: { api: number, management: number, dns: number }, options: PebbleOptions) {
    this.#ca = ca
    this.directory = `https://localhost:${ports.api}/dir`
    this.directoryCa = ca.caPath
    this.#managementPort = ports.management
    this.#config = config
    this.#dnsPort = ports.dns
    this.#options = options
  }

  static async start (t: TestContext, options: PebbleOptions): Promise<Pebble> {
    const ca = TestCa.create(t)
    const served = ca.issue(['localhost'])
    const dir = mkdtempSync(join(tmpdir(), 'srvgate-pebble-'))
    t.after(() => { rmSync(dir, { recursive: true, force: true }) })
    const ports = { api: await freePort(), management: await freePort(), dns: await freePort(), challtestsrv: await freePort() }
    const config = join(dir, 'pebble.json')
    writeFileSync(config, JSON.stringify({
      pebble: {
        listenAddress: `127.0.0.1:${ports.api}`,
        managementListenAddress: `127.0.0.1:${ports.management}`,
        certificate: served.cert,
        privateKey: served.key,
        httpPort: options.httpPort,
        tlsPort: options.tlsPort,
        ocspResponderURL: '',
        externalAccountBindingRequired: options.eab !== undefined,
        ...(options.eab === undefined ? {} : { externalAccountMACKeys: options.eab }),
        ...(options.validitySeconds === undefined ? {} : { certificateValidityPeriod: options.validitySeconds })
      }
    }))
    // Its DNS only: every A query is 127.0.0.1; its own challenge servers stay off.
    const challtestsrv = spawn('pebble-challtestsrv', ['-dns01', `127.0.0.1:${ports.dns}`, '-http01', '', '-https01', '', '-tlsalpn01', '', '-management', `127.0.0.1:${ports.challtestsrv}`, '-defaultIPv4', '127.0.0.1', '-defaultIPv6', ''], { stdio: 'ignore' })
    t.after(() => { challtestsrv.kill('SIGKILL') })
    const pebble = new Pebble(ca, config, ports, options)
    t.after(() => { pebble.stop() })
    await pebble.restart()
    return pebble
  }

  /** Start Pebble (again: a new root and intermediate each time, as Pebble makes them at start). */
  async restart (): Promise<void> {
    this.stop()
    this.#output = ''
    const child = spawn('pebble', ['-config', this.#config, '-dnsserver', `127.0.0.1:${this.#dnsPort}`], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, PEBBLE_VA_NOSLEEP: '1', PEBBLE_WFE_NONCEREJECT: String(this.#options.nonceRejectPercent ?? 5) }
    })
    child.stdout.on('data', (chunk: Buffer) => { this.#output += chunk.toString() })
    child.stderr.on('data', (chunk: Buffer) => { this.#output += chunk.toString() })
    this.#pebble = child
    const deadline = Date.now() + 15_000
    while (Date.now() < deadline) {
      if (child.exitCode !== null) throw new Error(`pebble exited (${child.exitCode}): ${this.#output}`)
      if ((await this.#fetch(this.directory).catch(() => undefined))?.status === 200) return
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
    throw new Error(`pebble did not answer within 15 s: ${this.#output}`)
  }

  stop (): void {
    this.#pebble?.kill('SIGKILL')
    this.#pebble = undefined
  }

  /** What Pebble printed (its validations among it). */
  get output (): string { return this.#output }

  /** The root every certificate Pebble issues chains to (from its management interface). */
  async root (): Promise<string> {
    const answer = await this.#fetch(`https://localhost:${this.#managementPort}/roots/0`)
    if (answer.status !== 200) throw new Error(`pebble's management interface answered ${answer.status}`)
    return answer.body
  }

  async #fetch (url: string): Promise<{ status: number, body: string }> {
    return await new Promise((resolve, reject) => {
      const request = get(url, { agent: new Agent({ ca: this.#ca.caPem }), timeout: 2000 }, (response) => {
        let body = ''
        response.on('data', (chunk: Buffer) => { body += chunk.toString() })
        response.on('end', () => { resolve({ status: response.statusCode ?? 0, body }) })
      })
      request.on('timeout', () => { request.destroy(new Error('timeout')) })
      request.on('error', reject)
    })
  }
}
