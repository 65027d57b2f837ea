import { test } from 'node:test'
import assert from 'node:assert/strict'
import { DURATION_PATTERN, formatDuration, parseDuration, readDuration } from '../../../src/util/duration.js'
import { parseAddress } from '../../../src/util/address.js'
import { SeededRandom } from '../../../src/util/random.js'
import { sourceBlock } from '../../../src/util/cidr.js'

test('parseDuration reads ms, s, m, h, d and rejects the rest', () => {
  const cases: Array<[string, number | undefined]> = [
    ['250ms', 250], ['1s', 1000], ['1.5s', 1500], ['5m', 300_000], ['2h', 7_200_000], ['365d', 31_536_000_000], ['0s', 0], ['0', 0],
    ['1', undefined], ['s', undefined], ['-1s', undefined], ['1w', undefined], ['1 s', undefined], ['', undefined]
  ]
  for (const [text, expected] of cases) assert.equal(parseDuration(text), expected, text)
})

test('compound Go-style durations: each unit once, largest first; fractions on any part', () => {
  const cases: Array<[string, number]> = [
    ['1h30m', 5_400_000], ['1m30s', 90_000], ['1.5h', 5_400_000], ['300ms', 300], ['2h45m30s', 9_930_000],
    ['1s500ms', 1500], ['1d12h', 129_600_000], ['1h0m5s', 3_605_000], ['1.5m30s', 120_000]
  ]
  for (const [text, expected] of cases) assert.equal(parseDuration(text), expected, text)
})

test('a malformed duration is refused with the reason (where Go would differ, the row says so)', () => {
  const cases: Array<[string, RegExp | undefined]> = [
    ['1h1h', /has h twice/], // Go: 2h
    ['30m1h', /h after a smaller unit/], // Go: 1h30m
    ['1s1h', /h after a smaller unit/],
    ['-1s', /has a sign/], // Go: -1s
    ['+1s', /has a sign/], // Go: 1s
    ['1h30', /30 has no unit/], // Go refuses too
    ['1x', /"x" is not a unit/],
    ['1h 30m', /"h " is not a unit/], // Go refuses too
    ['500us', /finer than srvgate counts/], // Go: 500µs
    ['10ns', /finer than srvgate counts/],
    ['h', undefined],
    ['.5s', undefined], // Go: 500ms
    ['', undefined]
  ]
  for (const [text, reason] of cases) {
    const reading = readDuration(text)
    assert.ok('problem' in reading, `${text} is refused`)
    if (reason === undefined) assert.equal(reading.problem, undefined, text)
    else assert.match(reading.problem ?? '', reason, text)
  }
})

test('the schema\'s duration pattern (for editors) accepts exactly what the parser accepts', () => {
  const pattern = new RegExp(DURATION_PATTERN)
  const texts = ['250ms', '1s', '1.5s', '5m', '2h', '365d', '0s', '0', '1h30m', '1m30s', '1.5h', '2h45m30s', '1s500ms', '1d12h', '5m1ms',
    '1', 's', '-1s', '+1s', '1w', '1 s', ' 1s', '', '1h1h', '30m1h', '1ms1s', '1h30', '1x', '500us', 'h', '.5s', '1.s', 'ms', '1mm', '1sms']
  for (const text of texts) assert.equal(pattern.test(text), parseDuration(text) !== undefined, JSON.stringify(text))
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
