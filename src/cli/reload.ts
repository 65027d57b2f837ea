import { nodeHttp } from '../util/node-http.js'
import { request as httpsRequest } from 'node:https'
import type { ReloadResult } from '../admin/plugin.js'
import { AdminRequestError, ConfigError, ErrorCode, UsageError } from '../errors.js'
import { formatHostPort } from '../util/address.js'
import { formatDuration, parseDuration } from '../util/duration.js'
import { parse, type CommandBody } from './args.js'
import { ExitCode, describeError, type Output } from './output.js'

/** The environment variable `--admin URL` takes the token from (argv is visible to every user in `ps`). */
export const TOKEN_VARIABLE = 'SRVGATE_ADMIN_TOKEN'

const DEFAULT_TIMEOUT = '30s'

/** `srvgate reload`: POST /admin/reload to a running gateway, as SIGHUP does, and say how it went. */
export const reloadCommand: CommandBody = {
  usage: 'srvgate reload (-c FILE | --admin URL) [--timeout DUR] [--json]',
  help: `Asks a running gateway, through its admin listener, to reload its
configuration file, as SIGHUP does (POST /admin/reload), and prints the
outcome: applied, applied with fields that wait for a restart (listeners,
workers, ...), or refused with every error (the running configuration stays
in use). Unlike a signal, it reaches the gateway whatever started it (npx,
a shell, a supervisor).

Options:
  -c, --config FILE   the gateway's file: listen.admin says where to ask (0.0.0.0 and
                      :: are asked on loopback) and admin.token is sent if set
      --admin URL     ask here instead (http://127.0.0.1:9901, or host:port); the
                      token, if the gateway has one, comes from ${TOKEN_VARIABLE}
      --timeout DUR   how long to wait for the answer (default ${DEFAULT_TIMEOUT}; a reload
                      warms new backends first)
      --json          print the gateway's JSON answer for scripts
  -h, --help          this help

With -c, the address is FILE's: if FILE changes listen.admin, the gateway
still listens on the old one until it restarts (use --admin).

Exit codes: 0 applied (fields waiting for a restart are printed as a
warning), 1 refused (the gateway's errors are printed; also a FILE whose
listen.admin cannot be read: nothing is sent), 2 wrong usage, 3 not asked
(nothing listens there, no answer in time, token refused).`,
  run: runReload
}

async function runReload (args: string[], output: Output): Promise<ExitCode> {
  const { values } = parse({ args, strict: true, options: {
    config: { type: 'string', short: 'c' },
    admin: { type: 'string' },
    timeout: { type: 'string', default: DEFAULT_TIMEOUT },
    json: { type: 'boolean', default: false }
  } })
  if ((values.config === undefined) === (values.admin === undefined)) throw new UsageError('give either -c FILE or --admin URL')
  const timeoutMs = parseDuration(String(values.timeout))
  if (timeoutMs === undefined || timeoutMs <= 0) throw new UsageError(`--timeout must be a duration such as 30s, not "${String(values.timeout)}"`)
  let target: { url: URL, token: string | undefined }
  if (values.admin !== undefined) {
    target = { url: adminUrl(values.admin), token: process.env[TOKEN_VARIABLE] === '' ? undefined : process.env[TOKEN_VARIABLE] }
  } else {
    const file = values.config as string
    try {
      // Loaded here (the YAML parser and ajv come with it), not with the CLI that `srvgate run` is too.
      const { readAdminAccess } = await import('../config/admin-access.js')
      const access = await readAdminAccess(file)
      // A listener bound to every address answers on loopback.
      const host = access.address.host === '0.0.0.0' ? '127.0.0.1' : access.address.host === '::' ? '::1' : access.address.host
      target = { url: new URL(`http://${formatHostPort(host, access.address.port)}/admin/reload`), token: access.token }
    } catch (error) {
      if (!(error instanceof ConfigError)) throw error
      output.err(`srvgate reload: ${file}: cannot tell where the admin listener is; nothing was sent (the gateway would refuse this file too):`)
      for (const line of describeError(error)) output.err(line)
      return ExitCode.FAILED
    }
  }
  const result = await askReload(target.url, target.token, timeoutMs, values.config)
  if (values.json === true) output.out(JSON.stringify(result, null, 2))
  if (!result.ok) {
    output.err(`srvgate reload: refused; the running configuration stays in use:`)
    for (const error of result.errors) output.err(`  ${error}`)
    return ExitCode.FAILED
  }
  if (values.json !== true) output.out(`reloaded: ${result.summary}`)
  if (result.restartNeeded.length > 0) {
    output.err(`srvgate reload: warning: applied, but ${result.restartNeeded.join(', ')} ${result.restartNeeded.length === 1 ? 'is' : 'are'} bound at start: the running values stay until a restart`)
  }
  return ExitCode.OK
}

