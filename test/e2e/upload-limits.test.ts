/**
 * Slow uploads never starve a backend (issue 19, item 6): bodies that fit are
 * received whole before an instance connection is taken (nginx's
 * proxy_request_buffering), bounded per process; streamed bodies hold at most
 * half of an instance's connections and must keep up client.minBodyRate.
 * Through the CLI, with raw sockets trickling bodies one byte at a time.
 */
import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { connect, type Socket } from 'node:net'
import { ConsulLikeDnsServer } from '../helpers/dns-server.js'
import { Upstream } from '../helpers/upstream.js'
import { SpawnedGateway } from '../helpers/spawn-gateway.js'
import { send } from '../helpers/http.js'

const sleep = async (ms: number): Promise<void> => { await new Promise((resolve) => setTimeout(resolve, ms)) }

type Setup = { dns: ConsulLikeDnsServer, upstreams: Upstream[], posts: () => number }

async function setup (t: TestContext): Promise<Setup> {
  const dns = await ConsulLikeDnsServer.start(t)
  const upstreams = await Promise.all(['a', 'b'].map(async (name) => await Upstream.start(t, name)))
  let posts = 0
  for (const upstream of upstreams) upstream.onRequestStart = (request) => { if (request.method === 'POST') posts++ }
  dns.setService('_web.service.consul', upstreams.map((upstream) => ({ address: '127.0.0.1', port: upstream.port })))
  return { dns, upstreams, posts: () => posts }
}

function config (s: Setup, client: string, backend = ''): string {
  return `
listen: { http: "127.0.0.1:\${PORT}", admin: "127.0.0.1:\${ADMIN_PORT}" }
client: { ${client} }
resolvers: { consul: { nameservers: ["${s.dns.address}"], ttl: { min: 250ms, max: 1s }, timeout: 300ms } }
backends:
  web: { discovery: { resolver: consul, srv: _web.service.consul }, maxConnectionsPerInstance: 4, outlier: { consecutiveFailures: 1000 }${backend} }
frontends:
  - { name: web, match: { host: www.example.com }, backend: web }
`
}

/** `count` uploads of `length` bytes, each sending one byte every `everyMs`: what each received, and a stop. */
function trickle (t: TestContext, port: number, count: number, length: number, everyMs: number): { sockets: Socket[], received: string[], stop: () => void } {
  const sockets: Socket[] = []
  const received: string[] = []
  for (let index = 0; index < count; index++) {
    const socket = connect(port, '127.0.0.1')
    socket.on('error', () => {})
    received.push('')
    socket.on('data', (chunk: Buffer) => { received[index] += chunk.toString() })
    socket.write(`POST /upload HTTP/1.1\r\nHost: www.example.com\r\ncontent-length: ${length}\r\n\r\n`)
    sockets.push(socket)
  }
  const timer = setInterval(() => { for (const socket of sockets) if (socket.writable) socket.write('x') }, everyMs)
  const stop = (): void => {
    clearInterval(timer)
    for (const socket of sockets) socket.destroy()
  }
  t.after(stop)
  return { sockets, received, stop }
}

/** Sequential GETs while uploads trickle: the slowest answer's time in ms, and the statuses. */
async function ordinaryGets (url: string, count: number): Promise<{ slowestMs: number, statuses: number[] }> {
  let slowestMs = 0
  const statuses: number[] = []
  for (let index = 0; index < count; index++) {
    const started = Date.now()
    const answer = await send(`${url}/get-${index}`, { host: 'www.example.com', timeoutMs: 5000, agent: false })
    slowestMs = Math.max(slowestMs, Date.now() - started)
    statuses.push(answer.status)
    await sleep(100)
  }
  return { slowestMs, statuses }
}

