import { test } from 'node:test'
import assert from 'node:assert/strict'
import { connect as connectTcp, createServer, type Server, type Socket } from 'node:net'
import { request } from 'node:http'
import { connect, type ConnectionOptions } from 'node:tls'
import { MAX_CLIENT_HELLO, readClientHello, type ClientHelloRead } from '../../../src/tls/client-hello.js'

const PORTS = { first: 23030, last: 23049 }

async function listenInRange (server: Server): Promise<number> {
  for (let port = PORTS.first; port <= PORTS.last; port++) {
    const listening = await new Promise<boolean>((resolve) => {
      server.once('error', () => { resolve(false) })
      server.listen(port, '127.0.0.1', () => { resolve(true) })
    })
    if (listening) return port
  }
  throw new Error(`no free port in ${PORTS.first}-${PORTS.last}`)
}

/** What a server reading the first bytes sees: each chunk as it arrived, and the reader's verdict after each. */
type Capture = { readonly bytes: Buffer, readonly chunks: readonly Buffer[], readonly reads: readonly ClientHelloRead[] }

/**
 * The first bytes a real client sends to a loopback server, read as srvgate's
 * listener reads them: chunk by chunk until the reader has a verdict (or
 * 64 KiB, or 5 s). `send` opens the client to the port.
 */
async function capture (send: (port: number) => Socket | { destroy: () => void }): Promise<Capture> {
  const server = createServer()
  const port = await listenInRange(server)
  let client: { destroy: () => void } | undefined
  try {
    return await new Promise<Capture>((resolve, reject) => {
      const timer = setTimeout(() => { reject(new Error('no verdict within 5 s')) }, 5000)
      server.once('connection', (socket) => {
        const chunks: Buffer[] = []
        const reads: ClientHelloRead[] = []
        socket.on('data', (chunk: Buffer) => {
          chunks.push(chunk)
          const bytes = Buffer.concat(chunks)
          const read = readClientHello(bytes)
          reads.push(read)
          if (read.kind !== 'incomplete' || bytes.length > 65536) {
            clearTimeout(timer)
            socket.destroy()
            resolve({ bytes, chunks, reads })
          }
        })
      })
      client = send(port)
    })
  } finally {
    client?.destroy()
    server.close()
  }
}

function tlsClient (options: Omit<ConnectionOptions, 'host' | 'port'>): (port: number) => Socket {
  return (port) => {
    const socket = connect({ host: '127.0.0.1', port, rejectUnauthorized: false, ...options })
    socket.on('error', () => {})
    return socket
  }
}

/** The first bytes a real TLS client (Node's, OpenSSL underneath) sends, whole. */
async function clientHelloOf (options: Omit<ConnectionOptions, 'host' | 'port'>): Promise<Buffer> {
  return (await capture(tlsClient(options))).bytes
}

test('ClientHello: the server name is read from a real client\'s hello, whole or byte by byte; none without SNI', async () => {
  const hello = await clientHelloOf({ servername: 'WWW.Example.com' })
  assert.deepEqual(readClientHello(hello), { kind: 'hello', serverName: 'www.example.com', protocols: [] })
  for (let cut = 0; cut < hello.length; cut++) assert.equal(readClientHello(hello.subarray(0, cut)).kind, 'incomplete', `${cut} bytes`)
  // The same hello split over two TLS records (a middlebox or a large hello does it).
  const body = hello.subarray(5)
  const split = Buffer.concat([Buffer.from([22, 3, 1, 0, 40]), body.subarray(0, 40), Buffer.from([22, 3, 1, (body.length - 40) >> 8, (body.length - 40) & 0xff]), body.subarray(40)])
  assert.deepEqual(readClientHello(split), { kind: 'hello', serverName: 'www.example.com', protocols: [] })
  // Empty handshake records before it (OpenSSL takes them): skipped, the name still read, never left to TLS.
  const empty = Buffer.from([22, 3, 1, 0, 0])
  assert.deepEqual(readClientHello(Buffer.concat([empty, empty, hello])), { kind: 'hello', serverName: 'www.example.com', protocols: [] })
  assert.equal(readClientHello(empty).kind, 'incomplete')
  assert.equal(readClientHello(Buffer.concat(Array.from({ length: 3300 }, () => empty))).kind, 'other', 'empty records bounded like any others')
  // Node sends no SNI for an IP address, nor when told not to.
  assert.deepEqual(readClientHello(await clientHelloOf({ servername: '' })), { kind: 'hello', serverName: undefined, protocols: [] })
  assert.deepEqual(readClientHello(await clientHelloOf({})), { kind: 'hello', serverName: undefined, protocols: [] })
})

test('ClientHello: the ALPN list is read beside the name (a CA\'s tls-alpn-01 validation offers acme-tls/1 alone)', async () => {
  assert.deepEqual(readClientHello(await clientHelloOf({ servername: 'a.example.com', ALPNProtocols: ['acme-tls/1'] })), { kind: 'hello', serverName: 'a.example.com', protocols: ['acme-tls/1'] })
})

/**
 * The hello with its extensions in reverse order (Chrome permutes its
 * extensions since version 110; OpenSSL puts server_name first): the same
 * octets otherwise, so every length still holds. One record is assumed.
 */
function withExtensionsReversed (hello: Buffer): Buffer {
  const out = Buffer.from(hello)
  let at = 5 + 4 + 2 + 32
  at += 1 + (hello[at] as number)
  at += 2 + hello.readUInt16BE(at)
  at += 1 + (hello[at] as number)
  const end = at + 2 + hello.readUInt16BE(at)
  at += 2
  const extensions: Buffer[] = []
  while (at < end) {
    const length = 4 + hello.readUInt16BE(at + 2)
    extensions.push(hello.subarray(at, at + length))
    at += length
  }
  Buffer.concat(extensions.reverse()).copy(out, end - extensions.reduce((sum, extension) => sum + extension.length, 0))
  return out
}

