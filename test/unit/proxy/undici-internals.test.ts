/**
 * undici's habits with an upstream socket that proxy/undici-internals.ts
 * relies on, checked on a real undici Client over loopback. After upgrading
 * undici, this file says whether the unsolicited-100 repair still works and
 * whether it is still needed.
 */
import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { connect as netConnect, createServer, type Socket } from 'node:net'
import { join } from 'node:path'
import { Client, buildConnector } from 'undici'
import { tapUpstreamSocket, type SocketTap } from '../../../src/proxy/undici-internals.js'
import { sourceFiles } from '../../helpers/source-files.js'

const ANSWER = 'HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello'

/** A tap that filters every read and keeps what it saw. */
class RecordingTap implements SocketTap {
  readonly writes: unknown[] = []
  readonly reads: string[] = []
  readonly isFiltering = true
  wrote (chunk: unknown): void { this.writes.push(chunk) }
  filter (fresh: Buffer | null): Buffer | null {
    if (fresh !== null) this.reads.push(fresh.toString('latin1'))
    return fresh
  }
}

async function upstream (t: TestContext, port: number, answer: string): Promise<{ origin: string, heads: string[] }> {
  const heads: string[] = []
  const sockets = new Set<Socket>()
  const server = createServer((socket) => {
    sockets.add(socket)
    let buffered = ''
    socket.on('data', (chunk: Buffer) => {
      buffered += chunk.toString('latin1')
      while (buffered.includes('\r\n\r\n')) {
        heads.push(buffered.slice(0, buffered.indexOf('\r\n\r\n') + 4))
        buffered = buffered.slice(buffered.indexOf('\r\n\r\n') + 4)
        socket.write(answer)
      }
    })
  })
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve))
  t.after(async () => {
    for (const socket of sockets) socket.destroy()
    await new Promise((resolve) => server.close(resolve))
  })
  return { origin: `http://127.0.0.1:${port}`, heads }
}

function tappedClient (t: TestContext, origin: string, tap: SocketTap): Client {
  const connect = buildConnector({})
  const client = new Client(origin, {
    connect: (options, callback) => {
      connect(options, (error, socket) => {
        if (error === null && socket !== null) tapUpstreamSocket(socket as Socket, tap)
        ;(callback as (error: Error | null, socket: unknown) => void)(error, socket)
      })
    }
  })
  t.after(async () => { await client.close() })
  return client
}

test('undici writes a request head as one latin1 string opening with the request line, before any body', async (t) => {
  const { origin, heads } = await upstream(t, 24110, ANSWER)
  const tap = new RecordingTap()
  const client = tappedClient(t, origin, tap)
  const response = await client.request({ path: '/a?b=1', method: 'POST', headers: { 'x-a': '1' }, body: 'payload' })
  assert.equal(await response.body.text(), 'hello')
  const [first] = tap.writes
  assert.equal(typeof first, 'string', 'the head is one string (what InterimContinueFilter.wrote recognises)')
  assert.match(first as string, /^POST \/a\?b=1 HTTP\/1\.1\r\n/)
  assert.equal(first, heads[0], 'the whole head, and only the head, in the first write')
  assert.deepEqual(tap.writes.slice(1).map(String), ['payload'])
})

test('undici reads a response through socket.read() (the tap sees every byte before the parser)', async (t) => {
  const { origin } = await upstream(t, 24111, ANSWER)
  const tap = new RecordingTap()
  const client = tappedClient(t, origin, tap)
  for (let index = 0; index < 2; index++) {
    const response = await client.request({ path: '/', method: 'GET' })
    assert.equal(await response.body.text(), 'hello')
  }
  assert.equal(tap.reads.join(''), ANSWER + ANSWER)
})

test('undici alone still fails a request on an unsolicited 100 Continue (the repair in proxy/interim-continue.ts is still needed)', async (t) => {
  const { origin } = await upstream(t, 24112, 'HTTP/1.1 100 Continue\r\n\r\n' + ANSWER)
  const client = new Client(origin)
  t.after(async () => { await client.close() })
  await assert.rejects(client.request({ path: '/', method: 'GET' }), (error: Error) => /bad response/i.test(error.message))
})

test('read(0) (Node starting a read) leaves buffered bytes for undici, even while the tap filters', async (t) => {
  const { origin } = await upstream(t, 24113, ANSWER)
  const socket = netConnect(Number(new URL(origin).port), '127.0.0.1')
  t.after(() => { socket.destroy() })
  const tap = new RecordingTap()
  tapUpstreamSocket(socket, tap)
  await new Promise((resolve) => socket.once('connect', resolve))
  socket.write('GET / HTTP/1.1\r\nhost: a\r\n\r\n', 'latin1')
  for (let waited = 0; socket.readableLength < ANSWER.length && waited < 5000; waited += 10) await new Promise((resolve) => setTimeout(resolve, 10))
  assert.equal(socket.readableLength, ANSWER.length)
  assert.equal(socket.read(0), null)
  assert.equal(socket.readableLength, ANSWER.length, 'read(0) took nothing')
  assert.equal((socket.read() as Buffer).toString('latin1'), ANSWER)
})

test('no other module of src/ patches a socket\'s methods: the patch has one door', () => {
  const patchers = sourceFiles('src').filter((file) => /\.(read|write|end|destroy|emit|push)\s*=[^=]/.test(readFileSync(file, 'utf8')))
  assert.deepEqual(patchers, [join('src', 'proxy', 'undici-internals.ts')])
})
