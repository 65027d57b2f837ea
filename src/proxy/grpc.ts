/**
 * What srvgate does differently for gRPC (PROTOCOL-HTTP2.md of grpc/grpc):
 * reading a call's deadline (grpc-timeout), answering its own refusals as
 * gRPC statuses, and moving a trailers-only answer's status into trailers
 * when the client's answer cannot end with its headers.
 */

/** grpc-timeout: at most 8 digits and a unit (hours down to nanoseconds). */
const TIMEOUT = /^(\d{1,8})([HMSmun])$/
const UNIT_MS: Readonly<Record<string, number>> = { H: 3_600_000, M: 60_000, S: 1000, m: 1, u: 0.001, n: 0.000001 }

/** gRPC status codes srvgate answers with. */
export const GrpcStatus = {
  CANCELLED: 1,
  UNKNOWN: 2,
  DEADLINE_EXCEEDED: 4,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  UNAUTHENTICATED: 16
} as const

/** A call's deadline as a clock time, from its grpc-timeout; undefined when absent or malformed (the call then has none, as gRPC servers read it). */
export function deadlineOf (value: string | string[] | undefined, nowMs: number): number | undefined {
  if (typeof value !== 'string') return undefined
  const match = TIMEOUT.exec(value)
  if (match === null) return undefined
  return nowMs + Math.max(1, Math.ceil(Number(match[1]) * (UNIT_MS[match[2] as string] as number)))
}

/** Whether a request is a gRPC call (its content type), so srvgate's own answers to it are statuses. */
export function isGrpc (contentType: string | string[] | undefined): boolean {
  return typeof contentType === 'string' && contentType.startsWith('application/grpc')
}

/**
 * The gRPC status for srvgate's own answer with this HTTP status (gRPC's
 * HTTP-to-gRPC mapping, and a deadline's and a rate limit's own codes).
 */
export function grpcStatusOf (httpStatus: number): number {
  switch (httpStatus) {
    case 400: return GrpcStatus.INTERNAL
    case 401: return GrpcStatus.UNAUTHENTICATED
    case 403: return GrpcStatus.PERMISSION_DENIED
    case 404: case 405: return GrpcStatus.UNIMPLEMENTED
    case 408: case 504: return GrpcStatus.DEADLINE_EXCEEDED
    case 429: case 431: return GrpcStatus.RESOURCE_EXHAUSTED
    // 421: the connection's certificate does not carry the :authority asked; another connection may serve it.
    case 421: case 502: case 503: return GrpcStatus.UNAVAILABLE
    default: return GrpcStatus.UNKNOWN
  }
}

/**
 * The status of a call whose answer broke off: its deadline passed, or the
 * instance reset the stream (gRPC's mapping of RST_STREAM codes: CANCEL is
 * CANCELLED, REFUSED_STREAM UNAVAILABLE, ENHANCE_YOUR_CALM RESOURCE_EXHAUSTED,
 * the rest INTERNAL), or the connection to it was lost (UNAVAILABLE).
 */
export function midAnswerStatus (error: { readonly code: string, readonly cause?: unknown }): number {
  if (error.code === 'SG_ERR_DEADLINE_EXCEEDED') return GrpcStatus.DEADLINE_EXCEEDED
  const rstCode = (error.cause as { rstCode?: unknown } | undefined)?.rstCode
  if (typeof rstCode !== 'number') return GrpcStatus.UNAVAILABLE
  switch (rstCode) {
    case 8: return GrpcStatus.CANCELLED
    case 7: return GrpcStatus.UNAVAILABLE
    case 11: return GrpcStatus.RESOURCE_EXHAUSTED
    default: return GrpcStatus.INTERNAL
  }
}

/** grpc-message is percent-encoded UTF-8 (bytes outside printable ASCII, and `%`). */
export function grpcMessage (text: string): string {
  let encoded = ''
  for (const byte of Buffer.from(text, 'utf8')) {
    encoded += byte >= 0x20 && byte <= 0x7e && byte !== 0x25 ? String.fromCharCode(byte) : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`
  }
  return encoded
}

/**
 * A trailers-only answer (the status in the headers, the stream ended with
 * them): everything it carries that may trail (its status and its metadata),
 * taken out of `headers` (name/value pairs) to go as trailers. Relayed through
 * Node's HTTP/2 server the headers and the stream's end go apart, and a
 * client reads a status, and trailing metadata, only from a HEADERS frame
 * that ends the stream. Undefined: not trailers-only, `headers` untouched.
 */
export function takeTrailersOnly (headers: string[], mayTrail: (lowerName: string) => boolean): Record<string, string> | undefined {
  let hasStatus = false
  for (let index = 0; index < headers.length; index += 2) {
    // Only a name as long as grpc-status can be it.
    const name = headers[index] as string
    if (name.length === 11 && name.toLowerCase() === 'grpc-status') hasStatus = true
  }
  if (!hasStatus) return undefined
  const trailers: Record<string, string> = {}
  for (let index = headers.length - 2; index >= 0; index -= 2) {
    const lower = (headers[index] as string).toLowerCase()
    if (!mayTrail(lower)) continue
    const value = headers[index + 1] as string
    trailers[lower] = trailers[lower] === undefined ? value : `${value}, ${trailers[lower]}`
    headers.splice(index, 2)
  }
  return trailers
}
