import { test } from 'node:test'
import assert from 'node:assert/strict'
import { decodeConsulAddr, sortInstances } from '../../../src/dns/resolver.js'

test('Consul .addr. targets decode without a query', () => {
  const cases: Array<[string, string | undefined]> = [
    ['7f000001.addr.dc1.consul', '127.0.0.1'],
    ['0A00FF02.addr.east.consul', '10.0.255.2'],
    ['00000000000000000000000000000001.addr.dc1.consul', '::1'],
    ['20010db8000000000000000000000001.addr.dc1.consul', '2001:db8::1'],
    ['fe800000000000000001000000000001.addr.dc1.consul', 'fe80::1:0:0:1'],
    ['7f00001.addr.dc1.consul', undefined],
    ['7f000001.node.dc1.consul', undefined],
    ['node1.node.dc1.consul', undefined],
    ['zz000001.addr.dc1.consul', undefined]
  ]
  for (const [target, expected] of cases) assert.equal(decodeConsulAddr(target), expected, target)
})

test('RFC 2782 order: lowest priority first, heavier first within one, then a stable order', () => {
  const instance = (address: string, priority: number, weight: number) => ({ address, port: 80, priority, weight, target: address })
  const sorted = sortInstances([instance('10.0.0.4', 2, 5), instance('10.0.0.2', 1, 1), instance('10.0.0.1', 1, 1), instance('10.0.0.3', 1, 10)])
  assert.deepEqual(sorted.map((entry) => entry.address), ['10.0.0.3', '10.0.0.1', '10.0.0.2', '10.0.0.4'])
})
