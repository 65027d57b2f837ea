/** `srvgate demo` started through the CLI, as the README's first command does. */
import { spawn, type ChildProcess } from 'node:child_process'
import type { TestContext } from 'node:test'
import { SRVGATE_BIN } from './cli.js'
import { freePort } from './dns-server.js'

export type SpawnedDemo = { port: number, adminPort: number, process: ChildProcess, output: () => string }

export async function startDemo (t: TestContext, args: string[] = []): Promise<SpawnedDemo> {
  // A port probed free can be taken before the demo binds it: try new ones.
  for (let attempt = 1; ; attempt++) {
    try {
      return await startDemoOnce(t, args)
    } catch (error) {
      if (!/already in use/.test((error as Error).message) || attempt >= 3) throw error
    }
  }
}

async function startDemoOnce (t: TestContext, args: string[]): Promise<SpawnedDemo> {
  const port = await freePort()
  const adminPort = await freePort()
  const child = spawn(process.execPath, [SRVGATE_BIN, 'demo', '--port', String(port), '--admin-port', String(adminPort), ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
  let output = ''
  child.stdout.on('data', (chunk: Buffer) => { output += chunk.toString() })
  child.stderr.on('data', (chunk: Buffer) => { output += chunk.toString() })
  t.after(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((resolve) => child.once('exit', resolve))
      child.kill('SIGINT')
      await exited
    }
  })
  const deadline = Date.now() + 20_000
  while (!output.includes('Ctrl-C stops everything.')) {
    if (child.exitCode !== null || Date.now() > deadline) throw new Error(`srvgate demo did not start:\n${output}`)
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  return { port, adminPort, process: child, output: () => output }
}
