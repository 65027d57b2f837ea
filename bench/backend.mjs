// A minimal HTTP backend for the proxy benchmark, in its own process: small JSON, keep-alive.
import { createServer } from 'node:http'

const body = JSON.stringify({ ok: true, instance: process.env.NAME ?? 'bench' })
const server = createServer((request, response) => {
  request.resume()
  request.on('end', () => {
    response.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) })
    response.end(body)
  })
})
server.keepAliveTimeout = 60_000
server.listen(Number(process.env.PORT ?? 0), '127.0.0.1', () => {
  process.stdout.write(`${JSON.stringify({ port: server.address().port })}\n`)
})
process.on('SIGTERM', () => { server.close(); process.exit(0) })
