/**
 * The access log from outside (issue 22): srvgate started through its CLI,
 * asked with curl over HTTP/1.1 and HTTP/2 and with Node's HTTP/2 client.
 * Body bytes in and out are counted alike on both protocols; the query string
 * is shown as accessLog.query says; the common format's size column is the
 * body's, `-` for none, as Apache's %b.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync, writeFileSync } from 'node:fs'
import { curl, send } from '../helpers/http.js'
import { httpsConfig, httpsSetup, h2Request, h2Session, startHttps } from '../helpers/https.js'
import type { LogLine, SpawnedGateway } from '../helpers/spawn-gateway.js'

async function lineOf (gateway: SpawnedGateway, requestId: string): Promise<LogLine> {
  return await gateway.waitForLog((line) => line.requestId === requestId || (typeof line.msg === 'string' && line.msg.includes(` rid=${requestId} `)))
}

/** curl's own count of the body it downloaded (`%{size_download}`), after the body itself. */
function downloaded (stdout: string): number {
  return Number(stdout.slice(stdout.lastIndexOf('\n') + 1))
}

test('JSON lines: body bytes in and out over HTTP/1.1 and HTTP/2 (curl and node:http2) match what the client sent and received; accessLog.query shows listed keys only', async (t) => {
  const s = await httpsSetup(t)
  const { gateway, httpsPort } = await startHttps(t, httpsConfig(s, 'accessLog: { query: [q, page] }'))
  const upload = 'x'.repeat(1500)
  const resolve = ['--resolve', `www.example.com:${httpsPort}:127.0.0.1`, '--cacert', s.ca.caPath]
  for (const [version, id] of [['--http1.1', 'h1'], ['--http2', 'h2']] as const) {
    const answer = await curl([version, ...resolve, '-H', `x-request-id: curl-${id}`, '--data-binary', upload, '-w', '\n%{size_download}', `https://www.example.com:${httpsPort}/search?q=shoes&token=s3cr3t&page=2`])
    assert.equal(answer.status, 0, answer.stderr)
    const line = await lineOf(gateway, `curl-${id}`)
    assert.equal(line.httpVersion, id === 'h2' ? '2.0' : '1.1')
    assert.equal(line.bytesIn, upload.length, `${version}: the request body, not the head`)
    assert.equal(line.bytesOut, downloaded(answer.stdout), `${version}: the response body curl received`)
    assert.ok(Number(line.bytesOut) > 0)
    assert.equal(line.path, '/search')
    assert.equal(line.query, 'q=shoes&token=REDACTED&page=2', 'the token\'s value never reaches the log')
  }

  // Node's HTTP/2 client: a proxied answer and srvgate's own (404) both count their bodies.
  const session = await h2Session(t, httpsPort, 'www.example.com', s.ca.caPem)
  const proxied = await h2Request(session, { ':method': 'POST', ':path': '/up', ':authority': 'www.example.com', 'x-request-id': 'node-h2' }, [Buffer.alloc(700), Buffer.alloc(300)])
  assert.equal(proxied.status, 200)
  const proxiedLine = await lineOf(gateway, 'node-h2')
  assert.deepEqual([proxiedLine.bytesIn, proxiedLine.bytesOut], [1000, Buffer.byteLength(proxied.body)])
  const refused = await h2Request(session, { ':path': '/', ':authority': 'api.example.com', 'x-request-id': 'node-h2-404' })
  assert.equal(refused.status, 404)
  const refusedLine = await lineOf(gateway, 'node-h2-404')
  assert.deepEqual([refusedLine.status, refusedLine.bytesOut, refusedLine.query], [404, Buffer.byteLength(refused.body), undefined])
})

test('common format: the size column is the response body (curl\'s count), - for none; the request line carries the query as accessLog.query allows, and a reload changes that at once', async (t) => {
  const s = await httpsSetup(t)
  const { gateway } = await startHttps(t, httpsConfig(s, 'accessLog: { format: common, query: true }'))
  s.upstreams.forEach((upstream) => {
    upstream.behaviour = (request, response) => {
      if (request.url?.startsWith('/empty') !== true) return false
      response.writeHead(204).end()
      return true
    }
  })
  const answer = await curl(['-H', 'Host: www.example.com', '-H', 'x-request-id: common-200', '-w', '\n%{size_download}', `${gateway.url}/grep-me?a=1&b=two`])
  assert.equal(answer.status, 0, answer.stderr)
  const size = downloaded(answer.stdout)
  const line = String((await lineOf(gateway, 'common-200')).msg)
  assert.match(line, new RegExp(`"GET /grep-me\\?a=1&b=two HTTP/1\\.1" 200 ${size} "-" "curl/`), line)

  assert.equal((await curl(['-H', 'Host: www.example.com', '-H', 'x-request-id: common-204', `${gateway.url}/empty`])).status, 0)
  assert.match(String((await lineOf(gateway, 'common-204')).msg), /"GET \/empty HTTP\/1\.1" 204 - /, 'no body: -')
  const head = await curl(['-I', '-H', 'Host: nowhere.example.com', '-H', 'x-request-id: common-head', `${gateway.url}/`])
  assert.match(head.stdout, /^HTTP\/1\.1 404/)
  assert.match(String((await lineOf(gateway, 'common-head')).msg), /"HEAD \/ HTTP\/1\.1" 404 - /, 'HEAD: no body was sent')

  writeFileSync(gateway.configPath, readFileSync(gateway.configPath, 'utf8').replace('query: true', 'query: false'))
  assert.equal((await send(`${gateway.adminUrl}/admin/reload`, { method: 'POST' })).status, 200)
  await curl(['-H', 'Host: www.example.com', '-H', 'x-request-id: common-after', `${gateway.url}/grep-me?secret=1`])
  const after = String((await lineOf(gateway, 'common-after')).msg)
  assert.match(after, /"GET \/grep-me HTTP\/1\.1" 200 \d+ /)
  assert.doesNotMatch(after, /secret/)
})