test('40 trickled uploads against 2 instances x 4 connections: bodies are received whole first, ordinary GETs are answered within a second, no instance sees the uploads', async (t) => {
  const s = await setup(t)
  const gateway = await SpawnedGateway.start(t, config(s, 'bodyIdleTimeout: 30s'), { workers: 1 })
  const uploads = trickle(t, gateway.port, 40, 100_000, 500)
  await sleep(500)
  const gets = await ordinaryGets(gateway.url, 10)
  assert.deepEqual(gets.statuses, new Array<number>(10).fill(200))
  assert.ok(gets.slowestMs < 1000, `the slowest GET took ${gets.slowestMs} ms`)
  assert.equal(s.posts(), 0, 'no upload reached an instance before its body was whole')
  const metrics = (await send(`${gateway.adminUrl}/metrics`)).body
  assert.match(metrics, /^srvgate_request_body_buffered_bytes 4000000$/m)
  uploads.stop()
  await sleep(300)
  assert.match((await send(`${gateway.adminUrl}/metrics`)).body, /^srvgate_request_body_buffered_bytes 0$/m, 'the budget is given back when the clients leave')
})

test('streamed bodies (bufferBodyBytes: 0) hold at most half of an instance\'s connections, and a body slower than client.minBodyRate is cut with 408', async (t) => {
  const s = await setup(t)
  const gateway = await SpawnedGateway.start(t, config(s, 'bodyIdleTimeout: 30s, bufferBodyBytes: 0, minBodyRate: 1024', ', timeouts: { response: 4s }'), { workers: 1 })
  const started = Date.now()
  const uploads = trickle(t, gateway.port, 40, 100_000, 500)
  await sleep(500)
  const gets = await ordinaryGets(gateway.url, 10)
  assert.deepEqual(gets.statuses, new Array<number>(10).fill(200))
  assert.ok(gets.slowestMs < 1000, `the slowest GET took ${gets.slowestMs} ms`)
  // Two instances, half of 4 connections each: 4 uploads at once.
  assert.equal(s.posts(), 4, 'streamed uploads reached the instances, 2 each')
  // The rest waited for a slot within timeouts.response (504); the 4 that had one were too slow (408, after 10 s).
  await sleep(Math.max(0, 12_500 - (Date.now() - started)))
  const answers = uploads.received.map((text) => /^HTTP\/1.1 (\d+)/.exec(text)?.[1] ?? 'none')
  const count = (status: string): number => answers.filter((answer) => answer === status).length
  assert.equal(count('408'), 4, `answers: ${answers.join(' ')}`)
  assert.equal(count('504'), 36, `answers: ${answers.join(' ')}`)
  const cut = gateway.logs.find((line) => line.status === 408 && line.msg === 'request')
  assert.match(String(cut?.errorDetail), /slower than client\.minBodyRate \(1024 bytes\/s/)
})

test('client.bufferTotalBytes bounds what one process holds: past it bodies stream; a buffered body is sent again whole when its first instance fails mid-upload', async (t) => {
  const s = await setup(t)
  const gateway = await SpawnedGateway.start(t, config(s, 'bodyIdleTimeout: 30s, bufferTotalBytes: 250000, minBodyRate: 0', ', retry: { attempts: 2, on: [connect-failure, 502] }'), { workers: 1 })
  const uploads = trickle(t, gateway.port, 4, 100_000, 500)
  await sleep(800)
  assert.match((await send(`${gateway.adminUrl}/metrics`)).body, /^srvgate_request_body_buffered_bytes 200000$/m)
  assert.equal(s.posts(), 2, 'the two bodies past the budget stream to instances')
  uploads.stop()

  // Whichever instance gets the PUT first reads its whole body, then resets: the retry sends it again, whole.
  let resets = 0
  for (const upstream of s.upstreams) {
    upstream.behaviour = (request, response) => {
      if (request.method !== 'PUT' || resets > 0) return false
      resets++
      response.socket?.resetAndDestroy()
      return true
    }
  }
  const body = Buffer.alloc(200_000, 'p')
  const answer = await send(`${gateway.url}/put`, { host: 'www.example.com', method: 'PUT', body, timeoutMs: 5000 })
  assert.equal(resets, 1)
  assert.equal(answer.status, 200, answer.body)
  assert.equal(answer.json().bodyBytes, body.length)
})
