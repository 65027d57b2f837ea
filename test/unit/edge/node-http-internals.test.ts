/**
 * Node's private HTTP/1.1 server shape that edge/node-http-internals.ts reads
 * (socket._httpMessage): a real server and a real socket, so a Node upgrade
 * that changes it fails here, not in a drain or a malformed body.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createServer, type ServerResponse } from 'node:http'
import { connect, type Socket } from 'node:net'
import { once } from 'node:events'
import { responseOnSocket } from '../../../src/edge/node-http-internals.js'

const PORT = 22610

test('responseOnSocket: the response a socket is writing while its request is under way; none before, between and after requests', async (t) => {
  const seen: Array<{ during: ServerResponse | undefined, response: ServerResponse, afterFinish: ServerResponse | undefined }> = []
  let atConnection: ServerResponse | undefined | 'unset' = 'unset'
  let serverSocket: Socket | undefined
  const server = createServer((request, response) => {
    const entry = { during: responseOnSocket(request.socket), response, afterFinish: undefined as ServerResponse | undefined }
    seen.push(entry)
    response.on('finish', () => { entry.afterFinish = responseOnSocket(request.socket) })
    response.end('ok')
  })
  server.on('connection', (socket: Socket) => {
    serverSocket = socket
    atConnection = responseOnSocket(socket)
  })
  server.listen(PORT, '127.0.0.1')
  await once(server, 'listening')
  t.after(() => { server.close() })
  const client = connect(PORT, '127.0.0.1')
  t.after(() => { client.destroy() })
  await once(client, 'connect')
  let received = ''
  client.setEncoding('utf8')
  client.on('data', (chunk: string) => { received += chunk })
  // Two requests on one keep-alive connection, one after the other.
  for (let index = 1; index <= 2; index++) {
    client.write(`GET /${index} HTTP/1.1\r\nhost: x\r\n\r\n`)
    const deadline = Date.now() + 5000
    while (received.split('HTTP/1.1 200').length - 1 < index && Date.now() < deadline) await new Promise((resolve) => setImmediate(resolve))
  }
  assert.equal(atConnection, undefined, 'no response on a socket that has sent nothing yet')
  assert.equal(seen.length, 2)
  for (const [index, entry] of seen.entries()) {
    assert.equal(entry.during, entry.response, `request ${index + 1}: its own response, while it is under way`)
    assert.equal(entry.afterFinish, undefined, `request ${index + 1}: none once its response finished`)
  }
  assert.equal(responseOnSocket(serverSocket as Socket), undefined, 'none between requests on a keep-alive connection')
})

test('takeConnectionListener: Node\'s own listener is taken off the server, and a socket handed to it later (bytes read first, given back) is served as before', async (t) => {
  const { takeConnectionListener } = await import('../../../src/edge/node-http-internals.js')
  const server = createServer((_request, response) => { response.end('served') })
  const http1 = takeConnectionListener(server)
  assert.equal(server.listeners('connection').some((listener) => listener.name === 'connectionListener'), false, 'taken off')
  server.on('connection', (socket: Socket) => {
    // What edge/h2c-listener.ts does: read the first bytes, give them back, hand the socket over.
    socket.once('data', (chunk: Buffer) => {
      socket.pause()
      socket.unshift(chunk)
      http1(socket)
      socket.resume()
    })
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.after(() => { server.close() })
  const answer = await fetch(`http://127.0.0.1:${(server.address() as { port: number }).port}/`)
  assert.equal(await answer.text(), 'served')
  assert.throws(() => takeConnectionListener(server), /connectionListener/, 'a server without it fails loudly')
})
