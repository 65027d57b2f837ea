/**
 * The server name a TLS ClientHello asks for (RFC 8446 §4.1.2, RFC 6066 §3),
 * read from the bytes before any TLS library sees them: the only place an
 * unknown name can be answered with the `unrecognized_name` alert, which
 * Node's SNICallback cannot send.
 */
export type ClientHelloRead =
  /** More bytes are needed (the hello spans TCP segments or records). */
  | { readonly kind: 'incomplete' }
  /** A ClientHello: its server_name (a host name), or undefined without SNI; `protocols`: its ALPN list (RFC 7301), empty without. */
  | { readonly kind: 'hello', readonly serverName: string | undefined, readonly protocols: readonly string[] }
  /** Not a TLS handshake: left to the TLS library to refuse in its own words. */
  | { readonly kind: 'other' }

const INCOMPLETE = { kind: 'incomplete' } as const
const OTHER = { kind: 'other' } as const
/** Largest ClientHello waited for (post-quantum key shares make them ~1.8 KB; 16 KB is one record). */
export const MAX_CLIENT_HELLO = 16_384

export function readClientHello (bytes: Buffer): ClientHelloRead {
  // The handshake message may span records: gather the fragments of records of type 22.
  const fragments: Buffer[] = []
  let offset = 0
  let gathered = 0
  let needed = -1
  while (true) {
    if (bytes.length < offset + 5) return bytes.length >= MAX_CLIENT_HELLO ? OTHER : INCOMPLETE
    // Record: type 22 (handshake), version 3.x, length.
    if (bytes[offset] !== 22 || bytes[offset + 1] !== 3) return OTHER
    const length = bytes.readUInt16BE(offset + 3)
    if (length > MAX_CLIENT_HELLO) return OTHER
    // An empty record (RFC 8446 §5.1 forbids them; OpenSSL takes them): skipped, as OpenSSL will,
    // or a client could slip an unknown name past this check with one. Bounded by MAX_CLIENT_HELLO below.
    if (length === 0) {
      offset += 5
      if (offset >= MAX_CLIENT_HELLO) return OTHER
      continue
    }
    if (bytes.length < offset + 5 + length) return INCOMPLETE
    const fragment = bytes.subarray(offset + 5, offset + 5 + length)
    fragments.push(fragment)
    gathered += fragment.length
    offset += 5 + length
    if (needed < 0 && gathered >= 4) {
      const head = Buffer.concat(fragments)
      // Handshake: type 1 (ClientHello), 24-bit length.
      if (head[0] !== 1) return OTHER
      needed = 4 + head.readUIntBE(1, 3)
      if (needed > MAX_CLIENT_HELLO) return OTHER
    }
    if (needed >= 0 && gathered >= needed) return parseHello(Buffer.concat(fragments).subarray(4, needed))
    if (offset >= MAX_CLIENT_HELLO) return OTHER
  }
}

/** The ClientHello body: version, random, session id, cipher suites, compression, extensions. */
function parseHello (hello: Buffer): ClientHelloRead {
  let at = 2 + 32
  if (hello.length < at + 1) return OTHER
  at += 1 + (hello[at] as number)
  if (hello.length < at + 2) return OTHER
  at += 2 + hello.readUInt16BE(at)
  if (hello.length < at + 1) return OTHER
  at += 1 + (hello[at] as number)
  // No extensions at all: no SNI, no ALPN.
  if (hello.length < at + 2) return { kind: 'hello', serverName: undefined, protocols: [] }
  const end = Math.min(hello.length, at + 2 + hello.readUInt16BE(at))
  at += 2
  let serverName: string | undefined
  let protocols: readonly string[] = []
  while (at + 4 <= end) {
    const type = hello.readUInt16BE(at)
    const length = hello.readUInt16BE(at + 2)
    at += 4
    if (at + length > end) return OTHER
    if (type === 0) serverName = hostNameIn(hello.subarray(at, at + length))
    else if (type === 16) protocols = protocolsIn(hello.subarray(at, at + length))
    at += length
  }
  return { kind: 'hello', serverName, protocols }
}

/** application_layer_protocol_negotiation: a list of length-prefixed protocol names. */
function protocolsIn (extension: Buffer): string[] {
  if (extension.length < 2) return []
  const end = Math.min(extension.length, 2 + extension.readUInt16BE(0))
  const protocols: string[] = []
  let at = 2
  while (at < end) {
    const length = extension[at] as number
    at += 1
    if (at + length > end) break
    protocols.push(extension.toString('latin1', at, at + length))
    at += length
  }
  return protocols
}

/** server_name extension: a list of (type, name); type 0 is host_name. */
function hostNameIn (extension: Buffer): string | undefined {
  if (extension.length < 2) return undefined
  const end = Math.min(extension.length, 2 + extension.readUInt16BE(0))
  let at = 2
  while (at + 3 <= end) {
    const type = extension[at] as number
    const length = extension.readUInt16BE(at + 1)
    at += 3
    if (at + length > end) return undefined
    if (type === 0) return extension.toString('latin1', at, at + length).toLowerCase()
    at += length
  }
  return undefined
}

/**
 * A fatal alert record, in the clear: what a server sends before its own
 * first handshake message (RFC 8446 §6; 112 is unrecognized_name, RFC 6066 §3).
 */
export function alertRecord (description: number): Buffer {
  return Buffer.from([21, 3, 3, 0, 2, 2, description])
}

export const UNRECOGNIZED_NAME = 112
