import { isIP } from 'node:net'

/** A parsed `host:port`. `host` holds an IPv6 literal without brackets. */
export type Address = {
  readonly host: string
  readonly port: number
  /** 4 or 6 for IP literals, 0 for a hostname. */
  readonly family: 0 | 4 | 6
  /** The canonical text form: `127.0.0.1:8600`, `[::1]:8600`. */
  readonly label: string
}

/** Parse `host:port` or `[v6]:port`; `undefined` when the text is not one. */
export function parseAddress (text: string): Address | undefined {
  const match = /^(?:\[([0-9a-fA-F:.]+)\]|([^\s:[\]]+)):(\d{1,5})$/.exec(text.trim())
  if (match === null) return undefined
  const port = Number(match[3])
  if (port < 0 || port > 65535) return undefined
  if (match[1] !== undefined) {
    if (isIP(match[1]) !== 6) return undefined
    return makeAddress(match[1], port)
  }
  return makeAddress(match[2] as string, port)
}

export function makeAddress (host: string, port: number): Address {
  const ipFamily = isIP(host)
  const family = ipFamily === 4 ? 4 : ipFamily === 6 ? 6 : 0
  return Object.freeze({ host, port, family, label: formatHostPort(host, port) })
}

export function formatHostPort (host: string, port: number): string {
  return isIP(host) === 6 ? `[${host}]:${port}` : `${host}:${port}`
}

/** Where a server ended up listening (`server.address()`): its port when 0 was asked. */
export function boundAddress (bound: { address: string, port: number } | string | null, asked: { readonly host: string, readonly port: number }): { host: string, port: number } {
  return typeof bound === 'object' && bound !== null ? { host: bound.address, port: bound.port } : { host: asked.host, port: asked.port }
}

const LOOPBACK = new Set(['127.0.0.1', '::1', 'localhost'])

/** Reachable from this machine only (the admin listener's safe default). */
export function isLoopback (address: Address): boolean {
  return LOOPBACK.has(address.host) || address.host.startsWith('127.')
}