/** `--admin`: a URL or a bare host:port; the reload path is the admin API's own. */
function adminUrl (text: string): URL {
  let url: URL
  try {
    url = new URL(/^[a-z]+:\/\//i.test(text) ? text : `http://${text}`)
  } catch {
    throw new UsageError(`--admin must be a URL such as http://127.0.0.1:9901, not "${text}"`)
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new UsageError(`--admin must be an http:// or https:// URL, not "${text}"`)
  return new URL('/admin/reload', url)
}

/** POST /admin/reload; the gateway's answer when it gave one (200 applied, 422 refused), else AdminRequestError. */
async function askReload (url: URL, token: string | undefined, timeoutMs: number, file: string | undefined): Promise<ReloadResult> {
  const where = url.origin
  let answer: { status: number, body: string }
  try {
    answer = await post(url, token === undefined ? {} : { authorization: `Bearer ${token}` }, timeoutMs)
  } catch (error) {
    if ((error as Error).name === 'TimeoutError' || (error as Error).name === 'AbortError') {
      throw new AdminRequestError(ErrorCode.ADMIN_UNREACHABLE, where, `${where}: no answer within ${formatDuration(timeoutMs)}; a reload may still be running (its outcome: /admin/state lastReload, or the gateway's log)`, { cause: error })
    }
    const code = (error as NodeJS.ErrnoException).code
    const hint = file === undefined ? '' : ` (listen.admin of ${file}; a gateway started before listen.admin changed still listens on the old address: use --admin URL)`
    throw new AdminRequestError(ErrorCode.ADMIN_UNREACHABLE, where, `cannot reach the admin listener at ${where}${hint}: ${code === 'ECONNREFUSED' ? 'nothing listens there (ECONNREFUSED); is the gateway running?' : (error as Error).message}`, { cause: error })
  }
  if (answer.status === 401) {
    const fix = token === undefined ? (file === undefined ? `set ${TOKEN_VARIABLE}` : `set admin.token in ${file}`) : file === undefined ? `${TOKEN_VARIABLE} is not its admin.token` : `admin.token of ${file} is not the one the gateway runs with`
    throw new AdminRequestError(ErrorCode.ADMIN_UNAUTHORIZED, where, `${where} refused the request (401: the gateway has admin.token set; ${fix})`)
  }
  if (answer.status === 403) throw new AdminRequestError(ErrorCode.ADMIN_UNAUTHORIZED, where, `${where} refused the request (403: ${reasonOf(answer.body) ?? 'forbidden'})`)
  const result = reloadResultOf(answer.status, answer.body)
  if (result === undefined) throw new AdminRequestError(ErrorCode.ADMIN_UNREACHABLE, where, `${where} answered ${answer.status} with no reload outcome: is it srvgate's admin listener?`)
  return result
}

/** One POST with no body, node:http(s) (fetch refuses ports such as 6000 or 6667 that an admin listener may use). */
async function post (url: URL, headers: Record<string, string>, timeoutMs: number): Promise<{ status: number, body: string }> {
  const send = url.protocol === 'https:' ? httpsRequest : nodeHttp.request
  return await new Promise((resolve, reject) => {
    const request = send(url, { method: 'POST', headers: { ...headers, 'content-length': '0' }, signal: AbortSignal.timeout(timeoutMs) }, (response) => {
      let body = ''
      response.setEncoding('utf8')
      response.on('data', (chunk: string) => {
        body += chunk
        // srvgate's answer is a few KB: whatever sends more is not srvgate's admin listener.
        if (body.length > MAX_ANSWER_CHARS) response.destroy(new Error(`its answer passed ${MAX_ANSWER_CHARS / 1_000_000} MB (not srvgate's admin listener?)`))
      })
      response.on('end', () => { resolve({ status: response.statusCode ?? 0, body }) })
      response.on('error', reject)
    })
    request.on('error', reject)
    request.end()
  })
}

function reasonOf (body: string): string | undefined {
  try {
    const parsed = JSON.parse(body) as { reason?: unknown }
    return typeof parsed.reason === 'string' ? parsed.reason : undefined
  } catch {
    return undefined
  }
}

/** The answer as the admin plugin writes it; undefined for anything else. */
function reloadResultOf (status: number, body: string): ReloadResult | undefined {
  let parsed: { ok?: unknown, summary?: unknown, restartNeeded?: unknown, errors?: unknown }
  try {
    parsed = JSON.parse(body) as typeof parsed
  } catch {
    return undefined
  }
  const isStrings = (value: unknown): value is string[] => Array.isArray(value) && value.every((item) => typeof item === 'string')
  if (status === 200 && parsed.ok === true && typeof parsed.summary === 'string') {
    return { ok: true, summary: printable(parsed.summary), restartNeeded: isStrings(parsed.restartNeeded) ? parsed.restartNeeded.map(printable) : [] }
  }
  if (status === 422 && parsed.ok === false && isStrings(parsed.errors)) return { ok: false, errors: parsed.errors.map(printable) }
  return undefined
}

/** A larger answer is cut off (2 MB of UTF-16 in memory at most). */
const MAX_ANSWER_CHARS = 1_000_000

/**
 * What the answer says, safe to print on a terminal: control characters
 * (escape sequences that retitle or clear it, a newline that fakes a line of
 * output) are shown as \xHH instead of acting. The answer comes from whatever
 * listens at the admin address.
 */
function printable (text: string): string {
  return text.replace(/[\u0000-\u001f\u007f-\u009f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`)
}
