/**
 * The cluster protocol over the in-memory channel: every message type
 * arrives as sent and is checked on receipt; anything of ours that does not
 * match its schema is dropped and logged (sparingly); messages not ours pass
 * by without a word; closing tells both sides once.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { inProcessChannel, type ProtocolLog } from '../../../src/cluster/channel.js'
import { TO_PRIMARY, TO_WORKER, type ToPrimary, type ToWorker, type WireSnapshot } from '../../../src/cluster/protocol.js'
import { PROTOCOL_VERSION } from '../../../src/cluster/protocol-version.js'
import { ErrorCode } from '../../../src/errors.js'
import { documentListening } from '../../helpers/config-documents.js'

type Line = { readonly fields: Record<string, unknown>, readonly message: string }

/** An invalid message is dropped at once and explained a moment later (the explanation loads TypeBox): wait for its line. */
async function until (isDone: () => boolean): Promise<void> {
  const deadline = Date.now() + 5000
  while (!isDone()) {
    if (Date.now() > deadline) throw new Error('no log line within 5 s')
    await new Promise((resolve) => setTimeout(resolve, 5))
  }
}

function capture (): { log: ProtocolLog, lines: Line[] } {
  const lines: Line[] = []
  return { lines, log: { error: (fields, message) => { lines.push({ fields: { ...fields }, message }) } } }
}

const SNAPSHOT: WireSnapshot = {
  status: 'answer',
  instances: [{ address: '127.0.0.1', port: 23501, priority: 0, weight: 10 }, { address: '::1', port: 23502, priority: 1, weight: 0 }],
  isStale: true,
  lastError: { code: ErrorCode.DNS_TIMEOUT, message: 'no answer from 127.0.0.1:23553' },
  refused: [{ key: '10.0.0.1:80', reason: 'not in allowedCidrs' }]
}
const HEALTH = { key: '127.0.0.1:23501', ejectedForMs: 2500.5, ejections: 2, isFailingActiveCheck: false }

/** One of each, as the primary sends them. */
const TO_WORKER_SAMPLES: ToWorker[] = [
  { type: 'srvgate:config', phase: 'init', generation: 1, document: documentListening(8080), backends: [{ name: 'web', snapshot: SNAPSHOT, health: [HEALTH] }] },
  { type: 'srvgate:config', phase: 'prepare', generation: 2, document: documentListening(8081), backends: [] },
  { type: 'srvgate:config', phase: 'init', generation: 3, document: documentListening(8081), startDocument: documentListening(8080), backends: [] },
  { type: 'srvgate:commit', generation: 2 },
  { type: 'srvgate:abort', generation: 3 },
  { type: 'srvgate:set', generation: 1, name: 'web', snapshot: SNAPSHOT },
  { type: 'srvgate:set', generation: 1, name: 'web', snapshot: { status: 'pending', instances: [], isStale: false, lastError: undefined, refused: [] } },
  { type: 'srvgate:health', generation: 1, name: 'web', health: HEALTH },
  { type: 'srvgate:template-refused', generation: 1, name: 'web-pr-1', reason: 'rate', retryAfterMs: 400 },
  { type: 'srvgate:template-refused', generation: 1, name: 'web-pr-2', reason: 'bound', retryAfterMs: 0 },
  { type: 'srvgate:stats', id: 7 },
  { type: 'srvgate:session-ticket-key', key: Buffer.alloc(48, 1).toString('base64') },
  { type: 'srvgate:dns-face', listen: [{ host: '127.0.0.1', port: 8600, family: 4, label: '127.0.0.1:8600' }], workers: 2, required: true },
  { type: 'srvgate:acme-challenges', id: 3, http: [{ token: 'tok', keyAuthorization: 'tok.thumb' }], alpn: [{ name: 'a.example.com', cert: 'PEM', key: 'PEM' }] },
  { type: 'srvgate:acme-challenges', id: 4, http: [], alpn: [] },
  { type: 'srvgate:issued-certificates', certificates: [{ cert: 'PEM', key: 'PEM' }] },
  { type: 'srvgate:certificate-answer', id: 5, served: true },
  { type: 'srvgate:challenge-answer', id: 6, found: { keyAuthorization: 'tok.thumb' } },
  { type: 'srvgate:challenge-answer', id: 7 },
  { type: 'srvgate:rate-granted', id: 8, granted: 0, retryAfterMs: 100 },
  { type: 'srvgate:drain' }
]

