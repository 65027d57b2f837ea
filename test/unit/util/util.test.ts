import { test } from 'node:test'
import assert from 'node:assert/strict'
import { formatDuration, parseDuration } from '../../../src/util/duration.js'
import { parseAddress } from '../../../src/util/address.js'
import { SeededRandom } from '../../../src/util/random.js'
import { sourceBlock } from '../../../src/util/cidr.js'

test('parseDuration reads ms, s, m, h, d and rejects the rest', () => {
  const cases: Array<[string, number | undefined]> = [
    ['250ms', 250], ['1s', 1000], ['1.5s', 1500], ['5m', 300_000], ['2h', 7_200_000], ['365d', 31_536_000_000], ['0s', 0],
    ['1', undefined], ['s', undefined], ['-1s', undefined], ['1w', undefined], ['1 s', undefined], ['', undefined]
  ]
  for (const [text, expected] of cases) assert.equal(parseDuration(text), expected, text)
})

test('formatDuration gives the shortest exact form', () => {
  assert.deepEqual([250, 1000, 1500, 60_000, 3_600_000].map(formatDuration), ['250ms', '1s', '1.5s', '1m', '1h'])
})

test('parseAddress reads host:port and [v6]:port', () => {
  assert.deepEqual(parseAddress('127.0.0.1:8600'), { host: '127.0.0.1', port: 8600, family: 4, label: '127.0.0.1:8600' })
  assert.deepEqual(parseAddress('[::1]:8600'), { host: '::1', port: 8600, family: 6, label: '[::1]:8600' })
  assert.deepEqual(parseAddress('consul.local:53'), { host: 'consul.local', port: 53, family: 0, label: 'consul.local:53' })
  for (const bad of ['127.0.0.1', '::1:8600', '[::1]', 'host:99999', '[nope]:1', 'a b:1', ':80']) assert.equal(parseAddress(bad), undefined, bad)
})

test('SeededRandom repeats its sequence for a seed', () => {
  const a = new SeededRandom(42)
  const b = new SeededRandom(42)
  const first = [a.next(), a.next(), a.next()]
  assert.deepEqual(first, [b.next(), b.next(), b.next()])
  assert.ok(first.every((value) => value >= 0 && value < 1))
})

test('sourceBlock: the block of an address as a key; IPv4-mapped is IPv4; a zone is dropped; not an address: itself', () => {
  const cases: Array<[string, number, number, string]> = [
    ['192.0.2.77', 24, 56, '192.0.2.0/24'],
    ['192.0.2.77', 32, 64, '192.0.2.77/32'],
    ['10.1.2.3', 20, 56, '10.1.0.0/20'],
    ['::ffff:192.0.2.77', 24, 56, '192.0.2.0/24'],
    ['2001:db8:0:1ab::1', 24, 56, '2001:db8:0:100:0:0:0:0/56'],
    ['2001:db8:0:1ff:ffff:ffff:ffff:ffff', 24, 56, '2001:db8:0:100:0:0:0:0/56'],
    ['2001:db8:0:1ab::1', 32, 64, '2001:db8:0:1ab:0:0:0:0/64'],
    ['fe80::1%eth0', 24, 64, 'fe80:0:0:0:0:0:0:0/64'],
    ['64:ff9b::192.0.2.1', 24, 128, '64:ff9b:0:0:0:0:c000:201/128'],
    ['not-an-address', 24, 56, 'not-an-address']
  ]
  for (const [address, ipv4Bits, ipv6Bits, expected] of cases) assert.equal(sourceBlock(address, ipv4Bits, ipv6Bits), expected, address)
})
