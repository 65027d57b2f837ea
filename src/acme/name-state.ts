import { X509Certificate } from 'node:crypto'
import { AcmeError } from '../errors.js'
import { dateAt, type Clock, type Timer } from '../util/clock.js'
import type { RenewalWindow } from './ari.js'
import type { StoredCertificate } from './storage.js'

/** A certificate held for a name, with its validity read once. */
export type Held = StoredCertificate & { readonly notBeforeMs: number, readonly notAfterMs: number }

/** What AcmeCertificates keeps of one name: the certificate held, its schedule, its failures. */
export type NameState = {
  readonly name: string
  /** Obtained at a handshake (tls.acme.onDemand), not listed in tls.acme.names. */
  readonly isOnDemand: boolean
  held: Held | undefined
  /** Monotonic time of the next order (renewal, or a retry). */
  nextAtMs: number | undefined
  timer: Timer | undefined
  failures: number
  lastError: string | undefined
  /** The CA's Retry-After on the last failure (a rate limit): the retry waits at least this long. */
  retryAfterMs: number | undefined
  /** The CA's renewal window for the certificate held (ARI, RFC 9773) and the moment picked in it (wall clock). */
  renewal: { readonly window: RenewalWindow, readonly atMs: number } | undefined
  /** When renewalInfo is asked again for the certificate held. */
  ariTimer: Timer | undefined
  /** The window the last renewal followed: the same one again for the new certificate is not followed (no loop). */
  followed: RenewalWindow | undefined
}

/** What /admin/state shows of each name. */
export type AcmeStatus = { readonly name: string, readonly isOnDemand: boolean, readonly notAfterMs: number | undefined, readonly nextOrderAtMs: number | undefined, readonly lastError: string | undefined, readonly renewalWindow: RenewalWindow | undefined }

export function statusOf (state: NameState, clock: Clock): AcmeStatus {
  return {
    name: state.name,
    isOnDemand: state.isOnDemand,
    notAfterMs: state.held?.notAfterMs,
    nextOrderAtMs: state.nextAtMs === undefined ? undefined : clock.wallNow() + Math.max(0, state.nextAtMs - clock.now()),
    lastError: state.lastError,
    renewalWindow: state.renewal?.window
  }
}

export function newNameState (name: string, isOnDemand: boolean): NameState {
  return { name, isOnDemand, held: undefined, nextAtMs: undefined, timer: undefined, failures: 0, lastError: undefined, retryAfterMs: undefined, renewal: undefined, ariTimer: undefined, followed: undefined }
}

/** An order obtained `issued`: held, failures forgotten, the window it followed remembered. */
export function recordIssued (state: NameState, issued: Held): void {
  state.held = issued
  state.failures = 0
  state.lastError = undefined
  state.retryAfterMs = undefined
  state.followed = state.renewal?.window
  state.renewal = undefined
}

/**
 * An order failed: counted, and the CA's Retry-After kept. Returns the log
 * fields, and whether the cause is new (logged once per cause: the same
 * failure again, every retry, is only debug).
 */
export function recordFailure (state: NameState, error: unknown): { readonly isNew: boolean, readonly fields: Record<string, unknown> } {
  const message = (error as Error).message
  state.failures++
  const isNew = message !== state.lastError
  state.lastError = message
  state.retryAfterMs = error instanceof AcmeError ? error.retryAfterMs : undefined
  const fields = {
    name: state.name,
    failures: state.failures,
    ...(state.held === undefined ? {} : { servingUntil: dateAt(state.held.notAfterMs).toISOString() }),
    ...(state.retryAfterMs === undefined ? {} : { retryAfterS: Math.ceil(state.retryAfterMs / 1000) })
  }
  return { isNew, fields }
}

/** A stored or issued certificate, checked to carry `name`; its validity read. */
export function heldOf (name: string, stored: StoredCertificate): Held {
  const x509 = new X509Certificate(stored.cert)
  if (!x509.checkHost(name)) throw new Error(`the certificate does not carry ${name}`)
  return { ...stored, notBeforeMs: Date.parse(x509.validFrom), notAfterMs: Date.parse(x509.validTo) }
}

export function heldOrUndefined (name: string, stored: StoredCertificate): Held | undefined {
  try {
    return heldOf(name, stored)
  } catch {
    return undefined
  }
}

/** When a certificate is renewed: renewBefore ahead of notAfter, but never before two thirds of its lifetime. */
export function renewAtMs (held: { readonly notBeforeMs: number, readonly notAfterMs: number }, renewBeforeMs: number): number {
  const lifetimeMs = held.notAfterMs - held.notBeforeMs
  return held.notAfterMs - Math.min(renewBeforeMs, lifetimeMs / 3)
}
