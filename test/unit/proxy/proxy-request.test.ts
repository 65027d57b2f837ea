/**
 * The request object (proxy-request.ts) on a timeline: real backends from a
 * real registry (over a loopback DNS server), every attempt sent to a
 * scripted undici Dispatcher that plays the instance's side as each test
 * says, the ManualClock for every wait, and the end through the real
 * RequestEnd: each test reads the access record and the outcomes reported.
 */
import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { Dispatcher } from 'undici'
import { pino } from 'pino'
import { ConsulLikeDnsServer, type SrvInstance } from '../../helpers/dns-server.js'
import { parseConfigText } from '../../../src/config/load.js'
import { BackendRegistry } from '../../../src/upstream/registry.js'
import type { Backend, Outcome } from '../../../src/upstream/backend.js'
import { ManualClock } from '../../../src/util/clock.js'
import { SeededRandom } from '../../../src/util/random.js'
import { ErrorCode, ProxyError } from '../../../src/errors.js'
import { ProxyRequest, type ForwardDeps } from '../../../src/proxy/proxy-request.js'
import { RequestEnd, type FinishedRequest } from '../../../src/proxy/request-end.js'
import { AccessLog } from '../../../src/proxy/access-log.js'
import { ConnectionWaits } from '../../../src/proxy/connection-waits.js'
import { UploadSlots } from '../../../src/proxy/upload-slots.js'
import { ClientGone } from '../../../src/proxy/client-gone.js'
import { errorReply, findProxyError } from '../../../src/proxy/error-reply.js'

const DNS_PORT = 22600

/** One step of an instance's side of an attempt, at `at` ms after dispatch. */
type Step =
  | { readonly at: number, readonly connect: true }
  | { readonly at: number, readonly sent: true }
  | { readonly at: number, readonly headers: number }
  | { readonly at: number, readonly data: string }
  | { readonly at: number, readonly complete: true }
  | { readonly at: number, readonly error: string }

/**
 * A fake of undici's side: dispatch() plays the next script queued for the
 * attempt's origin on the ManualClock, as a Pool would call the handler. An
 * abort (ours) ends the attempt with onError(reason), as undici does.
 */
class ScriptedDispatcher extends Dispatcher {
  readonly #clock: ManualClock
  readonly #scripts = new Map<string, Step[][]>()
  /** Every attempt as it was dispatched: origin and method. */
  readonly dispatched: Array<{ origin: string, method: string }> = []
  readonly aborts: Error[] = []

  constructor (clock: ManualClock) {
    super()
    this.#clock = clock
  }

  script (origin: string, ...attempts: Step[][]): void { this.#scripts.set(origin, [...(this.#scripts.get(origin) ?? []), ...attempts]) }

  /** Scripts for the next attempts in order, whichever instance they go to. */
  next (...attempts: Step[][]): void { this.#scripts.set('*', [...(this.#scripts.get('*') ?? []), ...attempts]) }

  override dispatch (options: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler): boolean {
    const origin = String(options.origin)
    this.dispatched.push({ origin, method: options.method })
    const steps = this.#scripts.get(origin)?.shift() ?? this.#scripts.get('*')?.shift()
    if (steps === undefined) throw new Error(`no script left for ${origin}`)
    let isOver = false
    const abort = (reason?: Error): void => {
      if (isOver) return
      isOver = true
      const error = reason ?? new Error('aborted')
      this.aborts.push(error)
      handler.onError?.(error)
    }
    for (const step of steps) {
      this.#clock.setTimeout(() => {
        if (isOver) return
        if ('connect' in step) handler.onConnect?.(abort)
        else if ('sent' in step) (handler as { onRequestSent?: () => void }).onRequestSent?.()
        else if ('headers' in step) handler.onHeaders?.(step.headers, [], () => {}, '')
        else if ('data' in step) handler.onData?.(Buffer.from(step.data))
        else if ('complete' in step) {
          isOver = true
          handler.onComplete?.(null)
        } else {
          isOver = true
          handler.onError?.(Object.assign(new Error(`scripted ${step.error}`), { code: step.error }))
        }
      }, step.at)
    }
    return true
  }
}

