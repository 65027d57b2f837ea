/** One DNS-over-TCP connection (RFC 7766): framing, fairness per turn, back-pressure, deadlines on the ManualClock. */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { connect, createServer, type Server, type Socket } from 'node:net'
import { once } from 'node:events'
import { TcpSession, type TcpTimeout } from '../../../src/dns-face/tcp-session.js'
import type { DnsFaceTcpConfig } from '../../../src/config/types.js'
import { ManualClock } from '../../../src/util/clock.js'
import { ms } from '../../../src/util/duration.js'

const PORTS = { first: 23010, last: 23029 }
const LIMITS: DnsFaceTcpConfig = { messageTimeoutMs: ms(1000), idleTimeoutMs: ms(5000), maxConnections: 10, maxConnectionsPerSource: 10 }

type Pair = {
  readonly client: Socket
  /** The server's side of the connection, which the session drives. */
  readonly served: Socket
  readonly clock: ManualClock
  readonly timeouts: TcpTimeout[]
  readonly close: () => Promise<void>
}

type SessionOptions = { readonly answer?: (query: Buffer, served: Socket) => Buffer | undefined, readonly limits?: () => DnsFaceTcpConfig }

/** A loopback server whose one connection is a TcpSession, and a plain client socket to it. */
async function sessionPair (options: SessionOptions = {}): Promise<Pair> {
  const clock = new ManualClock()
  const timeouts: TcpTimeout[] = []
  const server = createServer()
  await listenInRange(server)
  const port = (server.address() as { port: number }).port
  const accepted = once(server, 'connection') as Promise<[Socket]>
  const client = connect(port, '127.0.0.1')
  client.on('error', () => {})
  const [served] = await accepted
  served.on('error', () => {})
  const answer = options.answer ?? ((query: Buffer) => Buffer.concat([Buffer.from('re:'), query]))
  // The session lives as long as its socket.
  new TcpSession(served, { clock, limits: options.limits ?? (() => LIMITS), answer: (query) => answer(query, served), onTimeout: (timeout) => { timeouts.push(timeout) } })
  await once(client, 'connect').catch(() => {})
  return {
    client, served, clock, timeouts,
    close: async () => {
      client.destroy()
      served.destroy()
      await new Promise<void>((resolve) => { server.close(() => { resolve() }) })
    }
  }
}

async function listenInRange (server: Server): Promise<void> {
  for (let port = PORTS.first; port <= PORTS.last; port++) {
    const listening = await new Promise<boolean>((resolve) => {
      server.once('error', () => { resolve(false) })
      server.listen(port, '127.0.0.1', () => { resolve(true) })
    })
    if (listening) return
  }
  throw new Error(`no free port in ${PORTS.first}-${PORTS.last}`)
}

const framed = (message: string | Buffer): Buffer => {
  const body = typeof message === 'string' ? Buffer.from(message) : message
  const length = Buffer.alloc(2)
  length.writeUInt16BE(body.length)
  return Buffer.concat([length, body])
}

/** The client's next `count` framed answers (bounded in time). */
async function answers (client: Socket, count: number, timeoutMs = 5000): Promise<string[]> {
  const read: string[] = []
  let pending = Buffer.alloc(0)
  return await new Promise<string[]>((resolve, reject) => {
    const timer = setTimeout(() => { done(); reject(new Error(`${read.length} of ${count} answers within ${timeoutMs} ms`)) }, timeoutMs)
    const done = (): void => { clearTimeout(timer); client.off('data', onData) }
    const onData = (chunk: Buffer): void => {
      pending = Buffer.concat([pending, chunk])
      while (pending.length >= 2 && pending.length >= 2 + pending.readUInt16BE(0)) {
        read.push(pending.toString('latin1', 2, 2 + pending.readUInt16BE(0)))
        pending = pending.subarray(2 + pending.readUInt16BE(0))
      }
      if (read.length >= count) { done(); resolve(read) }
    }
    client.on('data', onData)
  })
}

/** Until `isDone` or `timeoutMs` (real I/O crossing loopback, not timers under test). */
async function until (isDone: () => boolean, timeoutMs = 5000): Promise<void> {
  const start = performance.now()
  while (!isDone()) {
    if (performance.now() - start > timeoutMs) throw new Error('not within the time allowed')
    await new Promise((resolve) => setTimeout(resolve, 5))
  }
}

test('tcp session: messages with a two-octet length, answered in order, however the bytes are cut; no answer, no frame', async () => {
  const pair = await sessionPair({ answer: (query) => query.toString() === 'drop' ? undefined : Buffer.from(`re:${query.toString()}`) })
  try {
    const bytes = Buffer.concat(['one', 'drop', 'two', 'three'].map(framed))
    const read = answers(pair.client, 3)
    pair.client.write(bytes.subarray(0, 1))
    await until(() => pair.served.bytesRead >= 1)
    for (const [from, to] of [[1, 4], [4, 12], [12, bytes.length]] as const) {
      pair.client.write(bytes.subarray(from, to))
      await until(() => pair.served.bytesRead >= to)
    }
    assert.deepEqual(await read, ['re:one', 're:two', 're:three'])
    // Two messages in one segment, then one spread over three.
    const more = answers(pair.client, 3)
    pair.client.write(Buffer.concat([framed('four'), framed('five')]))
    const six = framed('six')
    for (const part of [six.subarray(0, 1), six.subarray(1, 3), six.subarray(3)]) pair.client.write(part)
    assert.deepEqual(await more, ['re:four', 're:five', 're:six'])
  } finally {
    await pair.close()
  }
})

