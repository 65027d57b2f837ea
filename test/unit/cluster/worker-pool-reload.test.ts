/**
 * A reload meeting a worker that is starting (a replacement for one that
 * died). The pool runs stand-in workers over the in-memory channel: each
 * records what it is sent, holds its `listening` until the test lets it go,
 * and answers a prepare only after listening, as a real worker does (its
 * messages are handled in order, init first). The test plays the control
 * plane: prepare, then commit and swap the running state in the same turn.
 * Last, what a replacement is told of the DNS face (worker-loop-face.test.ts
 * has what a worker does with it).
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import pino from 'pino'
import { WorkerPool } from '../../../src/cluster/worker-pool.js'
import type { DataPlaneProcess } from '../../../src/cluster/spawner.js'
import { inProcessChannel } from '../../../src/cluster/channel.js'
import { PROTOCOL_VERSION } from '../../../src/cluster/protocol-version.js'
import type { MessageOf, ToWorker } from '../../../src/cluster/protocol.js'
import type { RoutingState } from '../../../src/proxy/route-request.js'
import type { ControlBackend } from '../../../src/upstream/control-backend.js'
import { documentListening } from '../../helpers/config-documents.js'
import type { GatewayDocument } from '../../../src/config/schema.js'

type Config = MessageOf<ToWorker, 'srvgate:config'>

/** What the pool reads of a routing state: a generation and no backends. */
function stateOf (generation: number): RoutingState<ControlBackend> {
  return { generation, registry: { all: () => [] } } as unknown as RoutingState<ControlBackend>
}

class StandIn {
  readonly configs: Config[] = []
  readonly commits: number[] = []
  /** The DNS face messages' `required`: whether failing to bind it must fail this worker's start. */
  readonly faceRequired: boolean[] = []
  /** The generation it would serve: its init's, then each prepare it commits. */
  serving: number | undefined
  readonly process: DataPlaneProcess
  #listen: () => void = () => {}
  #listened = false
  #prepared: number | undefined
  readonly #afterListening: Array<() => void> = []
  readonly #exits: Array<(code: number | null, signal: string | null) => void> = []
  #isDead = false