/** The client's side: what reached the downstream handler. */
class Downstream implements Dispatcher.DispatchHandler {
  status: number | undefined
  body = ''
  isComplete = false
  error: Error | undefined

  onConnect (): void {}
  onHeaders (statusCode: number): boolean { this.status = statusCode; return true }
  onData (chunk: Buffer): boolean { this.body += chunk.toString(); return true }
  onComplete (): void { this.isComplete = true }
  onError (error: Error): void { this.error = error }

  /** The status the client is answered with: the instance's, or srvgate's error reply. */
  get answered (): number {
    if (this.error !== undefined) return errorReply(findProxyError(this.error) ?? new ProxyError(ErrorCode.UPSTREAM_ERROR, this.error.message)).status
    return this.status ?? 0
  }
}

const ONE = { address: '127.0.0.1', port: 9001 }
const TWO = { address: '127.0.0.1', port: 9002 }

async function setup (t: TestContext, services: Record<string, SrvInstance[]>, backendYaml = '') {
  const dns = await ConsulLikeDnsServer.start(t, { port: DNS_PORT })
  for (const [name, instances] of Object.entries(services)) dns.setService(name, instances)
  const config = parseConfigText(`
listen: { http: 127.0.0.1:0 }
resolvers: { consul: { nameservers: ["${dns.address}"] } }
backends:
  api:
    discovery: { resolver: consul, srv: _api.service.dc1.consul }
    balance: round-robin
    timeouts: { response: 1s }
${backendYaml}
frontends: [ { name: api, match: { host: api.example.com }, backend: api } ]
`, {})
  const clock = new ManualClock()
  const registry = BackendRegistry.control(config, { clock, random: new SeededRandom(1) })
  await registry.start()
  t.after(() => { registry.stop() })
  const backend = registry.get('api') as Backend
  const pool = new ScriptedDispatcher(clock)
  const outcomes: Array<[string, Outcome]> = []
  const deps: ForwardDeps = {
    poolFor: () => pool,
    clock,
    events: { attemptFinished: (_backend, instance, outcome) => { outcomes.push([instance.key, outcome]) } },
    waits: new ConnectionWaits(clock),
    uploads: new UploadSlots()
  }
  const lines: string[] = []
  const finished: FinishedRequest[] = []
  const metrics = { requestStarted: () => {}, requestFinished: (request: FinishedRequest) => { finished.push(request) }, requestEnded: (request: FinishedRequest) => { finished.push(request) } }
  const ends = new RequestEnd(new AccessLog({ format: 'json', query: false }, pino({ level: 'info' }), clock, (line) => { lines.push(line) }), metrics, clock)
  /** A GET (or `method`) routed to api and forwarded, its answer to a Downstream. */
  const send = (method = 'GET'): { proxied: ProxyRequest, downstream: Downstream, clientGone: ClientGone } => {
    const proxied = new ProxyRequest(method, clock.now())
    proxied.requestId = 'r1'
    proxied.clientIp = '192.0.2.7'
    proxied.protocol = 'HTTP/1.1'
    proxied.isInFlight = true
    const clientGone = new ClientGone()
    proxied.clientGone = clientGone
    proxied.routeTo(backend, {})
    const downstream = new Downstream()
    proxied.forward(deps, { origin: '', method, path: '/x', headers: {}, body: null }, downstream)
    return { proxied, downstream, clientGone }
  }
  /** The request ends as the edge ends it: the status the client got; its access record, parsed. */
  const end = (proxied: ProxyRequest, status: number): Record<string, unknown> => {
    ends.ended({ method: proxied.method, url: '/x', httpVersion: '1.1', headers: { host: 'api.example.com' } }, proxied, status)
    assert.equal(lines.length, 1, 'one access line')
    return JSON.parse(lines[0] as string) as Record<string, unknown>
  }
  return { dns, registry, backend, clock, pool, outcomes, finished, send, end }
}

