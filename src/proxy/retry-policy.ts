import type { RetryOn } from '../config/types.js'
import { ErrorCode } from '../errors.js'

/** How an attempt failed, classified once where it happened (Envoy: local-origin vs upstream status). */
export type AttemptFailure =
  | { readonly kind: 'connect-failure' }
  | { readonly kind: 'reset' }
  | { readonly kind: 'timeout' }
  | { readonly kind: 'status', readonly status: number }

export type RetryQuestion = {
  readonly failure: AttemptFailure
  readonly method: string
  /** Retries already made for this request. */
  readonly retries: number
  readonly policy: { readonly attempts: number, readonly on: ReadonlySet<RetryOn> }
  /** False once any byte of the request body was handed to an instance. */
  readonly canReplayBody: boolean
}

/** RFC 9110 §9.2.2. */
const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE', 'PUT', 'DELETE'])

/**
 * The one place where retrying is decided (spec §3): a connection that failed
 * before the request was sent may be retried for any method; an idempotent
 * request may be retried on a reset or on 502/503/504; a timeout is not
 * retried (it would multiply the load on a slow backend). Never more than
 * `retry.attempts`; the dispatcher makes sure never on the same instance.
 */
export function shouldRetry (question: RetryQuestion): boolean {
  const { failure, method, retries, policy, canReplayBody } = question
  if (retries >= policy.attempts || !canReplayBody) return false
  switch (failure.kind) {
    case 'connect-failure': return policy.on.has('connect-failure')
    case 'reset': return IDEMPOTENT.has(method) && policy.on.has('connect-failure')
    case 'timeout': return false
    case 'status': return IDEMPOTENT.has(method) && (failure.status === 502 || failure.status === 503 || failure.status === 504) && policy.on.has(failure.status)
  }
}

/** Errors undici raises when no connection could be made: the request was not sent. */
const CONNECT_ERRORS = new Set(['ECONNREFUSED', 'UND_ERR_CONNECT_TIMEOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'EHOSTDOWN', 'EADDRNOTAVAIL', 'ENOTFOUND'])
const RESET_ERRORS = new Set(['ECONNRESET', 'UND_ERR_SOCKET', 'EPIPE', 'UND_ERR_CLOSED'])
const TIMEOUT_ERRORS = new Set(['UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', ErrorCode.UPSTREAM_TIMEOUT])

/** Classify an undici error by its code. */
export function classifyError (error: unknown): AttemptFailure['kind'] | 'other' {
  const code = (error as { code?: unknown } | null)?.code
  if (typeof code !== 'string') return 'other'
  if (CONNECT_ERRORS.has(code)) return 'connect-failure'
  if (RESET_ERRORS.has(code)) return 'reset'
  if (TIMEOUT_ERRORS.has(code)) return 'timeout'
  return 'other'
}
