/**
 * `srvgate run` for a bench section: free ports, a config written from
 * `body` (listen and drain lines added), started quiet, ready when /readyz
 * answers 200 (bounded: 10 s).
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { freePort } from '../test/helpers/dns-server.js'
import { send } from '../test/helpers/http.js'

export type BenchGateway = { readonly port: number, readonly adminPort: number, readonly child: ChildProcess }

export async function spawnBenchGateway (name: string, body: string, listenMore = ''): Promise<BenchGateway> {
  const port = await freePort()
  const adminPort = await freePort()
  const dir = mkdtempSync(join(tmpdir(), `srvgate-${name}-`))
  writeFileSync(join(dir, 'gateway.yaml'), `
listen: { http: "127.0.0.1:${port}", admin: "127.0.0.1:${adminPort}"${listenMore} }
drain: { delay: 0s, timeout: 5s }
${body}`)
  // BENCH_GATEWAY_NODE_FLAGS="--cpu-prof --cpu-prof-dir=/tmp/prof": profile the gateway a section runs.
  const nodeFlags = (process.env.BENCH_GATEWAY_NODE_FLAGS ?? '').split(' ').filter(Boolean)
  const child = spawn(process.execPath, [...nodeFlags, 'dist/main.js', 'run', '-c', join(dir, 'gateway.yaml'), '--log-level', 'error'], { stdio: 'ignore' })
  for (let attempt = 0; attempt < 100; attempt++) {
    try { if ((await send(`http://127.0.0.1:${adminPort}/readyz`, { agent: false })).status === 200) break } catch {}
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  return { port, adminPort, child }
}