const origin = (instance: SrvInstance): string => `http://${instance.address}:${instance.port}`
const ok = (status = 200): Step[] => [{ at: 0, connect: true }, { at: 1, sent: true }, { at: 5, headers: status }, { at: 6, data: 'hello' }, { at: 7, complete: true }]

test('a success: one attempt, the instance\'s answer through, its record and its outcome', async (t) => {
  const { pool, clock, outcomes, finished, send, end } = await setup(t, { '_api.service.dc1.consul': [ONE] })
  pool.script(origin(ONE), ok())
  const { proxied, downstream } = send()
  clock.advance(10)
  assert.equal(downstream.status, 200)
  assert.equal(downstream.body, 'hello')
  assert.ok(downstream.isComplete)
  const record = end(proxied, downstream.answered)
  assert.equal(record.status, 200)
  assert.equal(record.instance, '127.0.0.1:9001')
  assert.equal(record.backend, 'api')
  assert.equal(record.frontend, undefined, 'routed by hand here: no frontend decided')
  assert.equal(record.upstreamStatus, 200)
  assert.equal(record.upstreamMs, 5)
  assert.equal(record.durationMs, 10)
  assert.equal(record.retries, 0)
  assert.equal(record.retryReasons, undefined)
  assert.deepEqual(outcomes, [['127.0.0.1:9001', 'success']])
  assert.deepEqual(finished.map((request) => [request.backend, request.status, request.protocol]), [['api', 200, 'HTTP/1.1']])
})

test('a connect failure, then a retry on another instance: never the same one twice', async (t) => {
  const { pool, clock, outcomes, send, end, backend } = await setup(t, { '_api.service.dc1.consul': [ONE, TWO] })
  // Whichever is asked first refuses; the other answers.
  pool.next([{ at: 2, error: 'ECONNREFUSED' }], ok())
  const { proxied, downstream } = send('POST')
  clock.advance(20)
  assert.equal(downstream.status, 200, 'a connect failure is retried for any method: nothing was sent')
  const [first, second] = pool.dispatched.map((attempt) => attempt.origin)
  assert.notEqual(first, second)
  const record = end(proxied, downstream.answered)
  assert.equal(record.retries, 1)
  assert.deepEqual(record.retryReasons, ['connect-failure'])
  assert.equal(record.instance, (second as string).slice('http://'.length))
  assert.deepEqual(outcomes.map(([, outcome]) => outcome), ['connect-failure', 'success'])
  assert.equal(backend.health.get((first as string).slice('http://'.length)).consecutiveFailures, 1, 'passive health counted the refusal')
  assert.equal(backend.health.get((second as string).slice('http://'.length)).consecutiveFailures, 0)
  for (const instance of backend.set.instances) assert.equal(backend.health.get(instance.key).inFlight, 0, 'every attempt released its instance')
})

test('a 5xx is retried per policy: idempotent methods only, its answer drained and never shown to the client', async (t) => {
  const { pool, clock, outcomes, send, end } = await setup(t, { '_api.service.dc1.consul': [ONE, TWO] }, '    retry: { attempts: 1 }')
  pool.script(origin(ONE), ok(503), ok(503))
  pool.script(origin(TWO), ok(503), ok(503))
  // A GET: the first 503 is drained, the other instance answers 503 too, and that answer goes through (no third instance).
  const get = send('GET')
  clock.advance(20)
  assert.equal(get.downstream.status, 503)
  assert.equal(get.downstream.body, 'hello', 'one answer\'s body only')
  assert.equal(pool.dispatched.length, 2)
  const record = end(get.proxied, get.downstream.answered)
  assert.equal(record.retries, 1)
  assert.deepEqual(record.retryReasons, ['status-503'])
  assert.equal(record.upstreamStatus, 503)
  assert.deepEqual(outcomes.map(([, outcome]) => outcome), ['status-5xx', 'status-5xx'])
  // A POST's 503 goes to the client as it is.
  const post = send('POST')
  clock.advance(20)
  assert.equal(post.downstream.status, 503)
  assert.equal(pool.dispatched.length, 3, 'a POST is not retried on a 5xx')
  assert.equal(post.proxied.retries, 0)
})

