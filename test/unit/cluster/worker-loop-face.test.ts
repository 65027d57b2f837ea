/**
 * The DNS face in a worker (issue 26): the WorkerLoop a cluster worker runs,
 * with its real WorkerGateway and DnsFace, joined to a scripted control plane
 * by the in-memory channel. Two edges of the worker's life:
 * - a replacement worker that cannot bind the face (the address gone from the
 *   host, or the port taken): it still serves HTTP and says why in its log,
 *   while a worker at start-up fails the start instead;
 * - a drain that begins while the face is being bound: the face is closed
 *   again once bound, so a drained worker holds no DNS socket.
 * The port is held by a plain UDP socket of this test (no SO_REUSEPORT), so
 * the face's bind fails as it would on a host where the address went away.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createSocket, type Socket } from 'node:dgram'
import { inProcessChannel } from '../../../src/cluster/channel.js'
import type { ToPrimary } from '../../../src/cluster/protocol.js'
import { WorkerLoop } from '../../../src/cluster/worker-loop.js'
import type { PublicAddresses } from '../../../src/data-plane/listeners.js'
import { checkConfigText } from '../../../src/config/load.js'

const ZONE = 'srvgate.internal'
/** The control plane's view of the one backend: an instance set, as a worker gets it at start. */
const BACKENDS = [{ name: 'web', snapshot: { status: 'answer', instances: [{ address: '127.0.0.1', port: 23501, priority: 0, weight: 1 }], isStale: false, refused: [] }, health: [] }] as const

// Nothing listens there: a worker never asks DNS. Checked, as the control plane sends it.
const DOCUMENT = checkConfigText(`
listen: { http: 127.0.0.1:0 }
resolvers: { consul: { nameservers: ["127.0.0.1:23553"] } }
frontends:
  - { name: www, match: { host: www.example.com }, backend: web }
backends:
  web: { discovery: { resolver: consul, srv: _web._tcp.service.consul } }
dns:
  listen: ["127.0.0.1:53"]
  zone: ${ZONE}
  names: { web: { backend: web } }
`, {}).document

async function bindUdp (port = 0): Promise<Socket> {
  const socket = createSocket('udp4')
  await new Promise<void>((resolve, reject) => {
    socket.once('error', reject)
    socket.bind({ port, address: '127.0.0.1', exclusive: true }, () => { resolve() })
  })
  return socket
}

async function close (socket: Socket): Promise<void> {
  await new Promise<void>((resolve) => { socket.close(() => { resolve() }) })
}

type Lines = string[]

/** A worker loop, the control plane's end of its channel, and what it said. */
function workerLoop (options: { readonly onListen?: () => Promise<void> | void } = {}) {
  const { primary, worker, close: closeChannel } = inProcessChannel({ error: (fields) => { throw new Error(`invalid message: ${JSON.stringify(fields)}`) } })
  const said: ToPrimary[] = []
  const logged: Lines = []
  let exited: (code: number) => void = () => {}
  const exit = new Promise<number>((resolve) => { exited = resolve })
  primary.onMessage((message) => { said.push(message) })
  const loop = new WorkerLoop({
    channel: worker,
    process: { role: 'in-process', logLevel: 'info', logDestination: { write: (line) => { logged.push(line) } } },
    listen: async (): Promise<PublicAddresses> => {
      await options.onListen?.()
      return { http: { host: '127.0.0.1', port: 1 } }
    },
    drain: async () => {},
    exit: (code) => { closeChannel(); exited(code) }
  })
  return { primary, loop, said, logged, exit }
}

/** The port bound by this test, once nothing else holds it (tried for 3 s). */
async function freed (port: number): Promise<Socket> {
  const started = Date.now()
  for (;;) {
    try {
      return await bindUdp(port)
    } catch (error) {
      if (Date.now() - started > 3_000) throw new Error(`the DNS port is still held after the drain: ${(error as Error).message}`)
      await new Promise((resolve) => setTimeout(resolve, 20))
    }
  }
}

async function until (what: string, check: () => boolean): Promise<void> {
  const started = Date.now()
  while (!check()) {
    if (Date.now() - started > 5_000) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setImmediate(resolve))
  }
}

test('a replacement worker that cannot bind the DNS face still serves HTTP and logs why; a worker at start-up fails the start', async (t) => {
  const held = await bindUdp()
  t.after(async () => { await close(held) })
  const port = (held.address()).port
  const face = { type: 'srvgate:dns-face', listen: [{ host: '127.0.0.1', port, family: 4, label: `127.0.0.1:${port}` }], workers: 2 } as const

  const replacement = workerLoop()
  replacement.primary.send({ ...face, required: false })
  replacement.primary.send({ type: 'srvgate:config', phase: 'init', generation: 1, document: DOCUMENT, backends: BACKENDS })
  await until('the replacement listening', () => replacement.said.some((message) => message.type === 'srvgate:listening'))
  assert.ok(!replacement.said.some((message) => message.type === 'srvgate:start-failed'), 'the replacement serves HTTP')
  const line = replacement.logged.map((text) => JSON.parse(text) as { level: string, msg: string, err?: { message: string } }).find((entry) => entry.msg.includes('DNS face: this worker cannot bind it'))
  assert.ok(line !== undefined, 'the log says the face is not answered here')
  assert.equal(line.level, 'error')
  assert.match(line.err?.message ?? '', new RegExp(`dns\\.listen.*127\\.0\\.0\\.1:${port}`), 'naming the field and the address')
  await replacement.loop.drain()
  assert.equal(await replacement.exit, 0)

  const starting = workerLoop()
  starting.primary.send({ ...face, required: true })
  starting.primary.send({ type: 'srvgate:config', phase: 'init', generation: 1, document: DOCUMENT, backends: BACKENDS })
  assert.equal(await starting.exit, 1, 'a worker at start-up exits 1')
  const failed = starting.said.find((message) => message.type === 'srvgate:start-failed')
  assert.ok(failed !== undefined && failed.type === 'srvgate:start-failed')
  assert.match(failed.error, /dns\.listen/, 'the start fails naming the field')
})

test('a drain that begins while the DNS face is being bound: the face is closed once bound, and the worker holds no DNS socket after it exits', async (t) => {
  // A free port, known before the worker binds it.
  const probe = await bindUdp()
  const port = probe.address().port
  await close(probe)
  const { primary, loop, said, exit } = workerLoop({
    // The drain arrives after the listeners, before the face is bound.
    onListen: () => { primary.send({ type: 'srvgate:drain' }) }
  })
  primary.send({ type: 'srvgate:dns-face', listen: [{ host: '127.0.0.1', port, family: 4, label: `127.0.0.1:${port}` }], workers: 2, required: true })
  primary.send({ type: 'srvgate:config', phase: 'init', generation: 1, document: DOCUMENT, backends: BACKENDS })
  assert.equal(await exit, 0, 'drained')
  // The face's bind and close finish after the drain's exit: the port comes free within a moment, or never.
  const again = await freed(port)
  t.after(async () => { await close(again) })
  assert.ok(loop.gateway !== undefined, 'the worker had started')
  assert.ok(!said.some((message) => message.type === 'srvgate:start-failed'))
})
