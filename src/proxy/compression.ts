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
    const name = token.trim().toLowerCase()
    if (name === '') continue
    const q = parameters.map((parameter) => /^\s*q\s*=\s*([0-9.]+)\s*$/i.exec(parameter)?.[1]).find((value) => value !== undefined)
    weights.set(name, q === undefined ? 1 : Math.min(1, Number(q) || 0))
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
 * due, whatever this client accepts): a body to send (not HEAD, 1xx, 204,
 * 304), not a range, not already encoded, no Cache-Control: no-transform
 * (RFC 9111 §5.2.2.6), a type of `types`, and no Content-Length below
 * minBytes. `headers` is the flat name/value list writeHead takes.
 */
export function isCompressible (method: string, status: number, headers: readonly string[], config: CompressConfig): boolean {
  if (method === 'HEAD' || status < 200 || status === 204 || status === 206 || status === 304) return false
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
 * is not known before the end), Content-Encoding set, a strong ETag made
 * weak (the bytes differ from the instance's; nginx does the same).
 */
export function compressedHeaders (headers: readonly string[], encoding: Encoding): string[] {
  const result: string[] = []
  for (let index = 0; index < headers.length; index += 2) {
    const name = headers[index] as string
    const lower = name.toLowerCase()
    if (lower === 'content-length' || lower === 'content-encoding') continue
    const value = headers[index + 1] as string
    result.push(name, lower === 'etag' && !value.startsWith('W/') ? `W/${value}` : value)
  }
  result.push('content-encoding', encoding)
  return result
}

/**
 * A compressing stream at on-the-fly levels (gzip 6, brotli 4 — its default
 * 11 is for files compressed once —, zstd 3): what nginx and Caddy use for
 * answers compressed per request.
 */
export function compressor (encoding: Encoding): Transform {
  if (encoding === 'gzip') return createGzip({ level: 6 })
  if (encoding === 'br') return createBrotliCompress({ params: { [constants.BROTLI_PARAM_QUALITY]: 4, [constants.BROTLI_PARAM_MODE]: constants.BROTLI_MODE_TEXT } })
  return (makeZstd as (options?: object) => Transform)({ params: { [constants.ZSTD_c_compressionLevel]: 3 } })
}
