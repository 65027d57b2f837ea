import { test } from 'node:test'
import assert from 'node:assert/strict'
import { EventEmitter } from 'node:events'
import type { Socket } from 'node:net'
import { ClientConnections, defaultMaxConnections } from '../../../src/edge/client-connections.js'
import { descriptorLimit } from '../../../src/util/descriptor-limit.js'

class StandIn extends EventEmitter {
  isReset = false
  constructor (readonly remoteAddress: string) { super() }
  resetAndDestroy (): void { this.isReset = true; this.emit('close') }
}

test('past maxConnections or maxConnectionsPerIp a new connection is reset at once and counted; closing frees its place', () => {
  const refused: string[] = []
  let limits = { maxConnections: 3, maxConnectionsPerIp: 2 as number | undefined }
  const connections = new ClientConnections(() => limits, (listener, reason) => { refused.push(`${listener} ${reason}`) })
  const a1 = new StandIn('10.0.0.1')
  const a2 = new StandIn('10.0.0.1')
  assert.equal(connections.admit(a1 as unknown as Socket, 'http'), true)
  assert.equal(connections.admit(a2 as unknown as Socket, 'https'), true)
  const a3 = new StandIn('10.0.0.1')
  assert.equal(connections.admit(a3 as unknown as Socket, 'http'), false)
  assert.equal(a3.isReset, true)
  assert.equal(connections.admit(new StandIn('10.0.0.2') as unknown as Socket, 'http'), true)
  assert.equal(connections.admit(new StandIn('10.0.0.3') as unknown as Socket, 'https'), false)
  assert.deepEqual(refused, ['http max_connections_per_ip', 'https max_connections'])
  assert.equal(connections.open, 3)
  a1.emit('close')
  assert.equal(connections.open, 2)
  assert.equal(connections.admit(new StandIn('10.0.0.1') as unknown as Socket, 'http'), true, 'a place freed by a close')
  limits = { maxConnections: 10, maxConnectionsPerIp: undefined }
  assert.equal(connections.admit(new StandIn('10.0.0.1') as unknown as Socket, 'http'), true, 'a reload lifting the per-address cap applies at once')
})

test('the default cap is half the descriptor limit less a reserve, read from /proc/self/limits', () => {
  assert.equal(defaultMaxConnections(1024), 480)
  assert.equal(defaultMaxConnections(100), 18)
  assert.equal(defaultMaxConnections(10), 1)
  const limits = 'Limit                     Soft Limit           Hard Limit           Units\nMax open files            1024                 4096                 files\n'
  assert.equal(descriptorLimit(limits), 1024)
  assert.equal(descriptorLimit('Max open files            unlimited            unlimited            files'), Number.MAX_SAFE_INTEGER)
  assert.equal(descriptorLimit(''), 1024, 'unreadable: the common default')
  assert.ok(descriptorLimit() > 0)
})
