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
 * `duties` is the node:http floor plus what the spec asks of every request,
 * written as plainly and cheaply as the floor itself (withDuties below): what
 * those duties cost on this stack with no srvgate structure around them.
 *
 *   node bench/stack-floor.mjs fastify|http|duties|tls PORT WORKERS ORIGIN...
 */
import cluster from 'node:cluster'
import { createServer } from 'node:http'
import { createSecureServer } from 'node:http2'
import { readFileSync } from 'node:fs'
import Fastify from 'fastify'
import { Pool } from 'undici'
import { randomUUID } from 'node:crypto'

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
  } else if (server === 'duties') {
    createServer(withDuties(forward)).listen(Number(port), '127.0.0.1')
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

/**
 * The spec's per-request duties around `forward`, nothing else: a request id
 * (the client's when well-formed, else a UUID) on the request and the answer,
 * the forwarding fields (X-Forwarded-For/-Proto/-Host, Forwarded, X-Real-IP)
 * for an untrusted peer, a route by exact Host, the in-flight gauge, the
 * requests counter and the duration histogram, and one JSON access line of
 * srvgate's fields, gathered into one stdout write per 20 ms as srvgate's
 * are. The metrics are plain tallies a scrape would read (as srvgate keeps
 * them, admin/histogram-tally.ts): prom-client's own observe() hashes its
 * labels on every call and, measured here, cost more than all the rest.
 */
function withDuties (forward) {
  const BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]
  const routes = new Map([['www.example.com', { frontend: 'www', backend: 'web', requests: 0, seconds: 0, counts: new Array(BUCKETS.length + 1).fill(0) }]])
  const unrouted = { frontend: undefined, backend: undefined, requests: 0, seconds: 0, counts: new Array(BUCKETS.length + 1).fill(0) }
  let inFlight = 0
  const head = `,"pid":${process.pid},"hostname":"floor"`
  let batch = ''
  const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/
  return (request, response) => {
    const started = performance.now()
    const headers = request.headers
    const host = headers.host ?? ''
    const route = routes.get(host) ?? unrouted
    const given = headers['x-request-id']
    const requestId = typeof given === 'string' && REQUEST_ID.test(given) ? given : randomUUID()
    const peer = request.socket.remoteAddress ?? ''
    headers['x-forwarded-for'] = peer
    headers['x-forwarded-proto'] = 'http'
    headers['x-forwarded-host'] = host
    headers.forwarded = `for=${peer};host="${host}";proto=http`
    headers['x-real-ip'] = peer
    headers['x-request-id'] = requestId
    response.setHeader('x-request-id', requestId)
    inFlight++
    response.once('finish', () => {
      inFlight--
      const ms = Math.round((performance.now() - started) * 100) / 100
      const seconds = ms / 1000
      let bucket = 0
      while (bucket < BUCKETS.length && seconds > BUCKETS[bucket]) bucket++
      route.counts[bucket]++
      route.requests++
      route.seconds += seconds
      if (batch === '') setTimeout(() => { process.stdout.write(batch); batch = '' }, 20)
      batch += `{"level":"info","time":"${new Date().toISOString()}"${head},"requestId":"${requestId}","clientIp":"${peer}","method":"${request.method}","host":"${host}","path":"${request.url}","httpVersion":"${request.httpVersion}","status":${response.statusCode},"durationMs":${ms},"bytesIn":0,"bytesOut":0,"userAgent":"${headers['user-agent'] ?? ''}","frontend":"${route.frontend}","backend":"${route.backend}","instance":"-","upstreamStatus":${response.statusCode},"retries":0,"msg":"request"}\n`
    })
    forward(request, response)
  }
}
