/**
 * Whether a DNS message is whole and no more: every section's records read
 * to the last octet, nothing after them, and each OPT owned by the root
 * (RFC 6891 §6.1.2). dns2 decodes what the counts announce and ignores the
 * rest, so a query with trailing octets or an OPT under another name would be
 * answered; BIND answers both FORMERR, and so does the face.
 */

const HEADER_SIZE = 12
const TYPE_OPT = 41

export function isWholeMessage (message: Buffer): boolean {
  if (message.length < HEADER_SIZE) return false
  const questions = message.readUInt16BE(4)
  const records = message.readUInt16BE(6) + message.readUInt16BE(8) + message.readUInt16BE(10)
  let offset = HEADER_SIZE
  for (let index = 0; index < questions; index++) {
    const end = nameEnd(message, offset)
    if (end === undefined || end + 4 > message.length) return false
    offset = end + 4
  }
  for (let index = 0; index < records; index++) {
    const end = nameEnd(message, offset)
    if (end === undefined || end + 10 > message.length) return false
    // An OPT's owner is the root: one zero octet, no pointer.
    if (message.readUInt16BE(end) === TYPE_OPT && (end !== offset + 1 || message[offset] !== 0)) return false
    offset = end + 10 + message.readUInt16BE(end + 8)
    if (offset > message.length) return false
  }
  return offset === message.length
}

/** Where the name at `start` ends in the message (after its zero octet, or after its first pointer); undefined when it runs off the end. */
function nameEnd (message: Buffer, start: number): number | undefined {
  let offset = start
  for (;;) {
    const length = message[offset]
    if (length === undefined) return undefined
    if (length >= 0xc0) return offset + 2 <= message.length ? offset + 2 : undefined
    if (length >= 0x40) return undefined
    offset += 1 + length
    if (length === 0) return offset
  }
}