test('a timeout: what is left of timeouts.response after a long pool wait bounds the headers; 504, counted, never retried', async (t) => {
  const { pool, clock, outcomes, send, end } = await setup(t, { '_api.service.dc1.consul': [ONE, TWO] })
  // The connection comes after 400 ms in the pool; the request is sent; the headers never come.
  pool.script(origin(ONE), [{ at: 400, connect: true }, { at: 401, sent: true }])
  pool.script(origin(TWO), [{ at: 400, connect: true }, { at: 401, sent: true }])
  const { proxied, downstream } = send()
  clock.advance(999)
  assert.equal(downstream.error, undefined, 'still within timeouts.response (1 s)')
  clock.advance(2)
  assert.equal(findProxyError(downstream.error)?.code, ErrorCode.UPSTREAM_TIMEOUT)
  assert.equal(pool.aborts.length, 1, 'the attempt was aborted')
  assert.equal(pool.dispatched.length, 1, 'a timeout is not retried')
  const record = end(proxied, downstream.answered)
  assert.equal(record.status, 504)
  assert.equal(record.error, ErrorCode.UPSTREAM_TIMEOUT)
  assert.deepEqual(outcomes.map(([, outcome]) => outcome), ['timeout'])
})

test('the client leaves mid-body: the attempt is aborted, the instance released, nothing more counted; 499', async (t) => {
  const { pool, clock, outcomes, send, end, backend } = await setup(t, { '_api.service.dc1.consul': [ONE] })
  pool.script(origin(ONE), [{ at: 0, connect: true }, { at: 1, sent: true }, { at: 5, headers: 200 }, { at: 6, data: 'part' }, { at: 50, data: 'never' }, { at: 60, complete: true }])
  const { proxied, downstream, clientGone } = send()
  clock.advance(10)
  assert.equal(downstream.body, 'part')
  assert.equal(backend.health.get('127.0.0.1:9001').inFlight, 1, 'the instance is busy while its body comes')
  clientGone.fire()
  assert.equal(findProxyError(pool.aborts[0])?.code, ErrorCode.CLIENT_GONE)
  assert.equal(backend.health.get('127.0.0.1:9001').inFlight, 0)
  clock.advance(100)
  assert.equal(downstream.body, 'part', 'nothing after the client left')
  assert.equal(downstream.isComplete, false)
  const record = end(proxied, 499)
  assert.equal(record.status, 499)
  assert.equal(record.error, ErrorCode.CLIENT_GONE)
  assert.equal(record.upstreamStatus, 200)
  assert.deepEqual(outcomes.map(([, outcome]) => outcome), ['success'], 'the instance answered: leaving is not its fault')
})

test('failover: once the backend has no instance left to try, another datacenter\'s takes the retry; the record names it', async (t) => {
  const { pool, clock, outcomes, send, end, finished } = await setup(t, { '_api.service.dc1.consul': [ONE], '_api.service.dc2.consul': [TWO] },
    '    failover: [ { resolver: consul, srv: _api.service.dc2.consul } ]')
  pool.script(origin(ONE), [{ at: 2, error: 'ECONNREFUSED' }])
  pool.script(origin(TWO), ok())
  const { proxied, downstream } = send()
  clock.advance(20)
  assert.equal(downstream.status, 200)
  assert.deepEqual(pool.dispatched.map((attempt) => attempt.origin), [origin(ONE), origin(TWO)])
  const record = end(proxied, downstream.answered)
  assert.equal(record.backend, 'api')
  assert.equal(record.failover, 'api~failover-1')
  assert.equal(record.instance, '127.0.0.1:9002')
  assert.deepEqual(record.retryReasons, ['connect-failure'])
  assert.deepEqual(outcomes, [['127.0.0.1:9001', 'connect-failure'], ['127.0.0.1:9002', 'success']])
  assert.equal(record.failoverDiscovery, '_api.service.dc2.consul')
  // The metrics are told the same name, with the DNS name beside it.
  assert.equal(finished[0]?.failoverTarget, 'api~failover-1')
  assert.equal(finished[0]?.failoverDiscovery, '_api.service.dc2.consul')
})
