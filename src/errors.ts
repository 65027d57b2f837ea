/**
 * The one registry of error codes. Codes are stable: scripts and dashboards
 * match on them, so a code is never renamed or reused. docs/ERRORS.md lists
 * every code; test/unit/errors.test.ts keeps the two in step.
 */
export const ErrorCode = {
  CONFIG_INVALID: 'SG_ERR_CONFIG_INVALID',
  CONFIG_READ: 'SG_ERR_CONFIG_READ',
  CONFIG_PARSE: 'SG_ERR_CONFIG_PARSE',
  DNS_TIMEOUT: 'SG_ERR_DNS_TIMEOUT',
  DNS_UNREACHABLE: 'SG_ERR_DNS_UNREACHABLE',
  DNS_SERVFAIL: 'SG_ERR_DNS_SERVFAIL',
  DNS_REFUSED: 'SG_ERR_DNS_REFUSED',
  DNS_BAD_RCODE: 'SG_ERR_DNS_BAD_RCODE',
  DNS_ANSWER_REJECTED: 'SG_ERR_DNS_ANSWER_REJECTED',
  DNS_TCP_FAILED: 'SG_ERR_DNS_TCP_FAILED',
  DNS_NO_ADDRESS: 'SG_ERR_DNS_NO_ADDRESS',
  ROUTE_NOT_FOUND: 'SG_ERR_ROUTE_NOT_FOUND',
  REQUEST_MALFORMED: 'SG_ERR_REQUEST_MALFORMED',
  REQUEST_HEADERS_TOO_LARGE: 'SG_ERR_REQUEST_HEADERS_TOO_LARGE',
  METHOD_NOT_ALLOWED: 'SG_ERR_METHOD_NOT_ALLOWED',
  MISDIRECTED_REQUEST: 'SG_ERR_MISDIRECTED_REQUEST',
  CLIENT_TIMEOUT: 'SG_ERR_CLIENT_TIMEOUT',
  CLIENT_GONE: 'SG_ERR_CLIENT_GONE',
  NO_HEALTHY_INSTANCE: 'SG_ERR_NO_HEALTHY_INSTANCE',
  TEMPLATE_RATE_LIMITED: 'SG_ERR_TEMPLATE_RATE_LIMITED',
  UPSTREAM_CONNECT: 'SG_ERR_UPSTREAM_CONNECT',
  UPSTREAM_RESET: 'SG_ERR_UPSTREAM_RESET',
  UPSTREAM_TIMEOUT: 'SG_ERR_UPSTREAM_TIMEOUT',
  /** A gRPC call's own deadline (grpc-timeout) passed: the client's budget, not the instance's fault. */
  DEADLINE_EXCEEDED: 'SG_ERR_DEADLINE_EXCEEDED',
  UPSTREAM_ERROR: 'SG_ERR_UPSTREAM_ERROR',
  CLI_USAGE: 'SG_ERR_CLI_USAGE',
  LISTEN_FAILED: 'SG_ERR_LISTEN_FAILED',
  LIBRARY_SHAPE: 'SG_ERR_LIBRARY_SHAPE',
  CLIENT_CLOSED: 'SG_ERR_CLIENT_CLOSED',
  ADMIN_UNREACHABLE: 'SG_ERR_ADMIN_UNREACHABLE',
  ADMIN_UNAUTHORIZED: 'SG_ERR_ADMIN_UNAUTHORIZED',
  PID_FILE_IN_USE: 'SG_ERR_PID_FILE_IN_USE',
  PID_FILE_UNUSABLE: 'SG_ERR_PID_FILE_UNUSABLE',
  ACME_ORDER_FAILED: 'SG_ERR_ACME_ORDER_FAILED',
  ACME_RATE_LIMITED: 'SG_ERR_ACME_RATE_LIMITED',
  ACCESS_DENIED: 'SG_ERR_ACCESS_DENIED',
  AUTH_REQUIRED: 'SG_ERR_AUTH_REQUIRED',
  AUTH_REFUSED: 'SG_ERR_AUTH_REFUSED',
  AUTH_UNAVAILABLE: 'SG_ERR_AUTH_UNAVAILABLE',
  RATE_LIMITED: 'SG_ERR_RATE_LIMITED',
} as const
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode]