test('tcp session: at most 16 messages are answered per event-loop turn; the rest in later turns, none lost', async () => {
  const batches: number[] = []
  let inBatch = 0
  const pair = await sessionPair({
    answer: (query) => {
      if (inBatch++ === 0) process.nextTick(() => { batches.push(inBatch); inBatch = 0 })
      return query
    }
  })
  try {
    // 40 one-octet messages: 120 octets, one segment on loopback.
    const read = answers(pair.client, 40)
    pair.client.write(Buffer.concat(Array.from({ length: 40 }, (_, index) => framed(String.fromCharCode(65 + index)))))
    const got = await read
    assert.deepEqual(got, Array.from({ length: 40 }, (_, index) => String.fromCharCode(65 + index)), 'all, in order')
    assert.ok(batches.every((size) => size <= 16), `turns of ${batches.join(', ')}`)
    assert.ok(batches.includes(16) && batches.length >= 3, `turns of ${batches.join(', ')}`)
  } finally {
    await pair.close()
  }
})

test('tcp session: a client that does not read its answers stops being answered past 64 KiB unread; once it reads, the rest follow', async () => {
  const ANSWER = 60_000
  const COUNT = 300
  let answered = 0
  let mostUnread = 0
  const pair = await sessionPair({
    answer: (query, served) => {
      answered++
      mostUnread = Math.max(mostUnread, served.writableLength)
      return Buffer.alloc(ANSWER, query[0])
    }
  })
  try {
    pair.client.pause()
    pair.client.write(Buffer.concat(Array.from({ length: COUNT }, () => framed('q'))))
    // The kernel's buffers take what they can; then the answering stops.
    let seen = -1
    await until(() => {
      const isStill = answered === seen
      seen = answered
      return isStill && answered > 0
    })
    await new Promise((resolve) => setTimeout(resolve, 100))
    assert.ok(answered < COUNT, `${answered} of ${COUNT} answered to a client reading none`)
    assert.ok(mostUnread <= 64 * 1024, `at most 64 KiB unread when the next was answered (${mostUnread})`)
    const read = answers(pair.client, COUNT, 20_000)
    pair.client.resume()
    assert.equal((await read).length, COUNT)
    assert.equal(answered, COUNT)
  } finally {
    await pair.close()
  }
})

test('tcp session: a silent connection is closed messageTimeout after it opened; a message trickling in gets messageTimeout from its first byte, not from its last', async () => {
  const silent = await sessionPair()
  try {
    silent.clock.advance(999)
    assert.equal(silent.served.destroyed, false)
    silent.clock.advance(1)
    assert.equal(silent.served.destroyed, true)
    assert.deepEqual(silent.timeouts, ['message'])
  } finally {
    await silent.close()
  }
  const trickle = await sessionPair()
  try {
    const read = answers(trickle.client, 1)
    trickle.client.write(framed('ok'))
    assert.deepEqual(await read, ['re:ok'])
    // Idle now: a message begins at +100, a byte more at +900; its deadline is +1100.
    trickle.clock.advance(100)
    const slow = framed('slow')
    trickle.client.write(slow.subarray(0, 1))
    await until(() => trickle.served.bytesRead >= 5)
    trickle.clock.advance(800)
    trickle.client.write(slow.subarray(1, 2))
    await until(() => trickle.served.bytesRead >= 6)
    trickle.clock.advance(199)
    assert.equal(trickle.served.destroyed, false)
    trickle.clock.advance(1)
    assert.equal(trickle.served.destroyed, true)
    assert.deepEqual(trickle.timeouts, ['message'])
  } finally {
    await trickle.close()
  }
})

test('tcp session: after an answer, with nothing under way, idleTimeout; the limits are read again at each deadline (a reload applies to the next)', async () => {
  let limits = LIMITS
  const pair = await sessionPair({ limits: () => limits })
  try {
    const read = answers(pair.client, 1)
    pair.client.write(framed('a'))
    assert.deepEqual(await read, ['re:a'])
    pair.clock.advance(4999)
    assert.equal(pair.served.destroyed, false, 'idle, not a message under way: 5 s, not 1 s')
    limits = { ...LIMITS, idleTimeoutMs: ms(2000) }
    const next = answers(pair.client, 1)
    pair.client.write(framed('b'))
    assert.deepEqual(await next, ['re:b'], 'a new message resets the deadline')
    pair.clock.advance(1999)
    assert.equal(pair.served.destroyed, false)
    pair.clock.advance(1)
    assert.equal(pair.served.destroyed, true)
    assert.deepEqual(pair.timeouts, ['idle'])
  } finally {
    await pair.close()
  }
})
