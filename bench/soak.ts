/**
 * Slow clients and abandoned uploads mixed with normal traffic, bounded in
 * time (BENCH_SOAK_SECONDS, default 20): afterwards in-flight counts must be
 * back to 0 and the connections open to the instances back to the pool's
 * idle level (then to none once keep-alive lapses). Prints what it saw.
 */
import { connect } from 'node:net'
import { ConsulLikeDnsServer } from '../test/helpers/dns-server.js'
import { spawnBenchGateway } from './spawn-gateway.js'
import { Upstream } from '../test/helpers/upstream.js'
import { load, send } from '../test/helpers/http.js'

const SECONDS = Number(process.env.BENCH_SOAK_SECONDS ?? 20)
const sleep = async (ms: number): Promise<void> => { await new Promise((resolve) => setTimeout(resolve, ms)) }

export async function soakSection (report: (name: string, value: string, target?: string) => void): Promise<void> {
  console.log(`\n## soak (${SECONDS}s: normal traffic + slow uploads + abandoned uploads + clients leaving slow answers)`)
  const dns = await ConsulLikeDnsServer.start(undefined)
  const upstreams = await Promise.all(['a', 'b'].map(async (name) => await Upstream.start(undefined, name)))
  for (const upstream of upstreams) {
    upstream.behaviour = (request, response) => {
      if (request.url !== '/slow') return false
      setTimeout(() => { if (!response.destroyed) response.end('{"slow":true}') }, 2000)
      return true
    }
  }
  dns.setService('_soak.service.consul', upstreams.map((upstream) => ({ address: '127.0.0.1', port: upstream.port })))
  const { port, adminPort, child: gateway } = await spawnBenchGateway('soak', `
client: { bodyIdleTimeout: 1s }
resolvers: { consul: { nameservers: ["${dns.address}"] } }
backends: { soak: { discovery: { resolver: consul, srv: _soak.service.consul }, maxConnectionsPerInstance: 64, timeouts: { response: 5s } } }
frontends: [ { name: soak, match: {}, backend: soak } ]
`)
  try {
    const deadline = Date.now() + SECONDS * 1000
    const until = (): boolean => Date.now() > deadline
    const counts = { slowUploads: 0, slow408: 0, abandonedUploads: 0, abandonedSlow: 0 }
    const raw = async (text: string, hold: (socket: ReturnType<typeof connect>) => Promise<void>): Promise<string> => {
      const socket = connect(port, '127.0.0.1')
      let received = ''
      socket.on('data', (chunk: Buffer) => { received += chunk.toString('latin1') })
      socket.on('error', () => {})
      await new Promise<void>((resolve) => socket.once('connect', () => { resolve() }))
      socket.write(text)
      await hold(socket)
      socket.destroy()
      return received
    }
    const slowUploader = async (): Promise<void> => {
      while (!until()) {
        counts.slowUploads++
        const answer = await raw('POST /upload HTTP/1.1\r\nHost: soak\r\nContent-Length: 100\r\n\r\n', async (socket) => {
          for (let byte = 0; byte < 5; byte++) { socket.write('x'); await sleep(300) }
          await sleep(1800)
        })
        if (answer.startsWith('HTTP/1.1 408')) counts.slow408++
      }
    }
    const abandoner = async (): Promise<void> => {
      while (!until()) {
        counts.abandonedUploads++
        await raw('POST /upload HTTP/1.1\r\nHost: soak\r\nContent-Length: 100000\r\n\r\n' + 'y'.repeat(5000), async () => { await sleep(50) })
        counts.abandonedSlow++
        await raw('GET /slow HTTP/1.1\r\nHost: soak\r\n\r\n', async () => { await sleep(100) })
      }
    }
    const normal = load(async () => await send(`http://127.0.0.1:${port}/`, { host: 'soak' }), { concurrency: 16, until, maxRequests: 5_000_000 })
    await Promise.all([normal, ...Array.from({ length: 8 }, slowUploader), ...Array.from({ length: 8 }, abandoner)])
    const result = await normal
    report('normal requests (failed)', `${result.total} (${result.failures.length})`, '0 failed')
    report('slow uploads (answered 408)', `${counts.slowUploads} (${counts.slow408})`)
    report('abandoned uploads / clients leaving a slow answer', `${counts.abandonedUploads} / ${counts.abandonedSlow}`)
    report('connections open to the instances at the end of load', `${upstreams.reduce((sum, upstream) => sum + upstream.openConnections, 0)}`)
    await sleep(2500)
    const state = (await send(`http://127.0.0.1:${adminPort}/admin/state`)).json() as { backends: Array<{ instances: Array<{ inFlight: number }> }> }
    const inFlight = state.backends.flatMap((backend) => backend.instances).reduce((sum, instance) => sum + instance.inFlight, 0)
    const metrics = (await send(`http://127.0.0.1:${adminPort}/metrics`)).body
    report('in flight per /admin/state, 2.5 s later', `${inFlight}`, '0')
    report('srvgate_http_requests_in_flight, 2.5 s later', /^srvgate_http_requests_in_flight (\d+)/m.exec(metrics)?.[1] ?? '?', '0')
    report('connections open to the instances, 2.5 s later (idle pool)', `${upstreams.reduce((sum, upstream) => sum + upstream.openConnections, 0)}`, '≤ keep-alive pool')
    await sleep(5000)
    report('connections open to the instances, after keep-alive lapses', `${upstreams.reduce((sum, upstream) => sum + upstream.openConnections, 0)}`, '0')
  } finally {
    gateway.kill('SIGTERM')
    await Promise.all(upstreams.map(async (upstream) => { await upstream.kill() }))
    await dns.stop()
  }
}
