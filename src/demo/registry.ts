import { createServer as createNetServer } from 'node:net'
import dns2, { Packet } from 'dns2'

type DecodedPacket = InstanceType<typeof Packet>
export type Registration = { readonly address: string, readonly port: number, readonly node: string }

/**
 * A tiny in-process SRV registry for `srvgate demo`, answering like Consul's
 * DNS interface: TTL 0, targets' addresses in the additional section,
 * NXDOMAIN for a service with no instance. Loopback only.
 */
export class DemoRegistry {
  readonly #services = new Map<string, Registration[]>()
  #server: ReturnType<typeof dns2.createServer> | undefined
  port = 0

  async start (): Promise<void> {
    this.port = await freePort()
    const server = dns2.createServer({
      udp: { type: 'udp4' },
      tcp: true,
      handle: (request, send) => { send(this.#answer(request)) }
    })
    server.on('error', () => {})
    server.on('requestError', () => {})
    await server.listen({ udp: { port: this.port, address: '127.0.0.1' }, tcp: { port: this.port, address: '127.0.0.1' } })
    this.#server = server
  }

  async stop (): Promise<void> {
    await this.#server?.close()
  }

  get address (): string { return `127.0.0.1:${this.port}` }

  register (service: string, registration: Registration): void {
    const list = this.#services.get(service) ?? []
    this.#services.set(service, [...list.filter((entry) => entry.node !== registration.node), registration])
  }

  deregister (service: string, node: string): void {
    this.#services.set(service, (this.#services.get(service) ?? []).filter((entry) => entry.node !== node))
  }

  #answer (request: DecodedPacket): DecodedPacket {
    const response = Packet.createResponseFromRequest(request)
    response.header.aa = 1
    const question = request.questions[0]
    if (request.additionals.some((record) => record.type === Packet.TYPE.EDNS)) {
      const opt = Packet.Resource.EDNS([], { udpPayloadSize: 4096 })
      opt.name = ''
      response.additionals.push(opt)
    }
    if (question === undefined) return response
    const name = String(question.name).toLowerCase()
    const instances = this.#services.get(name) ?? []
    const node = [...this.#services.values()].flat().find((entry) => `${entry.node}.node.demo` === name)
    if (question.type === Packet.TYPE.SRV && instances.length > 0) {
      for (const instance of instances) {
        const target = `${instance.node}.node.demo`
        response.answers.push(new Packet.Resource({ name, type: Packet.TYPE.SRV, class: Packet.CLASS.IN, ttl: 0, priority: 1, weight: 1, port: instance.port, target }))
        response.additionals.push(new Packet.Resource({ name: target, type: Packet.TYPE.A, class: Packet.CLASS.IN, ttl: 0, address: instance.address }))
      }
    } else if (question.type === Packet.TYPE.A && node !== undefined) {
      response.answers.push(new Packet.Resource({ name, type: Packet.TYPE.A, class: Packet.CLASS.IN, ttl: 0, address: node.address }))
    } else if (instances.length === 0 && node === undefined) {
      response.header.rcode = Packet.RCODE.NXDOMAIN
    }
    return response
  }
}

/** A free port on `host`, for servers that need one port for both TCP and UDP (dns2). */
export async function freePort (host = '127.0.0.1'): Promise<number> {
  // The kernel may hand a port it just gave back out again: a caller asking for two
  // ports (a listener and the admin listener) must never get the same one twice.
  for (let attempt = 0; attempt < 32; attempt++) {
    const port = await probePort(host)
    if (handedOut.has(port)) continue
    handedOut.add(port)
    if (handedOut.size > 4096) handedOut.delete(handedOut.values().next().value as number)
    return port
  }
  throw new Error('no free port found that was not handed out already')
}

/** Ports freePort gave this process, oldest first (bounded). */
const handedOut = new Set<number>()

async function probePort (host: string): Promise<number> {
  return await new Promise((resolve, reject) => {
    const probe = createNetServer()
    probe.once('error', reject)
    probe.listen(0, host, () => {
      const address = probe.address()
      probe.close(() => { resolve(typeof address === 'object' && address !== null ? address.port : 0) })
    })
  })
}