test('ClientHello: with ALPN (h2, http/1.1) offered beside it, the server name is still read, wherever it stands among the extensions', async () => {
  const hello = await clientHelloOf({ servername: 'api.example.com', ALPNProtocols: ['h2', 'http/1.1'] })
  assert.ok(hello.includes(Buffer.from('\u0002h2\u0008http/1.1', 'latin1')), 'the hello carries the ALPN list')
  assert.deepEqual(readClientHello(hello), { kind: 'hello', serverName: 'api.example.com', protocols: ['h2', 'http/1.1'] })
  const reversed = withExtensionsReversed(hello)
  assert.notDeepEqual(reversed, hello)
  assert.deepEqual(readClientHello(reversed), { kind: 'hello', serverName: 'api.example.com', protocols: ['h2', 'http/1.1'] })
  const alpnOnly = await clientHelloOf({ servername: '', ALPNProtocols: ['h2'] })
  assert.deepEqual(readClientHello(alpnOnly), { kind: 'hello', serverName: undefined, protocols: ['h2'] })
})

test('ClientHello: a hello that reaches the server in several TCP segments is incomplete until its last byte, then read', async () => {
  const hello = await clientHelloOf({ servername: 'slow.example.com', ALPNProtocols: ['h2'] })
  // A relay hands the hello on in 50-octet segments, each sent once the last has arrived.
  const seen = await capture((port) => {
    const relay = connectTcp(port, '127.0.0.1')
    relay.setNoDelay(true)
    relay.on('error', () => {})
    void (async () => {
      for (let at = 0; at < hello.length && !relay.destroyed; at += 50) {
        relay.write(hello.subarray(at, at + 50))
        const start = performance.now()
        while (relay.bytesWritten < Math.min(at + 50, hello.length) && performance.now() - start < 1000) await new Promise((resolve) => setImmediate(resolve))
        await new Promise((resolve) => setTimeout(resolve, 5))
      }
    })()
    return relay
  })
  assert.ok(seen.chunks.length > 1, `${seen.chunks.length} chunks`)
  assert.deepEqual(seen.reads.slice(0, -1).map((read) => read.kind), seen.reads.slice(0, -1).map(() => 'incomplete'))
  assert.deepEqual(seen.reads.at(-1), { kind: 'hello', serverName: 'slow.example.com', protocols: ['h2'] })
  assert.deepEqual(seen.bytes, hello)
})

test('ClientHello: a first byte that is not a TLS handshake is left to TLS at once (a plain HTTP request, a TLS alert)', async () => {
  const http = await capture((port) => {
    const sent = request({ host: '127.0.0.1', port, path: '/' })
    sent.on('error', () => {})
    sent.end()
    return sent
  })
  assert.equal(http.bytes.toString('latin1', 0, 4), 'GET ')
  assert.deepEqual(http.reads, [{ kind: 'other' }], 'the first chunk decides')
  const hello = await clientHelloOf({ servername: 'www.example.com' })
  const alert = Buffer.from(hello)
  alert[0] = 21
  assert.equal(readClientHello(alert).kind, 'other')
  assert.equal(readClientHello(alert.subarray(0, 5)).kind, 'other', 'a record header is enough to tell')
})

test('ClientHello: an oversized record or hello is not waited for: a record over 16 KiB, a real hello over 16 KiB (long ALPN list) spread over records', async () => {
  const hello = await clientHelloOf({ servername: 'www.example.com' })
  const oversized = Buffer.from(hello)
  oversized.writeUInt16BE(MAX_CLIENT_HELLO + 1, 3)
  assert.equal(readClientHello(oversized).kind, 'other', 'a record header announcing more than 16 KiB')
  assert.equal(readClientHello(oversized.subarray(0, 5)).kind, 'other', 'told from the record header alone')
  const announced = Buffer.from(hello)
  announced.writeUIntBE(MAX_CLIENT_HELLO, 6, 3)
  assert.equal(readClientHello(announced).kind, 'other', 'a hello announcing more than 16 KiB, told from its first record')
  const protocols = Array.from({ length: 80 }, (_, index) => `${String(index).padStart(3, '0')}${'p'.repeat(250)}`)
  const large = await capture(tlsClient({ servername: 'large.example.com', ALPNProtocols: protocols }))
  assert.ok(large.bytes.length > MAX_CLIENT_HELLO, `${large.bytes.length} octets`)
  assert.equal(large.bytes.readUInt16BE(3) <= MAX_CLIENT_HELLO, true, 'OpenSSL cut it into records of 16 KiB at most')
  assert.deepEqual(large.reads.at(-1), { kind: 'other' })
  assert.ok(large.bytes.length < 2 * MAX_CLIENT_HELLO, 'refused without reading it whole past the limit')
})

test('ClientHello: what is not a TLS hello is left to TLS; random bytes never throw', () => {
  assert.equal(readClientHello(Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n')).kind, 'other')
  assert.equal(readClientHello(Buffer.from([22, 3, 1, 0, 5, 2, 0, 0, 1, 0])).kind, 'other', 'a handshake that is not a ClientHello')
  let seed = 7
  const next = (): number => { seed = (seed * 1103515245 + 12345) & 0x7fffffff; return seed }
  for (let round = 0; round < 5000; round++) {
    const bytes = Buffer.from(Array.from({ length: next() % 600 }, () => next() & 0xff))
    if (round % 2 === 0 && bytes.length > 6) { bytes[0] = 22; bytes[1] = 3; bytes[5] = 1 }
    assert.ok(['incomplete', 'hello', 'other'].includes(readClientHello(bytes).kind))
  }
})