  constructor (id: number, readonly holdListening: boolean, readonly failPrepare = false, holdHello = false) {
    const { primary, worker, close } = inProcessChannel(pino({ level: 'silent' }))
    worker.onMessage((message) => {
      if (message.type === 'srvgate:dns-face') this.faceRequired.push(message.required)
      if (message.type === 'srvgate:config' && message.phase === 'init') {
        this.configs.push(message)
        this.serving = message.generation
        this.#listen = () => {
          this.#listened = true
          worker.send({ type: 'srvgate:listening', addresses: { http: { host: '127.0.0.1', port: 1 } } })
          for (const next of this.#afterListening.splice(0)) next()
        }
        if (!holdListening) this.#listen()
      } else if (message.type === 'srvgate:config') {
        this.configs.push(message)
        const answer = (): void => {
          this.#prepared = message.generation
          worker.send({ type: 'srvgate:prepared', generation: message.generation, ...(this.failPrepare ? { error: 'cannot' } : {}) })
        }
        if (this.#listened) answer()
        else this.#afterListening.push(answer)
      } else if (message.type === 'srvgate:commit') {
        this.commits.push(message.generation)
        if (this.#prepared === message.generation) this.serving = message.generation
      }
    })
    this.process = {
      id,
      pid: 1000 + id,
      channel: primary,
      isDead: () => this.#isDead,
      isConnected: () => !this.#isDead,
      kill: () => { this.exit() },
      onExit: (handler) => { this.#exits.push(handler) }
    }
    this.hello = () => { worker.send({ type: 'srvgate:hello', version: PROTOCOL_VERSION }) }
    // After the pool has subscribed to its end.
    if (!holdHello) queueMicrotask(this.hello)
    this.close = close
  }

  readonly close: () => void
  readonly hello: () => void

  listen (): void { this.#listen() }

  exit (): void {
    if (this.#isDead) return
    this.#isDead = true
    this.close()
    for (const handler of this.#exits) handler(null, 'SIGKILL')
  }
}

/** A pool of stand-ins: the first `count` listen at once, later ones (replacements) as told. */
function standInPool (count: number, later: { readonly holdListening: boolean, readonly failPrepare?: boolean, readonly holdHello?: boolean }): { pool: WorkerPool, workers: StandIn[], state: { current: RoutingState<ControlBackend> } } {
  const workers: StandIn[] = []
  const state = { current: stateOf(1) }
  const pool = new WorkerPool({
    count,
    spawner: {
      setup: () => {},
      spawn: () => {
        const starting = workers.length >= count
        const worker = new StandIn(workers.length + 1, starting && later.holdListening, starting && later.failPrepare === true, starting && later.holdHello === true)
        workers.push(worker)
        return worker.process
      }
    }
  })
  return { pool, workers, state }
}

async function until (condition: () => boolean, what: string): Promise<void> {
  for (let attempt = 0; attempt < 200 && !condition(); attempt++) await new Promise((resolve) => { setTimeout(resolve, 10) })
  assert.ok(condition(), what)
}

/** What the control plane does: prepare every worker, then commit and swap its state in one turn. */
async function reload (pool: WorkerPool, state: { current: RoutingState<ControlBackend> }, generation: number, document: GatewayDocument): Promise<void> {
  const next = stateOf(generation)
  await pool.prepare(generation, document, next)
  pool.commit(generation)
  state.current = next
}

const log = pino({ level: 'silent' })
/** Two configurations, told apart by their port. */
const DOCUMENT_1 = documentListening(8001)
const DOCUMENT_2 = documentListening(8002)

test('a worker still starting when a reload begins prepares it too, after its init, and commits it: no worker keeps the old configuration', async (t) => {
  const { pool, workers, state } = standInPool(2, { holdListening: true })
  t.after(() => { pool.killAll() })
  await pool.start(() => state.current, DOCUMENT_1, log)
  workers[1]?.exit()
  // A worker that died young is replaced a second later.
  await until(() => workers[2]?.configs.length === 1, 'the replacement gets its init')
  const replacement = workers[2] as StandIn
  assert.equal(replacement.configs[0]?.generation, 1)

  const reloaded = reload(pool, state, 2, DOCUMENT_2)
  // The prepare is not held back by the worker still starting: it is sent now, answered once it listens.
  await until(() => replacement.configs.length === 2, 'the starting worker is sent the prepare')
  replacement.listen()
  await reloaded
  assert.deepEqual(replacement.configs.map((config) => [config.phase, config.generation, config.document]), [['init', 1, DOCUMENT_1], ['prepare', 2, DOCUMENT_2]])
  assert.equal(replacement.serving, 2)
  assert.equal(workers[0]?.serving, 2)
  assert.equal(pool.status().running, 2)
})

test('a worker that says hello during a reload starts with the reload\'s outcome: generation and document together, even in the turn between prepare and commit', async (t) => {
  const { pool, workers, state } = standInPool(1, { holdListening: false, holdHello: true })
  t.after(() => { pool.killAll() })
  await pool.start(() => state.current, DOCUMENT_1, log)
  workers[0]?.exit()
  await until(() => workers.length === 2, 'the replacement is forked')
  const replacement = workers[1] as StandIn
  const next = stateOf(2)
  await pool.prepare(2, DOCUMENT_2, next)
  // The turn between prepare and commit: its init must not read the old state with the new text.
  replacement.hello()
  await new Promise((resolve) => { setImmediate(resolve) })
  assert.equal(replacement.configs.length, 0, 'no configuration before the reload ends')
  pool.commit(2)
  state.current = next
  await until(() => replacement.configs.length === 1, 'the replacement gets its init')
  const init = replacement.configs[0]
  assert.deepEqual([init?.phase, init?.generation, init?.document], ['init', 2, DOCUMENT_2])
})

test('a starting worker that cannot prepare the reload does not refuse it: it is replaced, and its successor starts with what runs', async (t) => {
  const { pool, workers, state } = standInPool(1, { holdListening: true, failPrepare: true })
  t.after(() => { pool.killAll() })
  await pool.start(() => state.current, DOCUMENT_1, log)
  workers[0]?.exit()
  await until(() => workers[1]?.configs.length === 1, 'the first replacement gets its init')
  // None is serving, one is starting: its failure alone cannot refuse the reload.
  const reloaded = reload(pool, state, 2, DOCUMENT_2)
  await until(() => workers[1]?.configs.length === 2, 'the starting worker is sent the prepare')
  workers[1]?.listen()
  await reloaded
  await until(() => workers[2]?.configs.length === 1, 'the failed one is replaced')
  const init = workers[2]?.configs[0]
  assert.deepEqual([init?.phase, init?.generation, init?.document], ['init', 2, DOCUMENT_2])
})

test('the DNS face is required of the workers at start-up only: a replacement that cannot bind it serves HTTP while the others answer DNS', async (t) => {
  const { pool, workers, state } = standInPool(2, { holdListening: false })
  t.after(() => { pool.killAll() })
  await pool.start(() => state.current, DOCUMENT_1, log, [{ host: '127.0.0.1', port: 5353, family: 4, label: '127.0.0.1:5353' }])
  assert.deepEqual(workers.map((worker) => worker.faceRequired), [[true], [true]], 'a failed bind at start fails the start')
  workers[1]?.exit()
  await until(() => workers[2]?.configs.length === 1, 'the replacement gets its init')
  assert.deepEqual(workers[2]?.faceRequired, [false], 'the replacement is told the face is not required of it')
})

test('a replacement after a reload gets the running document and the one the others started with (their start-only fields); before any reload, the running one alone', async (t) => {
  const { pool, workers, state } = standInPool(2, { holdListening: false })
  t.after(() => { pool.killAll() })
  await pool.start(() => state.current, DOCUMENT_1, log)
  workers[1]?.exit()
  await until(() => workers[2]?.configs.length === 1, 'the first replacement gets its init')
  assert.equal(workers[2]?.configs[0]?.document, DOCUMENT_1)
  assert.equal(workers[2]?.configs[0]?.startDocument, undefined)
  await reload(pool, state, 2, DOCUMENT_2)
  workers[0]?.exit()
  await until(() => workers[3]?.configs.length === 1, 'the second replacement gets its init')
  assert.equal(workers[3]?.configs[0]?.document, DOCUMENT_2)
  assert.equal(workers[3]?.configs[0]?.startDocument, DOCUMENT_1)
})
