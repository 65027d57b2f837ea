/**
 * util/cidr.ts: CidrSet's integer path for IPv4 (trustedProxies on every
 * request, access.allow/deny) answers as node:net's BlockList does, for
 * every address and block kind; ipv4Number reads what isIP calls IPv4.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { BlockList, isIP } from 'node:net'
import { CidrSet, ipv4Number, parseCidr, type Cidr } from '../../../src/util/cidr.js'

const cidrs = (...texts: string[]): Cidr[] => texts.map((text) => parseCidr(text) as Cidr)

test('ipv4Number: dotted IPv4 and ::ffff:-mapped as uint32; everything else -1', () => {
  const rows: Array<[string, number]> = [
    ['0.0.0.0', 0], ['10.1.2.3', 0x0a010203], ['255.255.255.255', 0xffffffff], ['::ffff:192.0.2.1', 0xc0000201], ['::FFFF:192.0.2.1', 0xc0000201],
    ['256.0.0.1', -1], ['10.1.2', -1], ['10.1.2.3.4', -1], ['10..2.3', -1], ['010.1.2.3', -1], ['10.1.2.3 ', -1], ['::1', -1], ['fe80::1%eth0', -1], ['', -1], ['a.b.c.d', -1], ['1.2.3.', -1]
  ]
  for (const [text, value] of rows) {
    assert.equal(ipv4Number(text), value, text)
    if (value >= 0 && !text.includes(':')) assert.equal(isIP(text), 4, text)
  }
})

test('CidrSet answers as BlockList: IPv4 blocks alone (integer path), mixed with IPv6 ones, mapped addresses, /0 and /32; find names the first block in file order', () => {
  const sets = [
    cidrs('10.0.0.0/8', '192.168.1.0/24', '203.0.113.9'),
    cidrs('0.0.0.0/0'),
    cidrs('10.6.6.0/24', '10.0.0.0/8'),
    cidrs('2001:db8::/32', '10.0.0.0/8'),
    cidrs('::ffff:0:0/96'),
    cidrs()
  ]
  const addresses = ['10.1.2.3', '10.6.6.6', '11.0.0.1', '192.168.1.77', '192.168.2.1', '203.0.113.9', '203.0.113.10', '::ffff:10.9.9.9', '2001:db8::7', '2001:db9::1', '::1', 'not-an-ip', '0.0.0.0', '255.255.255.255']
  for (const blocks of sets) {
    const set = new CidrSet(blocks)
    const list = new BlockList()
    for (const block of blocks) list.addSubnet(block.address, block.prefix, block.family === 4 ? 'ipv4' : 'ipv6')
    for (const address of addresses) {
      const family = isIP(address)
      const expected = blocks.length > 0 && family !== 0 && list.check(address, family === 4 ? 'ipv4' : 'ipv6')
      assert.equal(set.matches(address), expected, `${blocks.map((block) => block.label).join(',')} ∋ ${address}`)
      const found = set.find(address)
      assert.equal(found !== undefined, expected, `find ${address}`)
    }
  }
  assert.equal(new CidrSet(cidrs('10.6.6.0/24', '10.0.0.0/8')).find('10.6.6.6')?.label, '10.6.6.0/24')
  assert.equal(new CidrSet(cidrs('10.0.0.0/8', '10.6.6.0/24')).find('10.6.6.6')?.label, '10.0.0.0/8')
})
