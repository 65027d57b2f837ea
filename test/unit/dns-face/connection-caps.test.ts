/** The DNS face's TCP connection caps: global and per source, new connections refused, never old ones. */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { ConnectionCaps, type Admission } from '../../../src/dns-face/connection-caps.js'

test('per source: the connection over maxConnectionsPerSource is refused; other sources still get in; a release makes room', () => {
  const caps = new ConnectionCaps(() => ({ maxConnections: 100, maxConnectionsPerSource: 2 }))
  const admitted = (sources: string[]): Admission[] => sources.map((source) => caps.admit(source))
  assert.deepEqual(admitted(['127.0.0.2', '127.0.0.2', '127.0.0.2', '127.0.0.3', '127.0.0.1']),
    ['admitted', 'admitted', 'max-connections-per-source', 'admitted', 'admitted'])
  assert.equal(caps.open, 4, 'a refused connection is not counted')
  caps.release('127.0.0.2')
  assert.deepEqual(admitted(['127.0.0.2', '127.0.0.2']), ['admitted', 'max-connections-per-source'])
})

test('an IPv6 host is one /64: cycling through its addresses does not multiply its share', () => {
  const caps = new ConnectionCaps(() => ({ maxConnections: 100, maxConnectionsPerSource: 2 }))
  assert.deepEqual(['2001:db8:0:1::1', '2001:db8:0:1::2', '2001:db8:0:1:ffff::3', '2001:db8:0:2::1'].map((source) => caps.admit(source)),
    ['admitted', 'admitted', 'max-connections-per-source', 'admitted'])
})

test('global: at maxConnections the new connection is refused, whatever its source; the open ones stay counted until released', () => {
  let limits = { maxConnections: 3, maxConnectionsPerSource: 2 }
  const caps = new ConnectionCaps(() => limits)
  assert.deepEqual(['10.0.0.1', '10.0.0.2', '10.0.0.3', '10.0.0.4'].map((source) => caps.admit(source)), ['admitted', 'admitted', 'admitted', 'max-connections'])
  caps.release('10.0.0.1')
  assert.equal(caps.admit('10.0.0.4'), 'admitted')
  limits = { maxConnections: 10, maxConnectionsPerSource: 2 }
  assert.equal(caps.admit('10.0.0.5'), 'admitted', 'a reload\'s caps apply to the next connection')
  caps.release('192.0.2.1')
  assert.equal(caps.open, 4, 'releasing a source never admitted changes nothing')
})
