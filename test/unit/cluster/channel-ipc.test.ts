/**
 * The channel over real node:cluster IPC when the other side has just gone:
 * a send that fails because the peer died a moment ago (its exit or
 * disconnect not yet seen) is dropped, never turned into an 'error' event
 * that nothing listens to and that would kill the sender. A primary killed
 * that way took every worker with it (a reload's failed worker is SIGKILLed,
 * and /admin/state asked it for its figures before its exit was seen).
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import cluster from 'node:cluster'
import { readdirSync, readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import pino from 'pino'
import { clusterWorkers } from '../../../src/cluster/cluster-workers.js'
import { PROTOCOL_VERSION } from '../../../src/cluster/protocol-version.js'

const EXEC = fileURLToPath(new URL('./fixtures/hello-worker.mjs', import.meta.url))
const CHANNEL = fileURLToPath(new URL('../../../src/cluster/channel.ts', import.meta.url))

/**
 * Dead and not yet reaped: its main thread a zombie (Z in /proc/PID/stat) and
 * no other thread left (its files, the IPC pipe among them, close with the last).
 */
function isDeadUnreaped (pid: number): boolean {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) === 'Z' && readdirSync(`/proc/${pid}/task`).length <= 1
}

test('the primary sends to a worker killed a moment ago (dead, its exit not yet seen): dropped, no error event, then the close notice', async (t) => {
  const spawner = clusterWorkers(EXEC, [String(PROTOCOL_VERSION), '23530'])
  spawner.setup()
  const worker = spawner.spawn(pino({ level: 'silent' }))
  t.after(() => { try { process.kill(worker.pid ?? 0, 'SIGKILL') } catch {} })
  await new Promise<void>((resolve) => { const stop = worker.channel.onMessage((message) => { if (message.type === 'srvgate:hello') { stop(); resolve() } }) })
  const clusterWorker = cluster.workers?.[worker.id]
  assert.ok(clusterWorker !== undefined)
  const errors: Error[] = []
  clusterWorker.on('error', (error: Error) => { errors.push(error) })
  let closed = false
  worker.channel.onClose(() => { closed = true })
  const pid = worker.pid as number
  // Killed, and waited for synchronously: the event loop has not run, so the primary still
  // thinks the worker connected, while the kernel has closed its end of the pipe.
  process.kill(pid, 'SIGKILL')
  const deadline = Date.now() + 5000
  while (!isDeadUnreaped(pid)) assert.ok(Date.now() < deadline, 'the worker is dead within 5 s')
  assert.equal(worker.isConnected(), true, 'the race this test is about: the exit is not seen yet')
  // The first write is taken and fails later, quietly; the next one, a tick on, fails at once (EPIPE).
  worker.channel.send({ type: 'srvgate:stats', id: 1 })
  await new Promise((resolve) => { process.nextTick(resolve) })
  assert.equal(worker.isConnected(), true)
  worker.channel.send({ type: 'srvgate:stats', id: 2 })
  await new Promise((resolve) => { process.nextTick(resolve) })
  worker.channel.send({ type: 'srvgate:drain' })
  await new Promise<void>((resolve) => { worker.onExit(() => { resolve() }) })
  await new Promise((resolve) => setImmediate(resolve))
  assert.deepEqual(errors.map((error) => (error as NodeJS.ErrnoException).code), [], 'no send error surfaces as an event')
  assert.equal(closed, true)
})

test('a worker sends to a primary gone a moment ago (its disconnect not yet seen): dropped, the worker lives on to see the close', async () => {
  // The worker's side in a child over IPC: it blocks while the parent closes the channel, then sends.
  const program = `
    const { channelToPrimary } = await import(${JSON.stringify(CHANNEL)})
    const end = channelToPrimary({ error: () => {} })
    process.on('message', (message) => {
      if (message !== 'block') return
      const until = Date.now() + 300
      while (Date.now() < until) {}
      end.send({ type: 'srvgate:prepared', generation: 1 })
      end.send({ type: 'srvgate:prepared', generation: 2 })
      end.onClose(() => { setTimeout(() => { console.log('closed and alive'); process.exit(0) }, 50) })
    })
    process.send('ready')
    setTimeout(() => { process.exit(3) }, 10_000)
  `
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', program], { stdio: ['ignore', 'pipe', 'pipe', 'ipc'] })
  let out = ''
  let err = ''
  child.stdout?.on('data', (chunk: Buffer) => { out += chunk.toString() })
  child.stderr?.on('data', (chunk: Buffer) => { err += chunk.toString() })
  await new Promise<void>((resolve) => { child.once('message', () => { resolve() }) })
  child.send('block')
  // The child is busy for 300 ms: the channel closes under it.
  await new Promise((resolve) => setTimeout(resolve, 100))
  child.disconnect()
  const code = await new Promise<number | null>((resolve) => { child.once('exit', (exitCode) => { resolve(exitCode) }) })
  assert.equal(code, 0, err)
  assert.equal(out.trim(), 'closed and alive')
})
