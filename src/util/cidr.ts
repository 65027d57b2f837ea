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

  constructor (blocks: readonly Cidr[]) {
    this.blocks = blocks
    this.#each = blocks.map((block) => {
      const one = new BlockList()
      one.addSubnet(block.address, block.prefix, familyName(block.family))
      this.#all.addSubnet(block.address, block.prefix, familyName(block.family))
      return [block, one] as const
    })
  }

  get isEmpty (): boolean { return this.blocks.length === 0 }

  /** The first block holding `address`, or undefined (also for text that is not an IP address). */
  find (address: string): Cidr | undefined {
    if (!this.matches(address)) return undefined
    const family = familyName(isIP(address) as 4 | 6)
    return this.#each.find(([, one]) => one.check(address, family))?.[0]
  }

  matches (address: string): boolean {
    const family = isIP(address)
    return family !== 0 && this.blocks.length > 0 && this.#all.check(address, familyName(family as 4 | 6))
  }
}

function familyName (family: 4 | 6): 'ipv4' | 'ipv6' {
  return family === 4 ? 'ipv4' : 'ipv6'
}
