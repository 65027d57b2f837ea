/** proxy/compression.ts: which encoding a client gets, which answers are compressed, and the headers of a compressed answer (tables). */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { ENCODINGS, MAX_COMPRESSING, compressedHeaders, compressor, isCompressible, negotiate, withVary } from '../../../src/proxy/compression.js'
import { compileCompress } from '../../../src/config/compile-policies.js'
import type { CompressConfig } from '../../../src/config/types.js'

const defaults = compileCompress(true) as CompressConfig

test('negotiate: highest q wins, zstd then br then gzip among equals, q=0 refuses, * stands for the rest', () => {
  assert.deepEqual(ENCODINGS, ['zstd', 'br', 'gzip'], 'Node 24 has zstd')
  const rows: Array<[string | undefined, string | undefined]> = [
    [undefined, undefined], ['', undefined], ['identity', undefined],
    ['gzip', 'gzip'], ['gzip, deflate, br, zstd', 'zstd'], ['gzip, deflate, br', 'br'], ['GZIP', 'gzip'],
    ['br;q=0.5, gzip;q=0.8', 'gzip'], ['zstd;q=0, br;q=0, gzip', 'gzip'], ['gzip;q=0', undefined],
    ['*', 'zstd'], ['*;q=0.1, gzip', 'gzip'], ['*, zstd;q=0', 'br'], ['deflate', undefined], [' br ; q = 1 ', 'br'],
    ['gzip;q=abc', undefined], ['gzip;q=-1', undefined], ['gzip;q=1e-3', undefined], ['gzip;q=1.5', undefined], ['gzip;q=0.001', 'gzip'], ['x-gzip', 'gzip'], ['br;q=0.5, x-gzip;q=0.9', 'gzip']
  ]
  for (const [header, expected] of rows) assert.equal(negotiate(header), expected, String(header))
})

test('isCompressible: a text-like body of minBytes or more, not encoded, not a range, no no-transform, not 204/304 (a HEAD as its GET)', () => {
  const json = ['Content-Type', 'application/json; charset=utf-8']
  const rows: Array<[string, number, string[], boolean]> = [
    // [method, …]: the method is the writer's concern (a HEAD gets GET's headers, no body); listed for the reader.
    ['GET', 200, json, true],
    ['GET', 200, ['content-type', 'text/html'], true],
    ['GET', 404, ['content-type', 'text/plain'], true],
    ['GET', 200, ['content-type', 'image/png'], false],
    ['GET', 200, [], false],
    ['HEAD', 200, json, true],
    ['GET', 204, json, false],
    ['GET', 304, json, false],
    ['GET', 206, [...json, 'content-range', 'bytes 0-9/100'], false],
    ['GET', 200, [...json, 'Content-Encoding', 'gzip'], false],
    ['GET', 200, [...json, 'content-encoding', 'identity'], true],
    ['GET', 200, [...json, 'Cache-Control', 'public, no-transform'], false],
    ['GET', 200, [...json, 'cache-control', 'no-cache'], true],
    ['GET', 200, [...json, 'content-length', '1023'], false],
    ['GET', 200, [...json, 'content-length', '1024'], true]
  ]
  for (const [method, status, headers, expected] of rows) assert.equal(isCompressible(status, headers, defaults), expected, `${method} ${status} ${headers.join(' ')}`)
  const custom = compileCompress({ types: ['application/x-ndjson', 'text/*'], minBytes: 0 }) as CompressConfig
  assert.equal(isCompressible(200, ['content-type', 'application/x-ndjson', 'content-length', '3'], custom), true)
  assert.equal(isCompressible(200, ['content-type', 'application/json'], custom), false)
})

test('headers: Vary gains Accept-Encoding once; Content-Length goes, Content-Encoding is set, a strong ETag becomes weak', () => {
  const plain = ['content-type', 'text/html']
  withVary(plain)
  assert.deepEqual(plain, ['content-type', 'text/html', 'vary', 'Accept-Encoding'])
  const cookie = ['Vary', 'Cookie']
  withVary(cookie)
  assert.deepEqual(cookie, ['Vary', 'Cookie, Accept-Encoding'])
  for (const already of ['accept-encoding', 'Cookie, Accept-Encoding', '*']) {
    const headers = ['vary', already]
    withVary(headers)
    assert.deepEqual(headers, ['vary', already])
  }
  assert.deepEqual(compressedHeaders(['Content-Type', 'text/html', 'Content-Length', '5000', 'ETag', '"abc"', 'Content-Encoding', 'identity', 'Accept-Ranges', 'bytes'], 'br'),
    ['Content-Type', 'text/html', 'ETag', 'W/"abc"', 'content-encoding', 'br'])
  assert.deepEqual(compressedHeaders(['etag', 'W/"x"'], 'gzip'), ['etag', 'W/"x"', 'content-encoding', 'gzip'])
})

test(`compressors: at most ${MAX_COMPRESSING} alive in a process (each holds its window while its client reads); past it none, until one closes`, async () => {
  const alive = Array.from({ length: MAX_COMPRESSING }, (_, index) => compressor(ENCODINGS[index % ENCODINGS.length] ?? 'gzip'))
  assert.ok(alive.every((stream) => stream !== undefined))
  assert.equal(compressor('gzip'), undefined)
  const first = alive[0]
  first?.destroy()
  await new Promise((resolve) => { first?.once('close', resolve) })
  const again = compressor('gzip')
  assert.ok(again !== undefined)
  for (const stream of [...alive, again]) stream?.destroy()
})
