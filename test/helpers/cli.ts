import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'

/** The built CLI, as `npx srvgate` runs it (npm test builds first). */
export const SRVGATE_BIN = fileURLToPath(new URL('../../dist/main.js', import.meta.url))

export type CliResult = { code: number | null, stdout: string, stderr: string }

/** Run `srvgate ARGS` to completion (async: the test's own servers keep answering meanwhile). */
export async function srvgate (args: string[], options: { env?: Record<string, string>, timeoutMs?: number } = {}): Promise<CliResult> {
  const child = spawn(process.execPath, [SRVGATE_BIN, ...args], { env: { ...process.env, ...options.env }, stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (chunk: Buffer) => { stdout += chunk.toString() })
  child.stderr.on('data', (chunk: Buffer) => { stderr += chunk.toString() })
  const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 20_000)
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve))
  clearTimeout(timer)
  return { code, stdout, stderr }
}
