import { X509Certificate } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { Agent, get as httpsGet } from 'node:https'
import type { IncomingMessage } from 'node:http'
import { nodeHttp } from '../util/node-http.js'
import { systemClock } from '../util/clock.js'

/** The CA's suggested renewal window (RFC 9773 §4.2), wall-clock milliseconds. */
export type RenewalWindow = { readonly startMs: number, readonly endMs: number }
/** A renewalInfo answer: its window, and when to ask again (its Retry-After, kept within bounds). */
export type RenewalInfo = { readonly window: RenewalWindow, readonly askAgainMs: number }

/** RFC 9773 §4.3: poll no more often than a minute, at least daily; without Retry-After, every 6 hours. */
const MIN_POLL_MS = 60_000
const MAX_POLL_MS = 24 * 3_600_000
const DEFAULT_POLL_MS = 6 * 3_600_000
/** A renewalInfo or directory request that takes longer has failed. */
const REQUEST_TIMEOUT_MS = 30_000

/**
 * ACME Renewal Information (RFC 9773): when the CA's directory offers
 * `renewalInfo`, the CA says when each certificate should be renewed (earlier
 * than usual when it must revoke, later to spread load). Plain GETs, no
 * account, no signature: Node's own client, not acme-client (whose axios and
 * node-forge a primary that renews nothing need not load). The certificate's
 * ID needs its Authority Key Identifier, which node:crypto does not expose:
 * read by @peculiar/x509 (already under acme-client), loaded here only.
 */
export class AriClient {
  readonly #directoryUrl: string
  readonly #agent: Agent | undefined
  /** The directory's renewalInfo URL; null: the CA offers none. Read once. */
  #base: Promise<string | null> | undefined

  constructor (directoryUrl: string, directoryCaPath: string | undefined) {
    this.#directoryUrl = directoryUrl
    this.#agent = directoryCaPath === undefined ? undefined : new Agent({ ca: readFileSync(directoryCaPath) })
  }

  /** The CA's window for the leaf of `certPem`; undefined when the CA offers no renewalInfo. Throws when it cannot be asked. */
  async renewalInfo (certPem: string, nowMs: number): Promise<RenewalInfo | undefined> {
    const base = await (this.#base ??= this.#renewalInfoUrl().catch((error: unknown) => { this.#base = undefined; throw error }))
    if (base === null) return undefined
    const id = await ariCertId(certPem)
    if (id === undefined) return undefined
    const answer = await this.#get(`${base.replace(/\/$/, '')}/${id}`)
    if (answer.status !== 200) throw new Error(`renewalInfo answered HTTP ${answer.status}`)
    const window = (answer.json as { suggestedWindow?: { start?: unknown, end?: unknown } } | undefined)?.suggestedWindow
    const startMs = typeof window?.start === 'string' ? Date.parse(window.start) : NaN
    const endMs = typeof window?.end === 'string' ? Date.parse(window.end) : NaN
    // §4.2: an end before its start is no window.
    if (Number.isNaN(startMs) || Number.isNaN(endMs) || endMs < startMs) throw new Error('renewalInfo gave no valid suggestedWindow')
    const askAgainMs = Math.min(MAX_POLL_MS, Math.max(MIN_POLL_MS, retryAfterMs(answer.retryAfter, nowMs) ?? DEFAULT_POLL_MS))
    return { window: { startMs, endMs }, askAgainMs }
  }

  async #renewalInfoUrl (): Promise<string | null> {
    const answer = await this.#get(this.#directoryUrl)
    if (answer.status !== 200) throw new Error(`the ACME directory answered HTTP ${answer.status}`)
    const url = (answer.json as { renewalInfo?: unknown } | undefined)?.renewalInfo
    return typeof url === 'string' && /^https?:\/\//.test(url) ? url : null
  }

  async #get (url: string): Promise<{ status: number, json: unknown, retryAfter: string | undefined }> {
    return await new Promise((resolve, reject) => {
      const done = (response: IncomingMessage): void => {
        const chunks: Buffer[] = []
        let size = 0
        response.on('data', (chunk: Buffer) => {
          size += chunk.length
          // A renewalInfo or directory document is small; a CA sending megabytes is not one.
          if (size > 64 * 1024) request.destroy(new Error('answer larger than 64 KiB'))
          else chunks.push(chunk)
        })
        response.on('end', () => {
          let json: unknown
          try { json = JSON.parse(Buffer.concat(chunks).toString('utf8')) } catch { json = undefined }
          const retryAfter = response.headers['retry-after']
          resolve({ status: response.statusCode ?? 0, json, retryAfter: typeof retryAfter === 'string' ? retryAfter : undefined })
        })
        response.on('error', reject)
        response.on('aborted', () => { reject(new Error('the answer was cut')) })
      }
      const request = url.startsWith('https:') ? httpsGet(url, this.#agent === undefined ? {} : { agent: this.#agent }, done) : nodeHttp.get(url, done)
      // A whole answer within the bound: a CA trickling a byte now and then is cut too, not only a silent one.
      const deadline = systemClock.setTimeout(() => { request.destroy(new Error(`no whole answer within ${REQUEST_TIMEOUT_MS / 1000} s`)) }, REQUEST_TIMEOUT_MS, { unref: true })
      request.on('close', () => { deadline.cancel() })
      request.on('error', reject)
    })
  }
}

/**
 * RFC 9773 §4.1: the certificate's ID, base64url of its Authority Key
 * Identifier's keyIdentifier, a dot, base64url of its serial number's DER
 * INTEGER content octets. Undefined for a certificate without an AKI.
 */
export async function ariCertId (certPem: string): Promise<string | undefined> {
  const leafPem = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/.exec(certPem)?.[0]
  if (leafPem === undefined) return undefined
  const x509 = await import('@peculiar/x509')
  const keyId = new x509.X509Certificate(leafPem).getExtension(x509.AuthorityKeyIdentifierExtension)?.keyId
  if (keyId === undefined || keyId === '') return undefined
  return `${Buffer.from(keyId, 'hex').toString('base64url')}.${serialContent(new X509Certificate(leafPem).serialNumber).toString('base64url')}`
}

/** A serial number's hex as DER INTEGER content: no leading zero octets but one when the first bit is set (positive). */
export function serialContent (hex: string): Buffer {
  let bytes = Buffer.from(hex.length % 2 === 1 ? `0${hex}` : hex, 'hex')
  let first = 0
  while (first < bytes.length - 1 && bytes[first] === 0) first++
  bytes = bytes.subarray(first)
  return (bytes[0] as number) & 0x80 ? Buffer.concat([Buffer.from([0]), bytes]) : bytes
}

/** A moment in the window, uniformly (§4.2: spreads the CA's load), not before `nowMs`. */
export function pickRenewalTime (window: RenewalWindow, nowMs: number, random: number): number {
  return Math.max(nowMs, window.startMs + Math.floor(random * (window.endMs - window.startMs)))
}

/** A Retry-After value (seconds, or an HTTP date) as milliseconds from `nowMs`; undefined when absent or not understood. */
export function retryAfterMs (value: unknown, nowMs: number): number | undefined {
  if (typeof value !== 'string' || value.trim() === '') return undefined
  const text = value.trim()
  if (/^\d+$/.test(text)) return Number(text) * 1000
  const atMs = Date.parse(text)
  if (Number.isNaN(atMs) || !/[A-Za-z]/.test(text)) return undefined
  return Math.max(0, atMs - nowMs)
}