export class GatewayError extends Error {
  override name = 'GatewayError'
  readonly code: ErrorCode
  constructor (code: ErrorCode, message: string, options?: ErrorOptions) {
    super(message, options)
    this.code = code
  }
}

/** One problem in a configuration document, located by its path (`backends.web.retry.attempts`) and, from a file, its line. */
export type ConfigIssue = {
  readonly path: string
  readonly message: string
  readonly line?: number
  /** Where in the text a YAML syntax error sits (1-based), with `line`: the issue is located by place, not path. */
  readonly column?: number
  /** The file the text came from, when known (`gateway.yaml:10:30`). */
  readonly file?: string
  /** The source line and a caret under `column`, for a person's terminal (never in one-line forms). */
  readonly excerpt?: readonly string[]
}

export class ConfigError extends GatewayError {
  override name = 'ConfigError' as const
  /** Every problem found, so a person fixes the file in one pass. */
  readonly issues: readonly ConfigIssue[]
  constructor (code: ErrorCode, issues: readonly ConfigIssue[], options?: ErrorOptions) {
    super(code, issues.map(formatIssue).join('\n'), options)
    this.issues = issues
  }
}

/** One line: `path: message (line N)`, or `file:line:column: message` for an issue located by place. */
export function formatIssue (issue: ConfigIssue): string {
  const text = issue.path === '' ? issue.message : `${issue.path}: ${issue.message}`
  if (issue.line !== undefined && issue.column !== undefined) {
    return `${issue.file === undefined ? `line ${issue.line}, column ${issue.column}` : `${issue.file}:${issue.line}:${issue.column}`}: ${text}`
  }
  return issue.line === undefined ? text : `${text} (line ${issue.line})`
}

export class DnsError extends GatewayError {
  override name = 'DnsError' as const
  /** `host:port` of the nameserver that failed, when one is to blame. */
  readonly nameserver: string | undefined
  /** The DNS rcode received, when the failure is an answer's rcode. */
  readonly rcode: number | undefined
  constructor (code: ErrorCode, message: string, details: { nameserver?: string, rcode?: number } = {}, options?: ErrorOptions) {
    super(code, message, options)
    this.nameserver = details.nameserver
    this.rcode = details.rcode
  }
}

/** A request that could not be served; proxy/error-reply.ts turns the code into a status. */
export class ProxyError extends GatewayError {
  override name = 'ProxyError' as const
  /** The backend concerned, when one was chosen (named in 503 bodies). */
  readonly backend: string | undefined
  /** Seconds after which asking again may succeed (a refusal that says when: Retry-After). */
  readonly retryAfterS: number | undefined
  /** A 401's WWW-Authenticate challenge (RFC 9110 §11.6.1). */
  readonly challenge: string | undefined
  constructor (code: ErrorCode, message: string, backend?: string, options?: ErrorOptions & { readonly retryAfterS?: number, readonly challenge?: string }) {
    super(code, message, options)
    this.backend = backend
    this.retryAfterS = options?.retryAfterS
    this.challenge = options?.challenge
  }
}

/**
 * An error made without a stack trace: a refusal answered to a flood (403,
 * 401, 429) is made per request, and capturing a stack is most of its cost
 * (~5 µs of ~5.3). Its code and message say all there is to say.
 */
export function withoutStack<T extends Error> (make: () => T): T {
  const limit = Error.stackTraceLimit
  Error.stackTraceLimit = 0
  try {
    return make()
  } finally {
    Error.stackTraceLimit = limit
  }
}

/**
 * srvgate/client after close(): discovery has stopped and the pools are
 * closing, so a request would run on a view that no longer changes (undici's
 * Agent refuses the same way, with its own ClientClosedError).
 */
