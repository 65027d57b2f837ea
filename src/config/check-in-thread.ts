import { Worker } from 'node:worker_threads'
import { ConfigError, type ConfigIssue, type ErrorCode } from '../errors.js'
import type { Environment } from './environment.js'
import type { GatewayDocument } from './schema.js'

/** What checking a configuration's text yields, by value: the validated document and its warnings with their lines. */
export type CheckedDocument = { readonly document: GatewayDocument, readonly warnings: readonly ConfigIssue[] }

/** What the thread answers (check-thread.ts). */
export type CheckAnswer =
  | { readonly checked: CheckedDocument }
  | { readonly configError: { readonly code: ErrorCode, readonly issues: readonly ConfigIssue[] } }
  | { readonly crash: string }

/**
 * load.ts's checkConfigText, run in a short-lived worker thread.
 *
 * Why: the YAML parser and ajv's compiled schema (with the garbage compiling
 * it leaves) cost a process 9–13 MB of RSS for its whole life, and a
 * cluster's primary only needs them for the moment it reads the file, at
 * start and on reload. Measured on the 2-core box (2026-12-03): a process
 * that loads fastify, pino, prom-client and dns2 and listens holds 63–68 MB;
 * checking the configuration in it raised that to 76 MB. In a thread the
 * memory goes with the thread. A thread starts in 30–60 ms, once a reload.
 */
export async function checkConfigTextInThread (text: string, env: Environment, file: string): Promise<CheckedDocument> {
  // Run from the TypeScript sources (the unit tests, under tsx), a thread could not load them
  // (tsx's hooks do not reach worker threads on Node 20): checked here instead. Every test that
  // starts the built CLI goes through the thread.
  if (FROM_SOURCES) {
    const { checkConfigText } = await import('./load.js')
    return checkConfigText(text, env, file)
  }
  const worker = new Worker(THREAD_ENTRY, { workerData: { text, env: { ...env }, file } })
  const answer = await new Promise<CheckAnswer>((resolve, reject) => {
    worker.once('message', resolve)
    worker.once('error', reject)
    worker.once('exit', (code) => { reject(new Error(`the configuration check thread exited (code ${code}) without an answer`)) })
  })
  void worker.terminate()
  if ('checked' in answer) return answer.checked
  if ('configError' in answer) throw new ConfigError(answer.configError.code, answer.configError.issues)
  throw new Error(`the configuration check failed: ${answer.crash}`)
}

const FROM_SOURCES = import.meta.url.endsWith('.ts')
/** Beside this file, once built. */
const THREAD_ENTRY = new URL('./check-thread.js', import.meta.url)
