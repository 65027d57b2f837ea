import { createSocket, type Socket as UdpSocket } from 'node:dgram'
import { lookup, type LookupOneOptions } from 'node:dns'
import { isIP } from 'node:net'
import type { Address } from './address.js'

/**
 * Whether UDP sockets of several processes can share a port here, each
 * with its own socket (dgram's `reusePort`: Node 22.12+, 23.1+; Linux
 * spreads datagrams across them). Elsewhere the option is ignored or fails
 * at bind, and the face answers from one process.
 */
export function canShareUdpPort (platform: string = process.platform, version: string = process.versions.node): boolean {
  if (platform !== 'linux') return false
  const [major = 0, minor = 0] = version.split('.').map(Number)
  return major >= 24 || (major === 23 && minor >= 1) || (major === 22 && minor >= 12)
}

/**
 * The face's UDP ports held by the primary while the workers bind theirs
 * (SO_REUSEPORT too): a port 0 becomes one port for every worker, and the
 * port stays this gateway's between forks. Released once every worker
 * answers on it (datagrams the kernel gave these sockets meanwhile, at
 * start-up only, go unanswered: the client asks again, as over any UDP).
 */
export type UdpReservation = { readonly addresses: readonly Address[], readonly release: () => Promise<void> }

export async function reserveUdpPorts (listen: readonly Address[]): Promise<UdpReservation> {
  const sockets: UdpSocket[] = []
  const release = async (): Promise<void> => {
    await Promise.all(sockets.map(async (socket) => { await new Promise<void>((resolve) => { socket.close(() => { resolve() }) }) }))
  }
  const addresses: Address[] = []
  try {
    for (const address of listen) {
      const socket = await bindUdp(address, true)
      sockets.push(socket)
      // Nothing is read here: the kernel keeps what it gives these sockets until they close.
      socket.setRecvBufferSize(1)
      addresses.push({ ...address, port: socket.address().port })
    }
  } catch (error) {
    await release()
    throw error
  }
  return { addresses, release }
}

/**
 * A UDP socket bound to `address` (an IPv6 one takes IPv6 only); closed
 * again if the bind fails. `reusePort`: beside other processes' sockets on
 * the port (SO_REUSEPORT), and exclusive: in a cluster worker, a socket of
 * its own rather than the primary's, shared.
 */
export async function bindUdp (address: Address, reusePort: boolean): Promise<UdpSocket> {
  const isV6 = address.host.includes(':')
  const socket = createSocket({ type: isV6 ? 'udp6' : 'udp4', ipv6Only: isV6, reusePort, lookup: literalLookup() })
  try {
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject)
      socket.bind({ port: address.port, address: address.host, exclusive: reusePort }, () => {
        socket.off('error', reject)
        resolve()
      })
    })
  } catch (error) {
    socket.close()
    throw error
  }
  return socket
}

/**
 * dgram asks its `lookup` for every send's address, and dns.lookup answers
 * even an IP literal on the next tick: one more tick a query (and its object,
 * which V8 builds on a slow path in a process this size), for an address the
 * kernel gave as a literal. Literals are answered at once here (the last one
 * remembered: a resolver sends in runs, so most queries skip even isIP);
 * a name (a `dns.listen` host) still goes to dns.lookup.
 */
function literalLookup (): (host: string, options: LookupOneOptions | number, callback: (error: Error | null, address: string, family: number) => void) => void {
  // dgram passes the socket's family as a number (its types say options); dns.lookup takes either.
  let literal = { host: '', family: 0 }
  return (host, options, callback) => {
    if (host !== literal.host) {
      const family = isIP(host)
      if (family === 0) {
        lookup(host, typeof options === 'number' ? { family: options } : options, callback)
        return
      }
      literal = { host, family }
    }
    callback(null, host, literal.family)
  }
}
