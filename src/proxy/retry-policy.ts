import type { RetryOn } from '../config/types.js'
import { ErrorCode } from '../errors.js'
import { H2Code } from './h2-pool.js'
import type { Outcome } from '../upstream/backend.js'

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

/**
 * Retries stay in the split member routing chose (a canary's failures never
 * spill over into the stable side), except after a connect failure: nothing
 * was sent, so once the member has no instance left to try, another member
 * may take the request, as it takes an emptied member's share.
 */
export function mayLeaveMember (reason: string): boolean {
  return reason === 'connect-failure'
}

/**
 * Errors undici raises when no connection could be made: the request was not
 * sent. A TLS handshake an instance fails (a certificate for another name, an
 * unknown CA, expired) is one of them: that instance is counted and skipped.
 */
const CONNECT_ERRORS = new Set(['ECONNREFUSED', 'UND_ERR_CONNECT_TIMEOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'EHOSTDOWN', 'EADDRNOTAVAIL', 'ENOTFOUND',
  'ERR_TLS_CERT_ALTNAME_INVALID', 'UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY', 'DEPTH_ZERO_SELF_SIGNED_CERT', 'SELF_SIGNED_CERT_IN_CHAIN',
  'CERT_HAS_EXPIRED', 'CERT_NOT_YET_VALID', 'ERR_SSL_WRONG_VERSION_NUMBER', 'ERR_SSL_TLSV1_ALERT_UNRECOGNIZED_NAME', 'ERR_SSL_SSLV3_ALERT_HANDSHAKE_FAILURE',
  // HTTP/2 (h2-pool.ts): a stream the instance refused was not processed (gRPC retries only these and connect failures).
  H2Code.CONNECT_TIMEOUT, H2Code.REFUSED_STREAM, 'ERR_SSL_TLSV1_ALERT_NO_APPLICATION_PROTOCOL'])
const RESET_ERRORS = new Set(['ECONNRESET', 'UND_ERR_SOCKET', 'EPIPE', 'UND_ERR_CLOSED', H2Code.STREAM_RESET, H2Code.STREAM_CANCELLED, 'ERR_HTTP2_STREAM_ERROR', 'ERR_HTTP2_SESSION_ERROR', 'ERR_HTTP2_GOAWAY_SESSION', 'ERR_HTTP2_STREAM_CANCEL'])
const TIMEOUT_ERRORS = new Set(['UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', ErrorCode.UPSTREAM_TIMEOUT, H2Code.HEADERS_TIMEOUT, H2Code.BODY_TIMEOUT])

/** Classify an undici error by its code. */
export function classifyError (error: unknown): AttemptFailure['kind'] | 'other' {
  const code = (error as { code?: unknown } | null)?.code
  if (typeof code !== 'string') return 'other'
  if (CONNECT_ERRORS.has(code)) return 'connect-failure'
  if (RESET_ERRORS.has(code)) return 'reset'
  if (TIMEOUT_ERRORS.has(code)) return 'timeout'
  return 'other'
}

/** How an attempt ended, as undici reported it: the instance's status line, or an error. */
export type AttemptResult =
  | { readonly kind: 'status', readonly status: number }
  | { readonly kind: 'error', readonly error: unknown }

/**
 * How an attempt ended, in the policy's words: passive health's outcomes,
 * plus `unclassified` for an error none of the rules above knows (its code is
 * not a connect, reset or timeout code).
 */
export type AttemptOutcome = Outcome | 'unclassified'

/**
 * What passive health and the attempt metrics record for an outcome. An
 * unclassified error counts against the instance as a reset always has: a
 * failure that is the instance's (or its connection's), never retried
 * (judgeAttempt), ejecting like any other failure. It keeps that name
 * outside, because `reset` is one of the documented values of the client's
 * `attempt` event and of the latency metric's `outcome` label; inside, the
 * verdict says what it is.
 */
export function healthOutcomeOf (outcome: AttemptOutcome): Outcome {
  return outcome === 'unclassified' ? 'reset' : outcome
}

/** What an attempt's result means: for the instance's health, for a retry, for the client's answer. */
export type Verdict = {
  /** Counted against (or for) the instance; undefined when the client was at fault (gone, slow, malformed body). */
  readonly outcome: AttemptOutcome | undefined
  /** Another instance may be tried (retry.on, attempts, idempotency, a replayable body). */
  readonly retryable: boolean
  /** The code the client's answer is made of when nothing else is tried; undefined: the instance's answer goes through. */
  readonly code: ErrorCode | undefined
}

export type VerdictContext = Omit<RetryQuestion, 'failure'>

/** Failures that are the client's, not the instance's: whatever carried them, they end the request as they are. */
const CLIENT_CODES = new Set<string>([ErrorCode.CLIENT_GONE, ErrorCode.CLIENT_TIMEOUT, ErrorCode.REQUEST_MALFORMED, ErrorCode.DEADLINE_EXCEEDED])

/**
 * The one failure vocabulary: an attempt's result becomes { outcome,
 * retryable, code }. The dispatcher carries the verdict out; proxy/plugin.ts
 * uses `failureCode` for errors that reach it some other way.
 */
export function judgeAttempt (result: AttemptResult, context: VerdictContext): Verdict {
  if (result.kind === 'status') {
    if (result.status < 500) return { outcome: 'success', retryable: false, code: undefined }
    return { outcome: 'status-5xx', retryable: shouldRetry({ ...context, failure: result }), code: undefined }
  }
  const code = (result.error as { code?: unknown } | null)?.code
  if (typeof code === 'string' && CLIENT_CODES.has(code)) return { outcome: undefined, retryable: false, code: code as ErrorCode }
  const kind = classifyError(result.error)
  switch (kind) {
    case 'connect-failure': return { outcome: 'connect-failure', retryable: shouldRetry({ ...context, failure: { kind } }), code: ErrorCode.UPSTREAM_CONNECT }
    case 'reset': return { outcome: 'reset', retryable: shouldRetry({ ...context, failure: { kind } }), code: ErrorCode.UPSTREAM_RESET }
    case 'timeout': return { outcome: 'timeout', retryable: false, code: ErrorCode.UPSTREAM_TIMEOUT }
    default: return { outcome: 'unclassified', retryable: false, code: ErrorCode.UPSTREAM_ERROR }
  }
}

/** The code of an error from the proxy path: ours when it carries one, else what judgeAttempt makes of it. */
export function failureCode (error: unknown): ErrorCode {
  const code = (error as { code?: unknown } | null)?.code
  if (typeof code === 'string' && (Object.values(ErrorCode) as string[]).includes(code)) return code as ErrorCode
  const kind = classifyError(error)
  return kind === 'timeout' ? ErrorCode.UPSTREAM_TIMEOUT : kind === 'connect-failure' ? ErrorCode.UPSTREAM_CONNECT : kind === 'reset' ? ErrorCode.UPSTREAM_RESET : ErrorCode.UPSTREAM_ERROR
}
