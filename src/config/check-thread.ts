/**
 * The worker thread check-in-thread.ts starts: checks one configuration's
 * text and answers once. Every answer is plain data (structured clone).
 */
import { parentPort, workerData } from 'node:worker_threads'
import { ConfigError } from '../errors.js'
import type { CheckAnswer } from './check-in-thread.js'
import { checkConfigText, type Environment } from './load.js'

const { text, env, file } = workerData as { readonly text: string, readonly env: Environment, readonly file: string }
let answer: CheckAnswer
try {
  answer = { checked: checkConfigText(text, env, file) }
} catch (error) {
  answer = error instanceof ConfigError
    ? { configError: { code: error.code, issues: error.issues } }
    : { crash: error instanceof Error ? error.message : String(error) }
}
parentPort?.postMessage(answer)