/** One of each, as a worker sends them. */
const TO_PRIMARY_SAMPLES: ToPrimary[] = [
  { type: 'srvgate:hello', version: PROTOCOL_VERSION },
  { type: 'srvgate:listening', addresses: { http: { host: '127.0.0.1', port: 23510 }, https: { host: '127.0.0.1', port: 23511 } } },
  { type: 'srvgate:listening', addresses: {} },
  { type: 'srvgate:start-failed', error: 'listen EADDRINUSE' },
  { type: 'srvgate:prepared', generation: 2 },
  { type: 'srvgate:prepared', generation: 2, error: 'backends.web: bad' },
  { type: 'srvgate:report', generation: 1, name: 'web', key: '127.0.0.1:23501', outcome: 'connect-failure' },
  { type: 'srvgate:template', generation: 1, name: 'web-pr-1', template: 'web-{env}', env: 'pr-1' },
  { type: 'srvgate:release', generation: 1, name: 'web-pr-1' },
  { type: 'srvgate:stats', id: 7, stats: { metrics: [{ name: 'x', values: [] }], byBackend: [['web', { requests: 3, errors: 1 }]], inFlight: [['web', '127.0.0.1:23501', 2]] } },
  { type: 'srvgate:acme-challenges-applied', id: 3 },
  { type: 'srvgate:certificate-wanted', id: 5, name: 'pr-1.preview.example.com' },
  { type: 'srvgate:challenge-wanted', id: 6, challenge: 'http-01', key: 'tok' },
  { type: 'srvgate:rate-take', id: 8, frontend: 'api', key: '203.0.113.9', want: 1, perSecond: 0.5, burst: 10, maxKeys: 100000 }
]

test('every message type arrives as sent, both ways, synchronously, checked by its schema', () => {
  const { log, lines } = capture()
  const { primary, worker } = inProcessChannel(log)
  const atWorker: ToWorker[] = []
  const atPrimary: ToPrimary[] = []
  worker.onMessage((message) => { atWorker.push(message) })
  primary.onMessage((message) => { atPrimary.push(message) })
  for (const message of TO_WORKER_SAMPLES) {
    primary.send(message)
    assert.equal(atWorker.at(-1), message, `${message.type}: handled before send returns`)
  }
  for (const message of TO_PRIMARY_SAMPLES) {
    worker.send(message)
    assert.equal(atPrimary.at(-1), message, `${message.type}: handled before send returns`)
  }
  assert.deepEqual(atWorker, TO_WORKER_SAMPLES)
  assert.deepEqual(atPrimary, TO_PRIMARY_SAMPLES)
  assert.deepEqual(lines, [])
  // A new message type without a sample here fails: every type is covered.
  assert.deepEqual(new Set(TO_WORKER_SAMPLES.map(({ type }) => type)), new Set(TO_WORKER.map((schema) => schema.properties.type.const)))
  assert.deepEqual(new Set(TO_PRIMARY_SAMPLES.map(({ type }) => type)), new Set(TO_PRIMARY.map((schema) => schema.properties.type.const)))
})

test('what crosses IPC is JSON: every message still passes after a JSON round trip (undefined fields dropped)', () => {
  const { log, lines } = capture()
  const { primary, worker } = inProcessChannel(log)
  let atWorker = 0
  let atPrimary = 0
  worker.onMessage(() => { atWorker++ })
  primary.onMessage(() => { atPrimary++ })
  for (const message of TO_WORKER_SAMPLES) worker.receive(JSON.parse(JSON.stringify(message)))
  for (const message of TO_PRIMARY_SAMPLES) primary.receive(JSON.parse(JSON.stringify(message)))
  assert.equal(atWorker, TO_WORKER_SAMPLES.length)
  assert.equal(atPrimary, TO_PRIMARY_SAMPLES.length)
  assert.deepEqual(lines, [])
})

test('an invalid message of ours is dropped and logged with its type and the field at fault, never handed on', async () => {
  const { log, lines } = capture()
  const { primary } = inProcessChannel(log)
  const handled: unknown[] = []
  primary.onMessage((message) => { handled.push(message) })
  const invalid: Array<[unknown, string, RegExp]> = [
    // A worker's message sent to a worker: not a type it takes.
    [{ type: 'srvgate:hello', version: PROTOCOL_VERSION }, 'srvgate:hello', /unknown message type/],
    [{ type: 'srvgate:set', generation: 1, name: 'web' }, 'srvgate:set', /snapshot/],
    [{ type: 'srvgate:health', generation: '1', name: 'web', health: HEALTH }, 'srvgate:health', /generation/],
    [{ type: 'srvgate:health', generation: 1, name: 'web', health: { ...HEALTH, ejectedForMs: -1 } }, 'srvgate:health', /ejectedForMs/],
    [{ type: 'srvgate:set', generation: 1, name: 'web', snapshot: { ...SNAPSHOT, lastError: { code: 'SG_TEMPLATE_BOUND', message: 'a fake DNS error' } } }, 'srvgate:set', /lastError/],
    [{ type: 'srvgate:set', generation: 1, name: 'web', snapshot: { ...SNAPSHOT, status: 'maybe' } }, 'srvgate:set', /status/],
    [{ type: 'srvgate:template-refused', generation: 1, name: 'web-pr-1', reason: 'busy', retryAfterMs: 0 }, 'srvgate:template-refused', /reason/],
    // A ticket key of 32 bytes: OpenSSL wants 48, and a short one must not reach setTicketKeys.
    [{ type: 'srvgate:session-ticket-key', key: Buffer.alloc(32, 1).toString('base64') }, 'srvgate:session-ticket-key', /key/],
    [{ type: 'srvgate:reticulate', generation: 1 }, 'srvgate:reticulate', /unknown message type/]
  ]
  for (const [raw, type, reason] of invalid) {
    // A channel each: a second invalid message of a type is counted, not logged.
    const fresh = inProcessChannel(log).worker
    fresh.onMessage((message) => { handled.push(message) })
    const before = lines.length
    fresh.receive(raw)
    assert.equal(lines.length, before, 'explained later, dropped now')
    await until(() => lines.length > before)
    assert.equal(lines.length, before + 1, `${JSON.stringify(raw)} is logged once`)
    const line = lines.at(-1) as Line
    assert.equal(line.fields.type, type)
    assert.match(String(line.fields.reason), reason)
    assert.match(line.message, /dropped/)
  }
  // The other way: a hello without its version, a report with an outcome nobody knows.
  primary.receive({ type: 'srvgate:hello' })
  primary.receive({ type: 'srvgate:report', generation: 1, name: 'web', key: 'k', outcome: 'meh' })
  primary.receive({ type: 'srvgate:stats', id: 1, stats: { metrics: [], byBackend: [['web', 3]], inFlight: [] } })
  const logged = lines.length
  await until(() => lines.length === logged + 3)
  assert.deepEqual(lines.slice(-3).map(({ fields }) => [fields.type, String(fields.reason).split(':')[0]]), [
    ['srvgate:hello', '/version'], ['srvgate:report', '/outcome'], ['srvgate:stats', '/stats/byBackend/0/1']
  ])
  assert.deepEqual(handled, [])
})

