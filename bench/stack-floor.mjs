/**
 * The stack's floor: undici's dispatch forwarding to the instances
 * round-robin, behind fastify (the stack srvgate is built on) or behind bare
 * node:http, with none of srvgate's code (no routing, failover, header
 * rewriting, ids, metrics or logs). The peers bench runs both beside srvgate:
 * what the named stack itself costs a request, and what tail it has, at the
 * same load on the same box. `tls` is the HTTPS floor: node:http2's secure
 * server with allowHTTP1 (srvgate's HTTPS listener: HTTP/2 and HTTP/1.1 by
 * ALPN) and the compat API, with the certificate in FLOOR_CERT / FLOOR_KEY.
 *
 *   node bench/stack-floor.mjs fastify|http|tls PORT WORKERS ORIGIN...
 */
import cluster from 'node:cluster'
import { createServer } from 'node:http'
import { createSecureServer } from 'node:http2'
import { readFileSync } from 'node:fs'
import Fastify from 'fastify'
import { Pool } from 'undici'

const [server, port, workers, ...origins] = process.argv.slice(2)

if (cluster.isPrimary && Number(workers) > 1) {
  for (let index = 0; index < Number(workers); index++) cluster.fork()
  process.on('SIGTERM', () => { for (const worker of Object.values(cluster.workers ?? {})) worker?.kill('SIGTERM'); process.exit(0) })
} else {
  const pools = origins.map((origin) => new Pool(origin, { connections: 256 }))
  let next = 0
  const forward = (request, response) => {
    const pool = pools[next++ % pools.length]
    // Hop-by-hop fields stay here (a client's Connection: close would close the instance's connection too), and
    // HTTP/2's pseudo-headers are not fields; srvgate drops the same ones.
    const headers = {}
    for (const name in request.headers) {
      if (name[0] !== ':' && name !== 'connection' && name !== 'keep-alive' && name !== 'transfer-encoding' && name !== 'upgrade') headers[name] = request.headers[name]
    }
    if (headers.host === undefined && request.headers[':authority'] !== undefined) headers.host = request.headers[':authority']
    pool.dispatch({ method: request.method, path: request.url, headers, body: null }, {
      onConnect () {},
      onHeaders (statusCode, rawHeaders) {
        const headers = {}
        for (let index = 0; index < rawHeaders.length; index += 2) {
          const name = rawHeaders[index].toString('latin1').toLowerCase()
          if (name !== 'connection' && name !== 'keep-alive' && name !== 'transfer-encoding') headers[name] = rawHeaders[index + 1].toString('latin1')
        }
        response.writeHead(statusCode, headers)
        return true
      },
      onData (chunk) { return response.write(chunk) },
      onComplete () { response.end() },
      onError () { if (!response.headersSent) response.statusCode = 502; response.end() }
    })
  }
  if (server === 'http') {
    createServer(forward).listen(Number(port), '127.0.0.1')
  } else if (server === 'tls') {
    createSecureServer({ allowHTTP1: true, cert: readFileSync(process.env.FLOOR_CERT), key: readFileSync(process.env.FLOOR_KEY) }, forward).listen(Number(port), '127.0.0.1')
  } else {
    const app = Fastify({ logger: false })
    app.removeAllContentTypeParsers()
    app.all('/*', (request, reply) => {
      reply.hijack()
      forward(request.raw, reply.raw)
    })
    await app.listen({ port: Number(port), host: '127.0.0.1' })
  }
  process.on('SIGTERM', () => process.exit(0))
}