export class ClientClosedError extends GatewayError {
  override name = 'ClientClosedError' as const
  constructor () { super(ErrorCode.CLIENT_CLOSED, 'the srvgate client is closed: close() was called') }
}

/**
 * A library's private field is not what srvgate's one module for that library
 * reads (after an upgrade of the library). That module's unit test fails first.
 */
export class LibraryShapeError extends GatewayError {
  override name = 'LibraryShapeError' as const
  /** The package whose shape changed (`prom-client`). */
  readonly library: string
  constructor (library: string, message: string) {
    super(ErrorCode.LIBRARY_SHAPE, `${library}: ${message}: its private storage changed shape`)
    this.library = library
  }
}

export class UsageError extends GatewayError {
  override name = 'UsageError' as const
  constructor (message: string) { super(ErrorCode.CLI_USAGE, message) }
}

/**
 * A listener could not be bound at start: which field of the file, which
 * address, and why in a person's words (as the demo names its --port option).
 */
export class ListenError extends GatewayError {
  override name = 'ListenError' as const
  /** The configuration field: `listen.http`, `dns.listen[1]`. */
  readonly path: string
  /** `host:port` as configured. */
  readonly address: string
  constructor (path: string, address: string, cause: unknown) {
    super(ErrorCode.LISTEN_FAILED, `${path}: ${address}: ${listenReason(path, cause)}`, { cause })
    this.path = path
    this.address = address
  }

  /** A bind of one entry of a list (`dns.listen`) that failed: the entry whose port the error carries, else the first. */
  static ofEntry (path: string, entries: ReadonlyArray<{ readonly port: number, readonly label: string }>, cause: unknown): ListenError {
    const { port } = cause as { port?: number }
    const index = Math.max(0, entries.findIndex((entry) => entry.port === port))
    return new ListenError(`${path}[${index}]`, entries[index]?.label ?? '', cause)
  }
}

function listenReason (path: string, cause: unknown): string {
  switch ((cause as NodeJS.ErrnoException | undefined)?.code) {
    case 'EADDRINUSE': return `already in use (EADDRINUSE): stop what listens there, or choose another address for ${path}`
    case 'EACCES': return 'permission denied (EACCES): ports below 1024 need root or CAP_NET_BIND_SERVICE'
    case 'EADDRNOTAVAIL': return 'not an address of this machine (EADDRNOTAVAIL)'
    default: return `cannot listen: ${cause instanceof Error ? cause.message : String(cause)}`
  }
}

/**
 * A command that asks a running gateway's admin API (`srvgate reload`) did
 * not get an answer it can use: nothing listens there, no answer in time, the
 * token was refused, or the answer is not srvgate's. The gateway did not act.
 */
export class AdminRequestError extends GatewayError {
  override name = 'AdminRequestError' as const
  /** The admin URL asked (never with a token: tokens travel in a header). */
  readonly url: string
  constructor (code: ErrorCode, url: string, message: string, options?: ErrorOptions) {
    super(code, message, options)
    this.url = url
  }
}

/** `run --pid-file PATH` cannot use PATH: it names a running process, or holds something else. */
export class PidFileError extends GatewayError {
  override name = 'PidFileError' as const
  constructor (code: ErrorCode, readonly path: string, message: string, options?: ErrorOptions) {
    super(code, message, options)
  }
}

/**
 * An ACME order that failed (tls.acme). `retryAfterMs`: the CA said when to
 * ask again (a 429 or 503 with Retry-After, RFC 8555 §6.6); no order for the
 * name is made before then.
 */
export class AcmeError extends GatewayError {
  override name = 'AcmeError'
  readonly retryAfterMs: number | undefined
  /** Rate limited: the CA's Retry-After; else the order failed. */
  constructor (message: string, options: ErrorOptions & { readonly retryAfterMs?: number } = {}) {
    super(options.retryAfterMs === undefined ? ErrorCode.ACME_ORDER_FAILED : ErrorCode.ACME_RATE_LIMITED, message, options)
    this.retryAfterMs = options.retryAfterMs
  }
}
