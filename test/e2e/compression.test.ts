/**
 * A frontend's compress (issue 24) through the CLI: zstd, br and gzip by
 * Accept-Encoding, each decoded back to the instance's bytes; Vary always;
 * never an answer already encoded, marked no-transform, too small or not
 * text-like; streamed (an event the instance sends reaches the client
 * before the instance ends); a frontend without compress untouched.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { request as httpRequest, type IncomingMessage } from 'node:http'
import { brotliDecompressSync, createGunzip, gunzipSync, gzipSync, zstdDecompressSync } from 'node:zlib'
import { webBehindDns } from '../helpers/web-behind-dns.js'
import { SpawnedGateway } from '../helpers/spawn-gateway.js'

const JSON_BODY = Buffer.from(JSON.stringify(Array.from({ length: 400 }, (_, index) => ({ id: index, name: `instance-${index}`, healthy: index % 3 !== 0 }))))

/** GET with Accept-Encoding, the answer's raw bytes. */
async function fetchRaw (port: number, host: string, path: string, acceptEncoding?: string, method = 'GET'): Promise<{ response: IncomingMessage, body: Buffer }> {
  return await new Promise((resolve, reject) => {
    const request = httpRequest({ host: '127.0.0.1', port, path, method, agent: false, headers: { host, ...(acceptEncoding === undefined ? {} : { 'accept-encoding': acceptEncoding }) } }, (response) => {
      const chunks: Buffer[] = []
      response.on('data', (chunk: Buffer) => chunks.push(chunk))
      response.on('end', () => { resolve({ response, body: Buffer.concat(chunks) }) })
      response.on('error', reject)
    })
    request.on('error', reject)
    request.end()
  })
}

test('compress: zstd, br and gzip by Accept-Encoding, decoded back to the instance\'s bytes; Vary always; encoded, no-transform, small and binary answers untouched; streamed', async (t) => {
  const { upstream, config } = await webBehindDns(t)
  upstream.behaviour = (request, response) => {
    switch (request.url) {
      case '/data.json':
        response.writeHead(200, { 'content-type': 'application/json', 'content-length': JSON_BODY.length, etag: '"v1"', 'accept-ranges': 'bytes' })
        response.end(request.method === 'HEAD' ? undefined : JSON_BODY)
        return true
      case '/small':
        response.writeHead(200, { 'content-type': 'text/plain', 'content-length': 5 })
        response.end('small')
        return true
      case '/image':
        response.writeHead(200, { 'content-type': 'image/png' })
        response.end(JSON_BODY)
        return true
      case '/encoded':
        response.writeHead(200, { 'content-type': 'application/json', 'content-encoding': 'gzip' })
        response.end(gzipSync(JSON_BODY))
        return true
      case '/no-transform':
        response.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-transform' })
        response.end(JSON_BODY)
        return true
      case '/events':
        response.writeHead(200, { 'content-type': 'text/event-stream' })
        response.write('data: one\n\n')
        setTimeout(() => { response.end('data: two\n\n') }, 600)
        return true
      default:
        return false
    }
  }
  const gateway = await SpawnedGateway.start(t, config(`
frontends:
  - { name: site, match: { host: site.example.com }, backend: web, compress: true }
  - { name: raw, match: {}, backend: web }
`), { workers: 1 })
  const decoders = { zstd: zstdDecompressSync, br: brotliDecompressSync, gzip: gunzipSync }
  for (const [accept, encoding] of [['gzip, deflate, br, zstd', 'zstd'], ['gzip, br', 'br'], ['gzip', 'gzip']] as const) {
    const { response, body } = await fetchRaw(gateway.port, 'site.example.com', '/data.json', accept)
    assert.deepEqual([response.headers['content-encoding'], response.headers['content-length'], response.headers.vary, response.headers.etag, response.headers['accept-ranges']], [encoding, undefined, 'Accept-Encoding', 'W/"v1"', undefined], accept)
    assert.ok(body.length < JSON_BODY.length / 3, `${encoding}: ${body.length} bytes for ${JSON_BODY.length}`)
    assert.deepEqual(decoders[encoding](body), JSON_BODY, `${encoding} decodes to the instance's bytes`)
  }
  const head = await fetchRaw(gateway.port, 'site.example.com', '/data.json', 'gzip', 'HEAD')
  assert.deepEqual([head.response.headers['content-encoding'], head.response.headers.etag, head.response.headers.vary, head.body.length], ['gzip', 'W/"v1"', 'Accept-Encoding', 0], 'a HEAD gets the headers its GET would')
  const identity = await fetchRaw(gateway.port, 'site.example.com', '/data.json')
  assert.deepEqual([identity.response.headers['content-encoding'], identity.response.headers['content-length'], identity.response.headers.vary], [undefined, String(JSON_BODY.length), 'Accept-Encoding'], 'no Accept-Encoding: as sent, Vary all the same')
  for (const path of ['/small', '/image', '/no-transform']) {
    const { response, body } = await fetchRaw(gateway.port, 'site.example.com', path, 'gzip, br')
    assert.equal(response.headers['content-encoding'], undefined, path)
    assert.ok(body.length > 0, path)
  }
  const encoded = await fetchRaw(gateway.port, 'site.example.com', '/encoded', 'br')
  assert.equal(encoded.response.headers['content-encoding'], 'gzip', 'already encoded: left as it is')
  assert.deepEqual(gunzipSync(encoded.body), JSON_BODY)
  const untouched = await fetchRaw(gateway.port, 'other.example.com', '/data.json', 'gzip, br')
  assert.deepEqual([untouched.response.headers['content-encoding'], untouched.response.headers.vary, untouched.body.length], [undefined, undefined, JSON_BODY.length], 'no compress: untouched')

  // Streamed: the first event arrives, decoded, while the instance still holds the answer open.
  const started = performance.now()
  const firstEventMs = await new Promise<number>((resolve, reject) => {
    const request = httpRequest({ host: '127.0.0.1', port: gateway.port, path: '/events', agent: false, headers: { host: 'site.example.com', 'accept-encoding': 'gzip' } }, (response) => {
      assert.equal(response.headers['content-encoding'], 'gzip')
      const gunzip = createGunzip()
      response.pipe(gunzip)
      let text = ''
      gunzip.on('data', (chunk: Buffer) => {
        text += chunk.toString()
        if (text.includes('data: one')) resolve(performance.now() - started)
      })
      gunzip.on('error', reject)
    })
    request.on('error', reject)
    request.end()
  })
  assert.ok(firstEventMs < 450, `the first event came after ${firstEventMs.toFixed(0)} ms, before the instance's end at 600 ms`)
})
