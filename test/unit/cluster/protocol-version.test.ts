/**
 * The protocol version, over real node:cluster IPC: the WorkerPool forks a
 * stand-in worker (fixtures/hello-worker.mjs) that says hello with the
 * version it is told. The same version is configured and listens; another is
 * refused: logged, killed, sent no configuration, not replaced. Last, the
 * configuration schema is pinned to the version.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import cluster from 'node:cluster'
import { createHash } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { Writable } from 'node:stream'
import { fileURLToPath } from 'node:url'
import pino from 'pino'
import { WorkerPool } from '../../../src/cluster/worker-pool.js'
import { clusterWorkers } from '../../../src/cluster/cluster-workers.js'
import { PROTOCOL_VERSION } from '../../../src/cluster/protocol-version.js'
import type { RoutingState } from '../../../src/proxy/route-request.js'
import type { ControlBackend } from '../../../src/upstream/control-backend.js'
import { documentListening } from '../../helpers/config-documents.js'

const EXEC = fileURLToPath(new URL('./fixtures/hello-worker.mjs', import.meta.url))

// What #init reads of the running state: a generation and no backends.
const STATE = { generation: 1, registry: { all: () => [] } } as unknown as RoutingState<ControlBackend>

function capture (): { log: pino.Logger, lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = []
  const log = pino({ level: 'debug' }, new Writable({
    write (chunk: Buffer, _encoding, done) {
      lines.push(JSON.parse(chunk.toString()) as Record<string, unknown>)
      done()
    }
  }))
  return { log, lines }
}

/** Every exit of a worker this process forked, from now on. */
function exits (): Array<{ code: number | null, signal: string | null }> {
  const seen: Array<{ code: number | null, signal: string | null }> = []
  cluster.on('exit', (_worker, code, signal) => { seen.push({ code, signal }) })
  return seen
}

async function until (condition: () => boolean, what: string): Promise<void> {
  for (let attempt = 0; attempt < 200 && !condition(); attempt++) await new Promise((resolve) => { setTimeout(resolve, 25) })
  assert.ok(condition(), what)
}

test('a worker that speaks this version gets the configuration and listens', async (t) => {
  const { log } = capture()
  const seen = exits()
  const pool = new WorkerPool({ count: 1, spawner: clusterWorkers(EXEC, [String(PROTOCOL_VERSION), '23520']) })
  t.after(() => { pool.killAll() })
  assert.deepEqual(await pool.start(() => STATE, documentListening(8080), log), { http: { host: '127.0.0.1', port: 23520 } })
  assert.equal(pool.status().running, 1)
  await pool.drain()
  assert.deepEqual(seen, [{ code: 0, signal: null }])
})

test('a worker that speaks another version is refused: logged, killed before any configuration, not replaced', async (t) => {
  const { log, lines } = capture()
  const seen = exits()
  const pool = new WorkerPool({ count: 1, spawner: clusterWorkers(EXEC, [String(PROTOCOL_VERSION + 1), '23521']) })
  t.after(() => { pool.killAll() })
  await assert.rejects(pool.start(() => STATE, documentListening(8080), log), new RegExp(`protocol version ${PROTOCOL_VERSION + 1}, this primary ${PROTOCOL_VERSION}`))
  // Killed, not exited on its own: a configuration would have made it answer (and it exits 4 only after 20 s).
  await until(() => seen.length === 1, 'the worker exits')
  assert.deepEqual(seen, [{ code: null, signal: 'SIGKILL' }])
  const refusal = lines.find((line) => line.msg === 'worker refused: another cluster protocol version (restart srvgate)')
  assert.equal(refusal?.level, 50)
  assert.equal(refusal?.version, PROTOCOL_VERSION + 1)
  assert.equal(refusal?.expected, PROTOCOL_VERSION)
  // Not replaced: a new fork would run the same files and be refused again. A worker that dies
  // young is replaced a second later (MIN_LIFE_MS): waited past that.
  await new Promise((resolve) => { setTimeout(resolve, 1_500) })
  assert.equal(Object.keys(cluster.workers ?? {}).length, 0)
  assert.equal(pool.status().running, 0)
})

/**
 * A worker compiles the document its primary checked, with the primary's
 * schema's defaults filled (cluster/protocol.ts `document`): a worker forked
 * from newer files under an older primary would read a field the older
 * schema never filled. So a change of the configuration schema is a change
 * of the protocol, and this pins the schema to the version.
 */
const SCHEMA_OF_VERSION = { version: 5, sha256: 'b3d8ed554516ee1165f8db47cb0f036c6a90cfeef64eb500b5fb3c6180128f31' }

test('the configuration schema is the one this protocol version was raised for (a schema change raises PROTOCOL_VERSION)', () => {
  const sha256 = createHash('sha256').update(readFileSync('config/gateway.schema.json')).digest('hex')
  assert.deepEqual({ version: PROTOCOL_VERSION, sha256 }, SCHEMA_OF_VERSION, 'config/gateway.schema.json changed: raise PROTOCOL_VERSION (cluster/protocol-version.ts) and record both here')
})
