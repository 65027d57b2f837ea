import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createServer, type AddressInfo } from 'node:net'
import { connect } from 'node:tls'
import { readClientHello } from '../../../src/tls/client-hello.js'

/** The first bytes a real TLS client (Node's, OpenSSL underneath) sends. */
async function clientHelloOf (servername: string | undefined): Promise<Buffer> {
  const server = createServer()
  await new Promise<void>((resolve) => { server.listen(0, '127.0.0.1', resolve) })
  try {
    return await new Promise<Buffer>((resolve) => {
      server.once('connection', (socket) => {
        socket.once('data', (chunk: Buffer) => { resolve(chunk); socket.destroy() })
      })
      const client = connect({ host: '127.0.0.1', port: (server.address() as AddressInfo).port, servername, rejectUnauthorized: false })
      client.on('error', () => {})
    })
  } finally {
    server.close()
  }
}

test('ClientHello: the server name is read from a real client\'s hello, whole or byte by byte; none without SNI', async () => {
  const hello = await clientHelloOf('WWW.Example.com')
  assert.deepEqual(readClientHello(hello), { kind: 'hello', serverName: 'www.example.com' })
  for (let cut = 0; cut < hello.length; cut++) assert.equal(readClientHello(hello.subarray(0, cut)).kind, 'incomplete', `${cut} bytes`)
  // The same hello split over two TLS records (a middlebox or a large hello does it).
  const body = hello.subarray(5)
  const split = Buffer.concat([Buffer.from([22, 3, 1, 0, 40]), body.subarray(0, 40), Buffer.from([22, 3, 1, (body.length - 40) >> 8, (body.length - 40) & 0xff]), body.subarray(40)])
  assert.deepEqual(readClientHello(split), { kind: 'hello', serverName: 'www.example.com' })
  assert.deepEqual(readClientHello(await clientHelloOf(undefined)), { kind: 'hello', serverName: undefined })
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
