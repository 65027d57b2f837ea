/**
 * The child process check-in-child.ts starts: reads one configuration's text
 * (v8-serialized on stdin), checks it, and answers once (v8-serialized on
 * stdout), then exits. The text's `${NAME}`s are substituted from the
 * environment the request carries (the gateway's), not this process's.
 */
import { deserialize, serialize } from 'node:v8'
import { ConfigError } from '../errors.js'
import type { CheckAnswer, CheckRequest } from './check-in-child.js'
import { checkConfigText } from './load.js'

const chunks: Buffer[] = []
for await (const chunk of process.stdin) chunks.push(chunk as Buffer)
const { text, env, file } = deserialize(Buffer.concat(chunks)) as CheckRequest
let answer: CheckAnswer
try {
  answer = { checked: checkConfigText(text, env, file) }
} catch (error) {
  answer = error instanceof ConfigError
    ? { configError: { code: error.code, issues: error.issues } }
    : { crash: error instanceof Error ? error.message : String(error) }
}
process.stdout.write(serialize(answer))