test('messages not ours (prom-client shares the IPC channel) pass by without a word', () => {
  const { log, lines } = capture()
  const { primary, worker } = inProcessChannel(log)
  const handled: unknown[] = []
  worker.onMessage((message) => { handled.push(message) })
  primary.onMessage((message) => { handled.push(message) })
  for (const raw of [{ type: 'prom-client:getMetricsReq', requestId: 1 }, { type: 'prom-client:getMetricsRes', requestId: 1, metrics: [] }, { type: 42 }, { cmd: 'NODE_CLUSTER' }, 'srvgate:drain', null, undefined, 7, []]) {
    worker.receive(raw)
    primary.receive(raw)
  }
  assert.deepEqual(handled, [])
  assert.deepEqual(lines, [])
})

test('a peer sending garbage in a loop costs a handful of lines: the first of each type, then the 10th, 100th, 1000th', async () => {
  const { log, lines } = capture()
  const { worker } = inProcessChannel(log)
  for (let index = 0; index < 1000; index++) worker.receive({ type: 'srvgate:set' })
  worker.receive({ type: 'srvgate:health' })
  await until(() => lines.length >= 5)
  await new Promise((resolve) => setTimeout(resolve, 50))
  assert.deepEqual(lines.map(({ fields }) => [fields.type, fields.invalidSoFar]), [
    ['srvgate:set', 1], ['srvgate:set', 10], ['srvgate:set', 100], ['srvgate:set', 1000], ['srvgate:health', 1]
  ])
  // Made-up types are counted together past a few dozen: memory stays bounded whatever arrives.
  for (let index = 0; index < 500; index++) worker.receive({ type: `srvgate:made-up-${index}` })
  await new Promise((resolve) => setTimeout(resolve, 50))
  assert.ok(lines.length < 80, `${lines.length} lines`)
})

test('close: both sides are told once, whichever closes; sends after it are dropped; a late onClose is told at once', () => {
  const { log } = capture()
  const { primary, worker } = inProcessChannel(log)
  const told: string[] = []
  primary.onClose(() => { told.push('primary') })
  worker.onClose(() => { told.push('worker') })
  const handled: unknown[] = []
  primary.onMessage((message) => { handled.push(message) })
  worker.close()
  assert.deepEqual(told.sort(), ['primary', 'worker'], 'one side closing is the end of both')
  worker.close()
  primary.close()
  assert.deepEqual(told.sort(), ['primary', 'worker'], 'once')
  worker.send({ type: 'srvgate:hello', version: PROTOCOL_VERSION })
  primary.receive({ type: 'srvgate:hello', version: PROTOCOL_VERSION })
  assert.deepEqual(handled, [])
  let late = false
  primary.onClose(() => { late = true })
  assert.ok(late)
  assert.deepEqual(primary.listenerCounts(), { message: 0, close: 0 }, 'nothing kept once closed')
})

test('a handler unsubscribed is not called again; the others still are', () => {
  const { log } = capture()
  const { primary, worker } = inProcessChannel(log)
  const seen: string[] = []
  const stop = worker.onMessage((message) => { seen.push(`a:${message.type}`) })
  worker.onMessage((message) => { seen.push(`b:${message.type}`) })
  primary.send({ type: 'srvgate:drain' })
  stop()
  primary.send({ type: 'srvgate:stats', id: 1 })
  assert.deepEqual(seen, ['a:srvgate:drain', 'b:srvgate:drain', 'b:srvgate:stats'])
  assert.deepEqual(worker.listenerCounts(), { message: 1, close: 0 })
})
