import { spawn } from 'node:child_process'
import { deserialize, serialize } from 'node:v8'
import { ConfigError, type ConfigIssue, type ErrorCode } from '../errors.js'
import { systemClock } from '../util/clock.js'
import type { Environment } from './environment.js'
import type { GatewayDocument } from './schema.js'

/** What checking a configuration's text yields, by value: the validated document and its warnings with their lines. */
export type CheckedDocument = { readonly document: GatewayDocument, readonly warnings: readonly ConfigIssue[] }

/** What the child answers (check-child.ts), v8-serialized on its stdout. */
export type CheckAnswer =
  | { readonly checked: CheckedDocument }
  | { readonly configError: { readonly code: ErrorCode, readonly issues: readonly ConfigIssue[] } }
  | { readonly crash: string }

/** What the child reads, v8-serialized on its stdin. */
export type CheckRequest = { readonly text: string, readonly env: Environment, readonly file: string }

/** A check that takes longer (a pathological file: nested YAML aliases) is killed and reported. */
const CHECK_TIMEOUT_MS = 30_000

/**
 * load.ts's checkConfigText, run in a short-lived child process.
 *
 * Why: the YAML parser and ajv's compiled schema (with the garbage compiling
 * it leaves) cost a process 9–13 MB of RSS for its whole life, and a
 * cluster's primary only needs them for the moment it reads the file, at
 * start and on reload. Measured on the 2-core box (2026-12-03): a process
 * that loads fastify, pino, prom-client and dns2 and listens holds 63–68 MB;
 * checking the configuration in it raised that to 76 MB. A worker thread
 * took the V8 heap away but left 6 MB in its malloc arena (the primary's RSS
 * was 75 MB with MALLOC_ARENA_MAX=1, 81 MB without); a child process leaves
 * nothing. It starts in ~100 ms, once a reload, and a file that would hang
 * the parser is killed after 30 s instead of hanging the gateway.
 */
export async function checkConfigTextApart (text: string, env: Environment, file: string): Promise<CheckedDocument> {
  // Run from the TypeScript sources (the unit tests, under tsx), the child could not load them
  // without tsx: checked here instead. Every test that starts the built CLI goes through the child.
  if (FROM_SOURCES) {
    const { checkConfigText } = await import('./load.js')
    return checkConfigText(text, env, file)
  }
  const answer = await askChild({ text, env: { ...env }, file })
  if ('checked' in answer) return answer.checked
  if ('configError' in answer) throw new ConfigError(answer.configError.code, answer.configError.issues)
  throw new Error(`the configuration check failed: ${answer.crash}`)
}

async function askChild (request: CheckRequest): Promise<CheckAnswer> {
  const child = spawn(process.execPath, [CHILD_ENTRY], { stdio: ['pipe', 'pipe', 'inherit'], env: {} })
  const chunks: Buffer[] = []
  child.stdout.on('data', (chunk: Buffer) => { chunks.push(chunk) })
  child.stdin.end(serialize(request))
  return await new Promise<CheckAnswer>((resolve, reject) => {
    const timer = systemClock.setTimeout(() => {
      child.kill('SIGKILL')
      reject(new Error(`the configuration check took longer than ${CHECK_TIMEOUT_MS / 1000}s: stopped`))
    }, CHECK_TIMEOUT_MS)
    child.once('error', (error) => {
      timer.cancel()
      reject(error)
    })
    child.once('close', (code, signal) => {
      timer.cancel()
      try {
        resolve(deserialize(Buffer.concat(chunks)) as CheckAnswer)
      } catch {
        reject(new Error(`the configuration check stopped without an answer (${signal ?? `code ${String(code)}`})`))
      }
    })
  })
}

const FROM_SOURCES = import.meta.url.endsWith('.ts')
/** Beside this file, once built. */
const CHILD_ENTRY = new URL('./check-child.js', import.meta.url).pathname
