import type { Transform } from 'node:stream'
import { constants, createBrotliCompress, createGzip } from 'node:zlib'
import * as zlib from 'node:zlib'
import type { CompressConfig } from '../config/types.js'

/** What srvgate compresses with, best first when the client weighs them alike. */
export type Encoding = 'zstd' | 'br' | 'gzip'

/** zstd where this Node has it (22.15+, 23.8+): RFC 8878, Chrome and Firefox send it. */
const makeZstd = (zlib as { createZstdCompress?: (options?: object) => Transform }).createZstdCompress
export const ENCODINGS: readonly Encoding[] = makeZstd === undefined ? ['br', 'gzip'] : ['zstd', 'br', 'gzip']

/**
 * The encoding a client's Accept-Encoding (RFC 9110 §12.5.3) takes best:
 * highest q above 0, srvgate's order (zstd, br, gzip) among equals; `*`
 * stands for any not named. Undefined: none it accepts (identity).
 */
export function negotiate (acceptEncoding: string | undefined): Encoding | undefined {
  if (acceptEncoding === undefined || acceptEncoding === '') return undefined
  const weights = new Map<string, number>()
  for (const part of acceptEncoding.split(',')) {
    const [token = '', ...parameters] = part.split(';')
    const lower = token.trim().toLowerCase()
    // RFC 9110 §8.4.1.3: x-gzip is gzip.
    const name = lower === 'x-gzip' ? 'gzip' : lower
    if (name === '') continue
    const q = parameters.find((parameter) => /^\s*q\s*=/i.test(parameter))
    // A qvalue is 0 to 1 with at most three decimals (§12.4.2); anything else makes the coding unacceptable.
    const value = q === undefined ? '1' : /^\s*q\s*=\s*(0(\.\d{0,3})?|1(\.0{0,3})?)\s*$/i.exec(q)?.[1]
    weights.set(name, value === undefined ? 0 : Number(value))
  }
  let best: Encoding | undefined
  let bestQ = 0
  for (const encoding of ENCODINGS) {
    const q = weights.get(encoding) ?? weights.get('*') ?? 0
    if (q > bestQ) {
      best = encoding
      bestQ = q
    }
  }
  return best
}

/**
 * Whether an answer may be compressed at all (Vary: Accept-Encoding is then
 * due, whatever this client accepts): a body (not 1xx, 204, 304; a HEAD gets
 * the headers its GET would), not a range, not already encoded, no Cache-Control: no-transform
 * (RFC 9111 §5.2.2.6), a type of `types`, and no Content-Length below
 * minBytes. `headers` is the flat name/value list writeHead takes.
 */
export function isCompressible (status: number, headers: readonly string[], config: CompressConfig): boolean {
  if (status < 200 || status === 204 || status === 206 || status === 304) return false
  let type: string | undefined
  for (let index = 0; index < headers.length; index += 2) {
    const name = (headers[index] as string).toLowerCase()
    const value = headers[index + 1] as string
    if (name === 'content-encoding' && value.trim().toLowerCase() !== 'identity') return false
    if (name === 'content-range') return false
    if (name === 'cache-control' && /(^|,)\s*no-transform\s*(,|$)/i.test(value)) return false
    if (name === 'content-length' && Number(value) < config.minBytes) return false
    if (name === 'content-type') type = (value.split(';')[0] as string).trim().toLowerCase()
  }
  if (type === undefined) return false
  return config.types.has(type) || config.typePrefixes.some((prefix) => type.startsWith(prefix))
}

/** Vary: Accept-Encoding on the answer (merged into the instance's Vary; `*` already says it). */
export function withVary (headers: string[]): void {
  for (let index = 0; index < headers.length; index += 2) {
    if ((headers[index] as string).toLowerCase() !== 'vary') continue
    const value = headers[index + 1] as string
    if (!/(^|,)\s*(accept-encoding|\*)\s*(,|$)/i.test(value)) headers[index + 1] = `${value}, Accept-Encoding`
    return
  }
  headers.push('vary', 'Accept-Encoding')
}

/**
 * The headers of the compressed answer: Content-Length dropped (the length
 * is not known before the end), Accept-Ranges dropped, Content-Encoding
 * set, a strong ETag made weak (the bytes differ from the instance's; nginx
 * does the same).
 */
export function compressedHeaders (headers: readonly string[], encoding: Encoding): string[] {
  const result: string[] = []
  for (let index = 0; index < headers.length; index += 2) {
    const name = headers[index] as string
    const lower = name.toLowerCase()
    // Ranges of the compressed bytes are not offered (a resumed download would splice two encodings).
    if (lower === 'content-length' || lower === 'content-encoding' || lower === 'accept-ranges') continue
    const value = headers[index + 1] as string
    result.push(name, lower === 'etag' && !value.startsWith('W/') ? `W/${value}` : value)
  }
  result.push('content-encoding', encoding)
  return result
}

/**
 * Compressors alive at once in this process: each holds its window (zstd and
 * brotli here: 256 KiB, gzip's 32 KiB plus its state) for as long as its
 * client takes to read, so a crowd of clients that read nothing would hold
 * that many. Past the bound an answer goes out as the instance sent it.
 */
export const MAX_COMPRESSING = 256
let compressing = 0

/** A compressing stream, or undefined when MAX_COMPRESSING are alive (the answer then goes uncompressed). */
export function compressor (encoding: Encoding): Transform | undefined {
  if (compressing >= MAX_COMPRESSING) return undefined
  compressing++
  const stream = made(encoding)
  stream.once('close', () => { compressing-- })
  return stream
}

/**
 * On-the-fly levels (gzip 6, brotli 4 — its default 11 is for files
 * compressed once —, zstd 3), what nginx and Caddy use for answers compressed
 * per request, with windows of 256 KiB rather than the 2–4 MiB zstd and
 * brotli default to: the memory an answer holds while its client reads.
 */
function made (encoding: Encoding): Transform {
  if (encoding === 'gzip') return createGzip({ level: 6 })
  if (encoding === 'br') return createBrotliCompress({ params: { [constants.BROTLI_PARAM_QUALITY]: 4, [constants.BROTLI_PARAM_LGWIN]: 18, [constants.BROTLI_PARAM_MODE]: constants.BROTLI_MODE_TEXT } })
  return (makeZstd as (options?: object) => Transform)({ params: { [constants.ZSTD_c_compressionLevel]: 3, [constants.ZSTD_c_windowLog]: 18 } })
}
