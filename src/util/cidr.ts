import { BlockList, isIP } from 'node:net'

/** A parsed CIDR block: `10.0.0.0/8`, `fd00::/8`; a bare address is a /32 or /128. */
export type Cidr = { readonly address: string, readonly prefix: number, readonly family: 4 | 6, readonly label: string }

/** `'10.0.0.0/8' | '::1' | '169.254.169.254/32'` → Cidr; undefined when the text is not one. */
export function parseCidr (text: string): Cidr | undefined {
  const [address = '', prefixText, ...rest] = text.trim().split('/')
  const family = isIP(address)
  if (rest.length > 0 || (family !== 4 && family !== 6)) return undefined
  const max = family === 4 ? 32 : 128
  if (prefixText !== undefined && !/^\d{1,3}$/.test(prefixText)) return undefined
  const prefix = prefixText === undefined ? max : Number(prefixText)
  if (prefix > max) return undefined
  return Object.freeze({ address, prefix, family, label: `${address}/${prefix}` })
}

/**
 * A set of CIDR blocks matched with node:net's BlockList (IPv4-mapped IPv6
 * addresses match their IPv4 blocks). Built once at load; `matches` is a
 * lookup, cheap enough for every discovered instance.
 */
export class CidrSet {
  readonly blocks: readonly Cidr[]
  readonly #all = new BlockList()
  readonly #each: ReadonlyArray<readonly [Cidr, BlockList]>
  /** Each IPv4 block as base and mask (uint32), in file order; undefined for an IPv6 block. */
  readonly #v4: ReadonlyArray<readonly [number, number] | undefined>
  readonly #hasV6: boolean

  constructor (blocks: readonly Cidr[]) {
    this.blocks = blocks
    this.#each = blocks.map((block) => {
      const one = new BlockList()
      one.addSubnet(block.address, block.prefix, familyName(block.family))
      this.#all.addSubnet(block.address, block.prefix, familyName(block.family))
      return [block, one] as const
    })
    this.#v4 = blocks.map((block) => {
      if (block.family !== 4) return undefined
      const mask = block.prefix === 0 ? 0 : (~0 << (32 - block.prefix)) >>> 0
      return [(ipv4Number(block.address) & mask) >>> 0, mask] as const
    })
    this.#hasV6 = blocks.some((block) => block.family === 6)
  }

  /** The first block holding `address`, or undefined (also for text that is not an IP address). */
  find (address: string): Cidr | undefined {
    const v4 = ipv4Number(address)
    if (v4 >= 0 && !this.#hasV6) {
      // The common case (an IPv4 client, IPv4 blocks): integer compares, no BlockList (~1 µs a check).
      const index = this.#v4.findIndex((block) => block !== undefined && ((v4 & block[1]) >>> 0) === block[0])
      return index < 0 ? undefined : this.blocks[index]
    }
    if (!this.matches(address)) return undefined
    const family = familyName(isIP(address) as 4 | 6)
    return this.#each.find(([, one]) => one.check(address, family))?.[0]
  }

  matches (address: string): boolean {
    if (this.blocks.length === 0) return false
    const v4 = ipv4Number(address)
    if (v4 >= 0 && !this.#hasV6) return this.#v4.some((block) => block !== undefined && ((v4 & block[1]) >>> 0) === block[0])
    const family = isIP(address)
    return family !== 0 && this.#all.check(address, familyName(family as 4 | 6))
  }
}

/**
 * A dotted IPv4 address (or one mapped in IPv6, ::ffff:a.b.c.d) as a uint32;
 * -1 for anything else (IPv6, a zone, leading zeros, which isIP refuses too).
 */
export function ipv4Number (address: string): number {
  let start = 0
  if (address.length > 7 && address.charCodeAt(0) === 58 && /^::ffff:/i.test(address)) start = 7
  let value = 0
  let octet = -1
  let digits = 0
  let dots = 0
  for (let index = start; index < address.length; index++) {
    const code = address.charCodeAt(index)
    if (code === 46) {
      if (octet < 0 || dots === 3) return -1
      value = value * 256 + octet
      octet = -1
      digits = 0
      dots++
    } else if (code >= 48 && code <= 57) {
      if (octet === 0 && digits === 1) return -1
      octet = (octet < 0 ? 0 : octet * 10) + code - 48
      digits++
      if (octet > 255) return -1
    } else {
      return -1
    }
  }
  if (dots !== 3 || octet < 0) return -1
  return value * 256 + octet
}

function familyName (family: 4 | 6): 'ipv4' | 'ipv6' {
  return family === 4 ? 'ipv4' : 'ipv6'
}

/**
 * The block of `bits` leading bits holding `address`, as a key:
 * `sourceBlock('192.0.2.77', 24, 56)` is `'192.0.2.0/24'`. IPv4-mapped IPv6
 * addresses (::ffff:192.0.2.77) count as IPv4; a zone (%eth0) is dropped;
 * text that is not an address is its own key. Asked once per DNS face
 * query: integer maths, no allocation beyond the key.
 */
export function sourceBlock (address: string, ipv4Bits: number, ipv6Bits: number): string {
  const bare = address.includes('%') ? address.slice(0, address.indexOf('%')) : address
  if (!bare.includes(':')) return isIP(bare) === 4 ? ipv4Block(bare, ipv4Bits) : address
  if (isIP(bare) !== 6) return address
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(bare)?.[1]
  if (mapped !== undefined) return ipv4Block(mapped, ipv4Bits)
  const groups = ipv6Groups(bare)
  let key = ''
  for (let index = 0; index < 8; index++) key += `${index === 0 ? '' : ':'}${((groups[index] as number) & maskOf(ipv6Bits - index * 16, 16)).toString(16)}`
  return `${key}/${ipv6Bits}`
}

function ipv4Block (address: string, bits: number): string {
  const octets = address.split('.')
  let key = ''
  for (let index = 0; index < 4; index++) key += `${index === 0 ? '' : '.'}${Number(octets[index]) & maskOf(bits - index * 8, 8)}`
  return `${key}/${bits}`
}

/** The top `bits` of a `width`-bit field set (clamped to 0..width). */
function maskOf (bits: number, width: number): number {
  const kept = Math.max(0, Math.min(width, bits))
  return ((1 << width) - 1) ^ ((1 << (width - kept)) - 1)
}

/** A valid IPv6 address's eight 16-bit groups (`::` expanded, a dotted IPv4 tail as two groups). */
function ipv6Groups (address: string): number[] {
  let text = address
  const tail = /(\d+\.\d+\.\d+\.\d+)$/.exec(text)?.[1]
  if (tail !== undefined) {
    const [a = 0, b = 0, c = 0, d = 0] = tail.split('.').map(Number)
    text = `${text.slice(0, -tail.length)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`
  }
  const [head = '', rest] = text.split('::')
  const parse = (part: string): number[] => part === '' ? [] : part.split(':').map((group) => parseInt(group, 16))
  const left = parse(head)
  const right = rest === undefined ? [] : parse(rest)
  return [...left, ...Array<number>(8 - left.length - right.length).fill(0), ...right]
}
