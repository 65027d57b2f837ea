/**
 * Unsolicited `100 Continue` heads: the filter on scripted byte chunks (every
 * split point), then undici through tolerantConnector against real loopback
 * upstreams that send one and that answer without it.
 */
import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { createServer, type Socket } from 'node:net'
import { Client } from 'undici'
import { InterimContinueFilter, MAX_INTERIM_HEAD, tolerantConnector } from '../../../src/proxy/interim-continue.js'

const HEAD = 'GET /x HTTP/1.1\r\nhost: web\r\nconnection: keep-alive\r\n\r\n'
const CONTINUE = 'HTTP/1.1 100 Continue\r\n\r\n'
const OK = 'HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello'

/** The bytes undici would read, `chunks` arriving one read at a time. */
function readThrough (filter: InterimContinueFilter, chunks: readonly string[]): string {
  let out = ''
  for (const chunk of chunks) {
    const read = filter.isFiltering ? filter.filter(Buffer.from(chunk, 'latin1'), false) : Buffer.from(chunk, 'latin1')
    if (read !== null) out += read.toString('latin1')
  }
  return out
}

function afterHead (): InterimContinueFilter {
  const filter = new InterimContinueFilter()
  filter.wrote(HEAD)
  return filter
}

test('nothing is filtered before a request head is written; bodies, chunk sizes and buffers start nothing', () => {
  const filter = new InterimContinueFilter()
  assert.equal(filter.isFiltering, false)
  for (const write of [Buffer.from(HEAD), 'a\r\n', 'hello world', 'get / HTTP/1.1\r\n', 'GET / HTTP/1.0\r\n\r\n']) filter.wrote(write)
  assert.equal(filter.isFiltering, false)
  filter.wrote(HEAD)
  assert.equal(filter.isFiltering, true)
})

test('a final status at once: the same bytes, and nothing filtered until the next request head', () => {
  const filter = afterHead()
  const chunk = Buffer.from(OK, 'latin1')
  assert.equal(filter.filter(chunk, false), chunk)
  assert.equal(filter.isFiltering, false)
  // A 100 line inside the body (or any later bytes) is never touched.
  assert.equal(readThrough(filter, [CONTINUE + 'tail']), CONTINUE + 'tail')
})

test('a 100 head is taken out wherever the bytes are split, one or two of them, HTTP/1.0 or 1.1, with or without a reason', () => {
  for (const interim of [CONTINUE, 'HTTP/1.0 100 Continue\r\n\r\n', 'HTTP/1.1 100\r\n\r\n', 'HTTP/1.1 100 Continue\r\nx-a: 1\r\n\r\n' + CONTINUE]) {
    const bytes = interim + OK
    for (let at = 0; at <= bytes.length; at++) {
      const filter = afterHead()
      assert.equal(readThrough(filter, [bytes.slice(0, at), bytes.slice(at)].filter((part) => part !== '')), OK, `${JSON.stringify(interim)} split at ${at}`)
      assert.equal(filter.isFiltering, false)
    }
  }
  // Byte by byte.
  assert.equal(readThrough(afterHead(), [...(CONTINUE + OK)]), OK)
})

test('not a 100: other statuses, 1xx included, and look-alikes go to the parser as they are', () => {
  for (const status of ['HTTP/1.1 101 Switching Protocols\r\n\r\n', 'HTTP/1.1 103 Early Hints\r\nlink: </a>\r\n\r\n' + OK, 'HTTP/1.1 1000 x\r\n\r\n', 'HTTP/2 100\r\n\r\n', 'garbage\r\n\r\n']) {
    assert.equal(readThrough(afterHead(), [status]), status)
  }
})

test(`an unfinished interim head past ${MAX_INTERIM_HEAD} bytes is not believed: its bytes go to the parser`, () => {
  const long = `HTTP/1.1 100 Continue\r\nx-pad: ${'a'.repeat(MAX_INTERIM_HEAD)}`
  const filter = afterHead()
  assert.equal(readThrough(filter, [long]), long)
  assert.equal(filter.isFiltering, false)
  const short = 'HTTP/1.1 100 Continue\r\nx-pad: aaaa'
  const holding = afterHead()
  assert.equal(readThrough(holding, [short]), '', 'a short unfinished head is held')
  assert.equal(readThrough(holding, ['\r\n\r\n' + OK]), OK)
})

test('a held partial head is handed over as it is when the socket ends (the parser sees the truncated answer)', () => {
  const filter = afterHead()
  assert.equal(filter.filter(Buffer.from('HTTP/1.1 1'), false), null)
  assert.equal(filter.filter(null, true)?.toString(), 'HTTP/1.1 1')
})

/** A raw upstream on loopback answering each request head with `answer(index)`, written in parts with a pause between them. */
async function upstream (t: TestContext, port: number, answer: (index: number) => readonly string[]): Promise<string> {
  const sockets = new Set<Socket>()
  const server = createServer((socket) => {
    sockets.add(socket)
    socket.setNoDelay(true)
    let buffered = ''
    let served = 0
    socket.on('data', async (chunk: Buffer) => {
      buffered += chunk.toString('latin1')
      while (buffered.includes('\r\n\r\n')) {
        buffered = buffered.slice(buffered.indexOf('\r\n\r\n') + 4)
        const parts = answer(served++)
        for (const [index, part] of parts.entries()) {
          if (index > 0) await new Promise((resolve) => setTimeout(resolve, 20))
          socket.write(part)
        }
      }
    })
  })
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve))
  t.after(async () => {
    for (const socket of sockets) socket.destroy()
    await new Promise((resolve) => server.close(resolve))
  })
  return `http://127.0.0.1:${port}`
}

async function get (client: Client): Promise<{ status: number, body: string }> {
  const response = await client.request({ path: '/x', method: 'GET', headersTimeout: 5000, bodyTimeout: 5000 })
  return { status: response.statusCode, body: await response.body.text() }
}

test('through undici: an upstream that sends 100 Continue before each answer is answered 200, twice on one connection', async (t) => {
  const origin = await upstream(t, 24100, () => [CONTINUE + OK])
  const client = new Client(origin, { connect: tolerantConnector({}) })
  t.after(async () => { await client.close() })
  assert.deepEqual(await get(client), { status: 200, body: 'hello' })
  assert.deepEqual(await get(client), { status: 200, body: 'hello' })
})

test('through undici: the 100 head split from its end and from the answer by pauses still gives the answer', async (t) => {
  const origin = await upstream(t, 24101, () => ['HTTP/1.1 100 Cont', 'inue\r\n\r\n', OK])
  const client = new Client(origin, { connect: tolerantConnector({}) })
  t.after(async () => { await client.close() })
  assert.deepEqual(await get(client), { status: 200, body: 'hello' })
})

test('through undici: an upstream that answers without a 100 (the usual case) is read untouched, answer after answer', async (t) => {
  const bodies = ['first', 'HTTP/1.1 100 Continue\r\n\r\n', 'third']
  const origin = await upstream(t, 24102, (index) => [`HTTP/1.1 200 OK\r\ncontent-length: ${bodies[index]?.length ?? 0}\r\n\r\n${bodies[index] ?? ''}`])
  const client = new Client(origin, { connect: tolerantConnector({}) })
  t.after(async () => { await client.close() })
  for (const body of bodies) assert.deepEqual(await get(client), { status: 200, body })
})
