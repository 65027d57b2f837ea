/** dns-face/worker-share.ts: each worker's part of dns.rateLimit and dns.tcp, and where a port can be shared. */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { workerShare } from '../../../src/dns-face/worker-share.js'
import { canShareUdpPort } from '../../../src/util/shared-udp-port.js'
import type { DnsFaceConfig } from '../../../src/config/types.js'

const CONFIG = { rateLimit: { perSecond: 500, burst: 1000, globalPerSecond: 20_001 }, tcp: { messageTimeoutMs: 2000, idleTimeoutMs: 10_000, maxConnections: 256, maxConnectionsPerSource: 1 } } as unknown as DnsFaceConfig

test('each worker has its share of every rate limit, rounded up and never 0, and the TCP caps whole (per process); one worker has them all', () => {
  assert.equal(workerShare(CONFIG, 1), CONFIG)
  const share = workerShare(CONFIG, 2)
  assert.deepEqual(share.rateLimit, { perSecond: 250, burst: 500, globalPerSecond: 10_001 })
  // Divided, round-robin skew would refuse a client at about half the cap (one worker's connections outliving the other's).
  assert.deepEqual(share.tcp, { messageTimeoutMs: 2000, idleTimeoutMs: 10_000, maxConnections: 256, maxConnectionsPerSource: 1 })
  assert.deepEqual(workerShare(CONFIG, 4).tcp, CONFIG.tcp)
  assert.deepEqual(workerShare(CONFIG, 3).rateLimit, { perSecond: 167, burst: 334, globalPerSecond: 6667 })
})

test('UDP ports are shared (SO_REUSEPORT) on Linux with Node 22.12+, 23.1+, 24+; elsewhere one process answers', () => {
  for (const [platform, version, expected] of [
    ['linux', '24.0.0', true], ['linux', '22.12.0', true], ['linux', '22.11.9', false], ['linux', '23.0.0', false],
    ['linux', '23.1.0', true], ['linux', '20.20.2', false], ['darwin', '24.1.0', false], ['win32', '24.1.0', false]
  ] as const) assert.equal(canShareUdpPort(platform, version), expected, `${platform} ${version}`)
})
